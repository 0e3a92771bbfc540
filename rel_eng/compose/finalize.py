"""The finalize steps: metadata, CHECKSUM, publishers, READMEs and staging, or DOOMED."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from rel_eng import checksums, logfile, metadata, readme, stage, verify
from rel_eng.compose import boot_gate, reserve, written
from rel_eng.compose.model import DOOMED, FINISHED, INCOMPLETE, Compose, ComposeDoomed, recorded
from rel_eng.compose.locks import step_lock
from rel_eng.atomic import atomic_write
from rel_eng.manifest import Artifact
from rel_eng.pipeline import FINALIZE_STEPS, resolve, step_key
from rel_eng.progress import Progress
from rel_eng.publish import enabled_publishers, enabled_sharers
from rel_eng.web import drop_page, stream


def failures(c: Compose) -> dict[str, str]:
    """image -> why its build failed (a gated boot-test failure marks the build failed too)."""
    return _failures(c.manifest.read()["steps"])


def _failures(steps: dict) -> dict[str, str]:
    return {k.split(":", 1)[1]: v.get("reason", "") for k, v in steps.items()
            if k.startswith("build:") and v.get("state") == "failed"}


def write_metadata(c: Compose) -> None:
    """images.json, CHECKSUM per arch (clearsigned if configured)."""
    write_images(c)
    write_checksums(c)


def _deliverables(c: Compose, given: list[Artifact] | None) -> list[Artifact]:
    return c.manifest.artifacts(intent="deliverable") if given is None else given


def write_images(c: Compose, deliverables: list[Artifact] | None = None) -> None:
    metadata.write_images(c.metadir, c.plan, _deliverables(c, deliverables), c.topdir)


def _checksum_entries(c: Compose, deliverables: list[Artifact] | None = None
                      ) -> dict[str, list[checksums.Entry]]:
    deliverables = _deliverables(c, deliverables)
    out = {}
    for arch in c.plan.arches():
        entries = [checksums.Entry(Path(a.path).name, a.size, a.sha256)
                   for a in deliverables if a.arch == arch]
        if entries:
            out[arch] = entries
    return out


def write_checksums(c: Compose, deliverables: list[Artifact] | None = None) -> None:
    for arch, entries in _checksum_entries(c, deliverables).items():
        text = checksums.checksum_text(entries)
        if c.config.signing.enabled:
            text = checksums.clearsign(text, c.config.signing)
        atomic_write(c.images_dir(arch) / c.plan.checksum_name(arch), text)


def publish(c: Compose, progress: Progress | None = None, share: bool = True) -> None:
    """Every enabled publisher; with share=False the results stay private (see `share`)."""
    progress = progress or Progress(False)
    for name, publisher in enabled_publishers(c.config):
        with progress.step(f"publishing with {name}" + ("" if share else " (private)")):
            publisher(c.topdir, c.config, share=share)
    record_amis(c, announce=share)  # private AMIs are recorded, announced only once shared


def share(c: Compose, progress: Progress | None = None) -> None:
    """Make public and announce what `publish(c, share=False)` registered."""
    progress = progress or Progress(False)
    for name, sharer in enabled_sharers(c.config):
        with progress.step(f"sharing and announcing with {name}"):
            sharer(c.topdir, c.config)
    record_amis(c)


def record_amis(c: Compose, announce: bool = True) -> None:
    """AMI ids from compose/metadata/ec2.json into the compose store, when there is one, with
    their "published" messages when `announce` (never before the drop is staged)."""
    amis = metadata.read_json(c.metadir / "ec2.json")
    if amis and c.recorder is not None:
        c.recorder.amis(c, amis, announce=announce)


def write_readmes(c: Compose, status: str, deliverables: list[Artifact] | None = None,
                  failed: dict[str, str] | None = None) -> None:
    deliverables = _deliverables(c, deliverables)
    bootable = all(a.bootable for a in deliverables) if deliverables else False
    failed = failures(c) if failed is None else failed
    metadata.write_summary(c.metadir, c.plan, status, failed, bootable)
    amis = metadata.read_json(c.metadir / "ec2.json")
    for arch in c.plan.arches():
        if not c.images_dir(arch).is_dir():
            continue
        text = readme.render(c.plan, arch, deliverables, c.plan.checksum_name(arch),
                             c.config.signing.enabled, c.config.default_user, bootable,
                             failed, amis)
        text += boot_gate.readme_section(c, arch)
        atomic_write(c.images_dir(arch) / "README", text)
    drop_page.write_drop_pages(c, status)


def image_files(c: Compose, deliverables: list[Artifact] | None = None) -> list[stage.StageFile]:
    return [stage.StageFile(c.topdir / a.path, str(Path(a.path).relative_to("compose")), a.size,
                            a.sha256) for a in _deliverables(c, deliverables)]


def stage_files(c: Compose, deliverables: list[Artifact] | None = None) -> list[stage.StageFile]:
    """Every file of the drop, each with the size and sha256 recorded when it was written
    (images by the step that made them, the rest by written.py): staging copies nothing else."""
    files = image_files(c, deliverables)
    record = written.recorded(c)
    for p in written.drop_small_files(c):
        if p.is_symlink() or p.exists() and not p.is_file():
            raise stage.StagingError(f"{p}: not a regular file; not staging it",
                                     hint="a drop holds plain files")
        if not p.exists():
            continue
        if p.parent == c.metadir:
            rel = f"metadata/{p.name}"
        elif p.parent.parent == c.topdir / "work":  # the download page, at the drop's top
            rel = p.name
        else:
            rel = str(p.relative_to(c.topdir / "compose"))
        got = record.get(str(p.relative_to(c.topdir)))
        if not got:
            raise stage.StagingError(f"{p}: no step of this compose recorded writing it; not "
                                     "staging it", hint="remove it, or start a new respin")
        files.append(stage.StageFile(p, rel, got["size"], got["sha256"]))
    return files


def stage_drop(c: Compose, mirror_root: Path, progress: Progress | None = None,
               deliverables: list[Artifact] | None = None) -> Path:
    progress = progress or Progress(False)
    with progress.step(f"staging into {mirror_root / c.plan.mirror_path}"):
        files = stage_files(c, deliverables)
        drop = stage.stage(files, mirror_root, c.plan.mirror_path,
                           weekly_retention=c.config.weekly_retention if c.plan.weekly else None,
                           signing=c.config.signing)
        reserve.release(mirror_root, c.plan.mirror_path)  # the drop holds the name now
        return drop


def record_staged(c: Compose, drop: Path, expected: dict[str, str]) -> None:
    """The staged drop into the compose store, with its "drop staged" message."""
    if c.recorder is not None:
        c.recorder.staged(c, drop, expected)


def refresh_staged(c: Compose, mirror_root: Path) -> Path | None:
    """After a late publish (e.g. `rel-eng ec2 publish`): rewrite the READMEs and summary, and
    restage the drop with them and a new MANIFEST in one directory exchange (stage.restage).
    Images and CHECKSUM files never change after staging."""
    with written.recording(c):
        write_readmes(c, c.read_status() or FINISHED)
    drop = mirror_root / c.plan.mirror_path
    if not drop.is_dir():
        return None
    stage.restage(stage_files(c), drop, c.config.signing)
    if c.plan.weekly:
        stream.write_stream_files(drop.parent)
    return drop


def _keyed(c: Compose, step: str, digest: str, outputs: list[Path], run,
           steps: dict | None = None) -> bool:
    """Run `run()` unless the manifest records `step` done for `digest` and its outputs exist.
    `steps`: the manifest's step records as already read (finalize reads them once)."""
    rec = (c.manifest.read()["steps"] if steps is None else steps).get(step) or {}
    done = rec.get("state") == "done" and rec.get("digest") == digest
    if done and all(p.exists() for p in outputs):
        return False
    with logfile.step(step):
        with written.recording(c):  # the digests of what it wrote, the moment it wrote them
            run()
        recorded(c, c.recorder).set_step(step, digest, "done")
        logfile.file_only.info("done")
    return True


