"""`rel-eng release`: the release's own steps (pipeline.RELEASE_STEPS), walked in order under the
mirror's lock, each keyed and recorded in the candidate's manifest as `release:<step>`.

Everything that can refuse is checked before the first write (exit 2, nothing written). From
the first write on, a failure or a signal removes the hidden temp tree and the directories this
run created, so `releases/` is left as it was; a SIGKILL leaves a temp tree named after its dead
pid, which the next run sweeps first. A rerun after any crash ends in the same tree; a rerun of
a finished release changes nothing and says so.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rel_eng.compose.locks import mirror_lock
from rel_eng.errors import InputError
from rel_eng.pipeline import RELEASE_STEPS, step_key
from rel_eng.release import candidate as cand
from rel_eng.release import page
from rel_eng.release import record as store
from rel_eng.release import signing as rsign
from rel_eng.release import tree
from rel_eng.signals import stop_on_signal
from rel_eng.verify import DropBroken, verify_tree

NOTE_UNVERIFIED = "not verified by a boot"


@dataclass(frozen=True)
class Options:
    ident: str
    output: Path
    mirror: Path | None = None
    release: str | None = None
    milestone: str | None = None
    by: str = ""
    replace: bool = False
    closed: bool = False
    open: bool = False  # open a release written --closed
    withdraw: bool = False  # take a broken release back
    allow_unverified: bool = False
    allow_incomplete: bool = False
    signed_checksums: Path | None = None  # CHECKSUM files signed by the release key elsewhere


@dataclass
class ReleaseRun:
    """What the steps share: the candidate, where it goes, and what the steps made."""

    config: object
    opts: Options
    cand: cand.Candidate
    mirror_root: Path
    target: Path  # <mirror>/<release dir>/<variant>
    now: dt.datetime
    out: Callable[[str], None] = print
    files: list = field(default_factory=list)
    existing: dict | None = None  # the release record already at target
    tmp: Path | None = None
    created: list = field(default_factory=list)
    known: dict = field(default_factory=dict)
    digests: dict = field(default_factory=dict)  # staged file -> sha256, read by the check
    seen: dict = field(default_factory=dict)  # staged file -> its identity when hashed
    presigned: dict = field(default_factory=dict)  # tree path -> CHECKSUM text signed elsewhere
    old_tree: Path | None = None
    replaced: dict | None = None  # the record of the release this one replaced
    aside: Path | None = None  # where --withdraw moved the tree
    done: list = field(default_factory=list)  # steps run (not skipped) by this run

    @property
    def c(self):
        return self.cand.compose

    @property
    def cid(self) -> str:
        return self.c.plan.compose_id

    @property
    def drop(self) -> Path:
        return self.mirror_root / self.c.plan.mirror_path

    @property
    def mirror_path(self) -> str:
        return str(self.target.relative_to(self.mirror_root))

    @property
    def ours(self) -> bool:
        """The tree at target is this candidate's release."""
        return bool(self.existing and self.existing.get("compose_id") == self.cid)

    def record(self) -> dict:
        p = self.c.plan
        notes = []
        if self.cand.unverified:
            notes.append(NOTE_UNVERIFIED)
        if self.cand.missing:
            notes.append("missing: " + ", ".join(self.cand.missing))
        return {"release": p.release_version, "release_key": p.release_key,
                "milestone": p.milestone, "compose_id": self.cid, "label": p.label,
                "variant": p.variant, "released_by": self.opts.by,
                "released_at": self.now.isoformat(), "note": "; ".join(notes),
                "candidate_path": p.mirror_path}


def target_for(config, plan, mirror_root: Path) -> Path:
    rel = config.release_tree.release_dir(plan.release_version, plan.milestone)
    return mirror_root / rel / plan.variant