def _ec2_regions(c: Compose) -> dict:
    """What the READMEs show of ec2.json: the AMI ids (not whether they are public yet)."""
    amis = metadata.read_json(c.metadir / "ec2.json") or {}
    return {nvra: info.get("regions", {}) for nvra, info in amis.get("images", {}).items()}


@dataclass
class FinalizeRun:
    """One pass of finalize's sub-steps (rel_eng.pipeline.FINALIZE_STEPS): the manifest is read
    once here, and each sub-step's key is kept for the ones after it."""

    c: Compose
    mirror_root: Path
    status: str
    progress: Progress
    deliverables: list[Artifact]
    raws: list[Artifact]
    failed: dict[str, str]
    publishers: list[str]
    steps: dict[str, dict]  # the step records as read at the start: each sub-step writes only its own
    keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, c: Compose, mirror_root: Path, status: str, progress: Progress,
              data: dict | None = None) -> "FinalizeRun":
        """`data`: the manifest as the caller already read it (finalize reads it once)."""
        data = c.manifest.read() if data is None else data
        arts = [Artifact(**a) for a in data["artifacts"]]
        return cls(c, mirror_root, status, progress,
                   deliverables=[a for a in arts if a.intent == "deliverable"],
                   raws=[a for a in arts if a.kind == "raw-disk"],
                   failed=_failures(data["steps"]),
                   publishers=[name for name, _ in enabled_publishers(c.config)],
                   steps=data["steps"])

    @property
    def deliverables_key(self) -> list[dict]:
        return [dataclasses.asdict(a) for a in self.deliverables]

    @property
    def drop(self) -> Path:
        return self.mirror_root / self.c.plan.mirror_path


def has_publishers(r: FinalizeRun) -> bool:
    return bool(r.publishers)


def metadata_inputs(r: FinalizeRun) -> tuple:
    c = r.c
    # images.json records each file's mtime: a re-made file (same bytes) is a new input.
    mtimes = [int((c.topdir / a.path).stat().st_mtime) for a in r.deliverables
              if (c.topdir / a.path).is_file()]
    return (c.plan, r.deliverables_key, mtimes)


def run_metadata(r: FinalizeRun) -> None:
    write_images(r.c, r.deliverables)


def metadata_outputs(r: FinalizeRun) -> list[Path]:
    return [r.c.metadir / "images.json"]


def checksum_inputs(r: FinalizeRun) -> tuple:
    return (r.c.plan, r.deliverables_key, r.c.config.signing)


def run_checksum(r: FinalizeRun) -> None:
    write_checksums(r.c, r.deliverables)


def checksum_outputs(r: FinalizeRun) -> list[Path]:
    c = r.c
    return [c.images_dir(a) / c.plan.checksum_name(a) for a in _checksum_entries(c, r.deliverables)]


def publish_inputs(r: FinalizeRun) -> tuple:
    return (r.c.plan.compose_id, r.publishers, [dataclasses.asdict(a) for a in r.raws],
            dataclasses.asdict(r.c.config.ec2) if r.publishers else None)


def run_publish(r: FinalizeRun) -> None:
    publish(r.c, r.progress, share=False)


def publish_outputs(r: FinalizeRun) -> list[Path]:
    return [r.c.metadir / "ec2.json"]


def readme_inputs(r: FinalizeRun) -> tuple:
    c = r.c
    boot = (metadata.read_json(c.metadir / metadata.SUMMARY) or {}).get("boot_test")
    return (c.plan, r.deliverables_key, r.status, r.failed, _ec2_regions(c),
            c.config.signing.enabled, c.config.default_user, boot)


def run_readme(r: FinalizeRun) -> None:
    write_readmes(r.c, r.status, r.deliverables, r.failed)


def readme_outputs(r: FinalizeRun) -> list[Path]:
    c = r.c
    return [*(c.images_dir(a) / "README" for a in c.plan.arches() if c.images_dir(a).is_dir()),
            c.metadir / metadata.SUMMARY]


def stage_inputs(r: FinalizeRun) -> tuple:
    k = r.keys
    return (str(r.mirror_root.resolve()), r.c.plan.mirror_path, k["metadata"], k["checksum"],
            k["publish"], k["readme"])