def release(config, opts: Options, out: Callable[[str], None] = print,
            now: dt.datetime | None = None) -> ReleaseRun:
    c = cand.find(opts.output, opts.ident, opts.release, opts.milestone)
    # --open and --withdraw act on what was released with its flags: only its tree is required
    acts_on_release = opts.open or opts.withdraw
    checked = cand.check(c, opts.allow_unverified or acts_on_release,
                         opts.allow_incomplete or acts_on_release)
    mirror_root = (opts.mirror or opts.output / "mirror").resolve()
    run = ReleaseRun(config, opts, checked, mirror_root,
                     target_for(config, c.plan, mirror_root),
                     now or dt.datetime.now(dt.timezone.utc), out)
    if not run.drop.is_dir():
        raise InputError(f"{run.drop}: the candidate's staged drop is missing",
                         hint="release a candidate that is staged in this mirror (--mirror)")
    with stop_on_signal("release stopped"), mirror_lock(mirror_root):
        tree.sweep_leftovers(run.target.parent)
        for step in RELEASE_STEPS:
            if step.applies is not None and not step.applies_to(run):
                continue
            name = f"release:{step.name}"
            key = step_key(name, *step.inputs_of(run)) if step.inputs else ""
            if key and c.manifest.step_done(name, key) and step.found_in(run):
                continue
            step(run)
            run.done.append(step.name)
            if key:
                c.manifest.set_step(name, key, "done")
    return run


# --- the steps (pipeline.RELEASE_STEPS names them) ---

def run_check(run: ReleaseRun) -> None:
    """Refuse before any write: another candidate already released, a place that is not ours,
    a --replace with nothing to replace, a staged drop whose MANIFEST does not verify."""
    run.existing = tree.owned(run.target)
    plan = run.c.plan
    what = f"{plan.release_version} {plan.milestone}"
    if run.opts.open and not run.ours:
        raise InputError(f"--open: {plan.label} ({run.cid}) is not released at {run.target}",
                         hint="release it first (with --closed to pre-sync it)")
    if run.existing and not run.ours and not run.opts.replace:
        e = run.existing
        raise InputError(f"{what} is already released from {e.get('label')} "
                         f"({e.get('compose_id')}, by {e.get('released_by')} at "
                         f"{e.get('released_at')}) in {run.target}",
                         hint=f"add --replace to release {plan.label} in its place")
    aside = tree.record_of(tree.withdrawn_path(run.target, run.cid))
    if run.opts.withdraw and not run.ours and (aside or {}).get("compose_id") == run.cid:
        return  # withdrawn before a crash: the rest of the steps finish it
    if run.opts.withdraw and not run.ours:
        raise InputError(f"--withdraw: {plan.label} ({run.cid}) is not released at "
                         f"{run.target}", hint="name the candidate that is released")
    if run.opts.replace and run.existing is None:
        raise InputError(f"--replace: nothing is released at {run.target} to replace",
                         hint="drop --replace")
    if run.ours:
        return
    signing = run.config.signing
    run.files = tree.staged_files(run.drop, plan.variant, signing.gpg_home, signing.key)
    # `rel-eng verify` on the staged drop: each file read once; the link step reuses the digests
    rep = verify_tree(run.drop, signing.gpg_home, signing.enabled, signing.key)
    if rep.problems:
        more = f" (and {len(rep.problems) - 1} more)" if len(rep.problems) > 1 else ""
        raise InputError(f"rel-eng verify {run.drop}: {rep.problems[0]}{more}",
                         hint="a staged candidate that does not verify is never released")
    run.digests = rep.digests
    run.seen = {f.src: tree.identity(f.src) for f in run.files}
    checksums = {f.rel: f.src for f in run.files if f.rel.endswith("CHECKSUM")}
    if run.opts.signed_checksums is not None:
        run.presigned = rsign.presigned(run.opts.signed_checksums, checksums, signing)
    else:
        rsign.check_can_sign(signing, f"{run.config.source}: [signing]")


def tree_inputs(run: ReleaseRun) -> list:
    return [run.cid, str(run.target), [(f.rel, f.sha256) for f in run.files]]