def run_stage(r: FinalizeRun) -> None:
    stage_drop(r.c, r.mirror_root, r.progress, r.deliverables)


def settle_stage(r: FinalizeRun) -> None:  # the stage step's when_done_before
    """Staged before: repair what a crash left behind (weekly `latest`, retention)."""
    c = r.c
    if c.plan.weekly:
        stage.settle_weekly(r.drop.parent, c.config.weekly_retention,
                            current=Path(c.plan.mirror_path).name)


def run_verify(r: FinalizeRun) -> None:
    """The staged bytes, end to end, before anything is shared or says FINISHED (DropBroken);
    then the drop is recorded and announced (the outbox ignores a message it already holds)."""
    verify.verify_staged(r.drop, r.c.config.signing)
    record_staged(r.c, r.drop, {f.rel: f.sha256 for f in image_files(r.c, r.deliverables)})


def share_inputs(r: FinalizeRun) -> tuple:
    return (r.keys["publish"], r.keys["stage"])


def run_share(r: FinalizeRun) -> None:
    with written.recording(r.c):  # the public ec2.json, recorded before restaging
        share(r.c, r.progress)
    if r.drop.is_dir():  # ec2.json now says public: restage with it and a new MANIFEST
        stage.restage(stage_files(r.c, r.deliverables), r.drop, r.c.config.signing)


def finalize_steps(c: Compose, mirror_root: Path, status: str,
                   progress: Progress | None = None, data: dict | None = None) -> dict[str, bool]:
    """Finalize's sub-steps in their declared order (rel_eng.pipeline.FINALIZE_STEPS): metadata
    -> checksum -> publish (private) -> readme -> stage -> verify -> share. Each keyed one is a
    manifest step: a rerun with the same inputs redoes none of them. Returns which keyed steps
    ran. Nothing becomes public before the drop is staged and verified."""
    run = FinalizeRun.start(c, mirror_root, status, progress or Progress(False), data)
    ran: dict[str, bool] = {}
    for sub in FINALIZE_STEPS:
        applies = sub.applies is None or resolve(sub.applies)(run)
        if sub.inputs is None:  # not keyed: runs every time (the check of the staged drop)
            if applies:
                with logfile.step(sub.name):
                    resolve(sub.run)(run)
                    logfile.file_only.info("done")
            continue
        # Keyed even when it does not apply: a later step's key may include this one's.
        run.keys[sub.name] = key = step_key(sub.name, *resolve(sub.inputs)(run))
        if not applies:
            continue
        outputs = resolve(sub.found)(run) if sub.found else []
        ran[sub.name] = _keyed(c, sub.name, key, outputs, lambda sub=sub: resolve(sub.run)(run),
                               run.steps)
        if not ran[sub.name] and sub.when_done_before:
            resolve(sub.when_done_before)(run)
    return ran


def finalize_inputs(c: Compose, image: str = "") -> tuple:
    """Finalize is keyed by its sub-steps, each by its own inputs; the step itself by the plan."""
    return (c.plan.compose_id,)


def finalize(c: Compose, mirror_root: Path, progress: Progress | None = None) -> str:
    """After builds and processing: fail, or run the finalize steps and end FINISHED.

    Holds the compose's `finalize` lock (the one the Celery finalize task takes), so two runs
    of one compose never finalize at once."""
    with step_lock(c.topdir, "finalize"), logfile.step("finalize"):
        data = c.manifest.read()  # once: every sub-step works from this reading
        failed = _failures(data["steps"])
        required = [k for k in failed if not c.job(k).optional]
        if required:
            c.set_status(DOOMED, c.recorder)
            metadata.write_summary(c.metadir, c.plan, DOOMED, failed, False)
            raise ComposeDoomed(
                f"compose {c.plan.compose_id} is DOOMED: required image(s) failed: "
                + "; ".join(f"{k}: {failed[k]}" for k in sorted(required)),
                hint=f"see {c.logdir}; nothing was staged or published")
        status = INCOMPLETE if failed else FINISHED
        finalize_steps(c, mirror_root, status, progress, data)
        if c.read_status() != status:
            c.set_status(status, c.recorder)
        return status