def needs_tree(run: ReleaseRun) -> bool:
    return not run.ours and not run.opts.withdraw


def run_link(run: ReleaseRun) -> None:
    """Hardlinks (or verified copies) of every staged file into a hidden temp tree, each
    linked file the very inode the check just hashed (a copy is hashed on the way)."""
    run.created = tree.ensure_parents(run.mirror_root, run.target.parent.relative_to(run.mirror_root))
    run.tmp = tree.temp_dir(run.target)
    with discarding(run):
        run.tmp.mkdir(mode=0o700)
        run.known = tree.link_or_copy(run.files, run.tmp, run.digests, run.seen)


def resigning(run: ReleaseRun) -> bool:
    return needs_tree(run) and bool(run.presigned or run.config.signing.release_key)


def run_resign(run: ReleaseRun) -> None:
    """The CHECKSUM copies signed with the release key (or the ones signed elsewhere): new
    files in the temp tree; the staged ones keep the compose key's signature."""
    with discarding(run):
        for f in run.files:
            if not f.rel.endswith("CHECKSUM"):
                continue
            path = run.tmp / f.rel
            text = run.presigned.get(f.rel) or rsign.resign(path.read_text(), run.config.signing)
            tree.replace_file(path, text)
            run.known.pop(path, None)


def manifest_signing(run: ReleaseRun):
    """The release key signs the tree's MANIFEST when it can sign here; else the compose key."""
    signing = run.config.signing
    if signing.release_key and not run.presigned:
        return rsign.release_signing(signing)
    return signing


def run_seal(run: ReleaseRun) -> None:
    """release.json and the tree's MANIFEST, then the tree verified as `rel-eng verify` would
    (signatures by the release or the compose key), reusing the digests the link read."""
    signing = run.config.signing
    with discarding(run):
        mode = run.config.release_tree.closed_mode if run.opts.closed else 0o755
        page.rewrite(run.tmp, run.c.plan.variant, run.record())
        run.known.pop(run.tmp / page.PAGE, None)
        run.known.pop(run.tmp / page.LISTING, None)
        tree.finish(run.tmp, run.record(), run.known, manifest_signing(run), mode)
        rep = verify_tree(run.tmp, signing.gpg_home, manifest_signing(run).enabled,
                          signing.key, known=run.known, also_key=signing.release_key)
        if rep.problems:
            raise DropBroken(run.tmp, rep.problems)


class discarding:
    """Around a step that writes before the swap: any failure or signal takes it all back."""

    def __init__(self, run: ReleaseRun):
        self.run = run

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            discard(self.run)
        return False


def discard(run: ReleaseRun) -> None:
    """Take back what this run wrote before the swap: the temp tree and the dirs it created."""
    if run.tmp is not None:
        shutil.rmtree(run.tmp, ignore_errors=True)
        run.tmp = None
    tree.remove_created(run.created)


REPLACES = "release_replaces"  # the candidate's manifest: whom its release replaced


def run_swap(run: ReleaseRun) -> None:
    if run.opts.replace and run.existing:
        # written before the exchange, so a resume after a SIGKILL still takes back the
        # replaced candidate's AMIs
        with run.c.manifest.update() as data:
            data[REPLACES] = {k: run.existing.get(k) for k in ("compose_id", "label")}
    try:
        run.old_tree = tree.swap_in(run.tmp, run.target, replace=run.opts.replace)
    except BaseException:
        discard(run)
        raise
    run.tmp = None
    if run.old_tree is not None:
        run.replaced = tree.record_of(run.old_tree)
        tree.remove_tree(run.old_tree)
    run.existing = tree.record_of(run.target)
    verb = "replaced" if run.opts.replace else "released"
    run.out(f"{run.c.plan.label} ({run.cid}) {verb} into {run.target}"
            + (" (closed)" if run.opts.closed else ""))


def swapped(run: ReleaseRun) -> bool:
    return tree.record_of(run.target) is not None and run.ours


def is_open(run: ReleaseRun) -> bool:
    return (os.stat(run.target).st_mode & 0o777) == 0o755


def opening(run: ReleaseRun) -> bool:
    return not run.opts.closed and not run.opts.withdraw


def withdrawing(run: ReleaseRun) -> bool:
    return run.opts.withdraw


def run_withdraw(run: ReleaseRun) -> None:
    """The tree moved aside in one rename, kept (hidden) for whoever looks into why."""
    run.aside = tree.withdrawn_path(run.target, run.cid)
    if not os.path.lexists(run.target) and os.path.isdir(run.aside):
        return  # a rerun after the rename
    tree.move_aside(run.target, run.aside)
    run.out(f"{run.c.plan.label} ({run.cid}) withdrawn: {run.target} moved to {run.aside}")


def sharing(run: ReleaseRun) -> bool:
    return (opening(run) and run.config.ec2.public_milestones
            and bool(cand.ec2_amis(run.c)))


def run_share(run: ReleaseRun) -> None:
    """The candidate's AMIs public in every region, now that the release is open."""
    from rel_eng.publish.ec2_publish import share_ec2

    share_ec2(run.c.topdir, run.config, public=True, out=run.out)


def replaced_id(run: ReleaseRun) -> str | None:
    if run.replaced:
        return run.replaced.get("compose_id")
    if run.opts.replace:  # a resume: the swap was done by the run a crash cut short
        return (run.c.manifest.read().get(REPLACES) or {}).get("compose_id")
    return None


def unsharing(run: ReleaseRun) -> bool:
    return run.opts.withdraw or bool(replaced_id(run))


def run_unshare(run: ReleaseRun) -> None:
    """A withdrawn release's AMIs, or those of the release --replace swapped out, made private
    again or deprecated now ([release] replaced_amis)."""
    from rel_eng.publish.ec2_publish import unshare_ec2

    if run.opts.withdraw:
        topdir = run.c.topdir
    else:
        topdir = run.opts.output / str(replaced_id(run))
    if not (topdir / "compose" / "metadata" / "ec2.json").is_file():
        return
    unshare_ec2(topdir, run.config, how=run.config.release_tree.replaced_amis, out=run.out)


def run_open(run: ReleaseRun) -> None:
    """Release day: the closed top dir made readable (a pre-synced tree appears at once)."""
    if is_open(run):
        if run.opts.open:
            run.out(f"{run.c.plan.label} ({run.cid}) is already open at {run.target}")
        return
    os.chmod(run.target, 0o755)
    run.out(f"{run.c.plan.label} ({run.cid}) opened at {run.target}")


def run_announce(run: ReleaseRun) -> None:
    """The store's row and history, and the message through the outbox."""
    from rel_eng import drop_manifest
    from rel_eng.verify import signed_body

    where = tree.withdrawn_path(run.target, run.cid) if run.opts.withdraw else run.target
    rec = tree.record_of(where) or run.record()
    body, _ = signed_body((where / drop_manifest.NAME).read_text())
    files, _ = drop_manifest.parse(body)
    action = ("withdrawn" if run.opts.withdraw else "opened" if run.opts.open
              else "replaced" if run.opts.replace else "published")
    state = "withdrawn" if run.opts.withdraw else "open" if is_open(run) else "closed"
    if run.opts.withdraw:
        rec = {**rec, "released_by": run.opts.by}  # who withdrew it
    from rel_eng.web.release_pages import write_release_pages

    store.record(run.config, run.opts.output, action, rec, state, run.mirror_path, files,
                 cand.ec2_amis(run.c), pages=lambda rows: write_release_pages(
                     run.mirror_root, run.config.release_tree.pages_dir, rows))
    if "swap" not in run.done and not run.opts.open and not run.opts.withdraw:
        run.out(f"{run.c.plan.label} ({run.cid}) is already released in {run.target}: "
                "nothing to do")


def default_by() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


__all__ = ["Options", "ReleaseRun", "release"]
