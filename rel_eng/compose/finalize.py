"""The finalize steps: metadata, CHECKSUM, publishers, READMEs and staging, or DOOMED."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rel_eng import checksums, logfile, metadata, readme, stage, verify
from rel_eng.compose import boot_gate, reserve, written
from rel_eng.compose.model import DOOMED, FINISHED, INCOMPLETE, Compose, ComposeDoomed
from rel_eng.compose.locks import step_lock
from rel_eng.manifest import atomic_write, step_digest
from rel_eng.progress import Progress
from rel_eng.publish import enabled_publishers, enabled_sharers
from rel_eng.web import drop_page, stream


def failures(c: Compose) -> dict[str, str]:
    steps = c.manifest.read()["steps"]
    return {k.split(":", 1)[1]: v.get("reason", "") for k, v in steps.items()
            if k.startswith("build:") and v.get("state") == "failed"}


def write_metadata(c: Compose) -> None:
    """images.json, CHECKSUM per arch (clearsigned if configured)."""
    write_images(c)
    write_checksums(c)


def write_images(c: Compose) -> None:
    metadata.write_images(c.metadir, c.plan, c.manifest.artifacts(intent="deliverable"), c.topdir)


def _checksum_entries(c: Compose) -> dict[str, list[checksums.Entry]]:
    deliverables = c.manifest.artifacts(intent="deliverable")
    out = {}
    for arch in c.plan.arches():
        entries = [checksums.Entry(Path(a.path).name, a.size, a.sha256)
                   for a in deliverables if a.arch == arch]
        if entries:
            out[arch] = entries
    return out


def write_checksums(c: Compose) -> None:
    for arch, entries in _checksum_entries(c).items():
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


def write_readmes(c: Compose, status: str) -> None:
    deliverables = c.manifest.artifacts(intent="deliverable")
    bootable = all(a.bootable for a in deliverables) if deliverables else False
    failed = failures(c)
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


def image_files(c: Compose) -> list[stage.StageFile]:
    return [stage.StageFile(c.topdir / a.path, str(Path(a.path).relative_to("compose")), a.size,
                            a.sha256) for a in c.manifest.artifacts(intent="deliverable")]


def stage_files(c: Compose) -> list[stage.StageFile]:
    """Every file of the drop, each with the size and sha256 recorded when it was written
    (images by the step that made them, the rest by written.py): staging copies nothing else."""
    files = image_files(c)
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


def stage_drop(c: Compose, mirror_root: Path, progress: Progress | None = None) -> Path:
    progress = progress or Progress(False)
    with progress.step(f"staging into {mirror_root / c.plan.mirror_path}"):
        files = stage_files(c)
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
        write_readmes(c, c.status or FINISHED)
    drop = mirror_root / c.plan.mirror_path
    if not drop.is_dir():
        return None
    stage.restage(stage_files(c), drop, c.config.signing)
    if c.plan.weekly:
        stream.write_stream_files(drop.parent)
    return drop


def _keyed(c: Compose, step: str, digest: str, outputs: list[Path], run) -> bool:
    """Run `run()` unless the manifest records `step` done for `digest` and its outputs exist."""
    if c.manifest.step_done(step, digest) and all(p.exists() for p in outputs):
        return False
    with logfile.step(step):
        with written.recording(c):  # the digests of what it wrote, the moment it wrote them
            run()
        c.manifest.set_step(step, digest, "done")
        logfile.file_only.info("done")
    return True


def _deliverables_key(c: Compose) -> list[dict]:
    return [dataclasses.asdict(a) for a in c.manifest.artifacts(intent="deliverable")]


def _ec2_regions(c: Compose) -> dict:
    """What the READMEs show of ec2.json: the AMI ids (not whether they are public yet)."""
    amis = metadata.read_json(c.metadir / "ec2.json") or {}
    return {nvra: info.get("regions", {}) for nvra, info in amis.get("images", {}).items()}


def finalize_steps(c: Compose, mirror_root: Path, status: str,
                   progress: Progress | None = None) -> dict[str, bool]:
    """metadata -> checksum -> publish (private) -> readme -> stage -> share, each a manifest
    step keyed by its inputs: a rerun with the same inputs redoes none of them. Returns which
    steps ran. Nothing becomes public before the drop is staged."""
    progress = progress or Progress(False)
    deliverables = _deliverables_key(c)
    ran = {}
    keys = {}
    # images.json records each file's mtime: a re-made file (same bytes) is a new input.
    mtimes = [int((c.topdir / a["path"]).stat().st_mtime) for a in deliverables
              if (c.topdir / a["path"]).is_file()]
    keys["metadata"] = step_digest("metadata", c.plan, deliverables, mtimes)
    ran["metadata"] = _keyed(c, "metadata", keys["metadata"], [c.metadir / "images.json"],
                             lambda: write_images(c))
    sums = _checksum_entries(c)
    keys["checksum"] = step_digest("checksum", c.plan, deliverables, c.config.signing)
    ran["checksum"] = _keyed(c, "checksum", keys["checksum"],
                             [c.images_dir(a) / c.plan.checksum_name(a) for a in sums],
                             lambda: write_checksums(c))
    publishers = [name for name, _ in enabled_publishers(c.config)]
    raws = [dataclasses.asdict(a) for a in c.manifest.artifacts(kind="raw-disk")]
    keys["publish"] = step_digest("publish", c.plan.compose_id, publishers, raws,
                                  dataclasses.asdict(c.config.ec2) if publishers else None)
    if publishers:
        ran["publish"] = _keyed(c, "publish", keys["publish"], [c.metadir / "ec2.json"],
                                lambda: publish(c, progress, share=False))
    failed = failures(c)
    boot = (metadata.read_json(c.metadir / metadata.SUMMARY) or {}).get("boot_test")
    keys["readme"] = step_digest("readme", c.plan, deliverables, status, failed, _ec2_regions(c),
                                 c.config.signing.enabled, c.config.default_user, boot)
    readmes = [c.images_dir(a) / "README" for a in c.plan.arches() if c.images_dir(a).is_dir()]
    ran["readme"] = _keyed(c, "readme", keys["readme"], [*readmes, c.metadir / metadata.SUMMARY],
                           lambda: write_readmes(c, status))
    keys["stage"] = step_digest("stage", str(mirror_root.resolve()), c.plan.mirror_path,
                                keys["metadata"], keys["checksum"], keys["publish"], keys["readme"])
    ran["stage"] = _keyed(c, "stage", keys["stage"], [], lambda: stage_drop(c, mirror_root, progress))
    if not ran["stage"] and c.plan.weekly:  # staged before: repair what a crash left behind
        stage.settle_weekly((mirror_root / c.plan.mirror_path).parent, c.config.weekly_retention,
                            current=Path(c.plan.mirror_path).name)
    # The staged drop is complete here. Checks of the staged drop go between staging and sharing:
    # stage -> verify -> share. Nothing below runs unless the drop is in the mirror.
    # The staged bytes, end to end, before anything is shared or says FINISHED (DropBroken).
    drop = mirror_root / c.plan.mirror_path
    with logfile.step("verify"):
        verify.verify_staged(drop, c.config.signing)
    # Announced only once verified (the outbox ignores a message it already holds).
    record_staged(c, drop, {f.rel: f.sha256 for f in image_files(c)})
    if publishers:
        keys["share"] = step_digest("share", keys["publish"], keys["stage"])

        def share_and_refresh():
            with written.recording(c):  # the public ec2.json, recorded before restaging
                share(c, progress)
            drop = mirror_root / c.plan.mirror_path
            if drop.is_dir():  # ec2.json now says public: restage with it and a new MANIFEST
                stage.restage(stage_files(c), drop, c.config.signing)

        ran["share"] = _keyed(c, "share", keys["share"], [], share_and_refresh)
    return ran


def finalize(c: Compose, mirror_root: Path, progress: Progress | None = None) -> str:
    """After builds and processing: fail, or run the finalize steps and end FINISHED.

    Holds the compose's `finalize` lock (the one the Celery finalize task takes), so two runs
    of one compose never finalize at once."""
    with step_lock(c.topdir, "finalize"), logfile.step("finalize"):
        failed = failures(c)
        required = [k for k in failed if not c.job(k).optional]
        if required:
            c.set_status(DOOMED)
            metadata.write_summary(c.metadir, c.plan, DOOMED, failed, False)
            raise ComposeDoomed(
                f"compose {c.plan.compose_id} is DOOMED: required image(s) failed: "
                + "; ".join(f"{k}: {failed[k]}" for k in sorted(required)),
                hint=f"see {c.logdir}; nothing was staged or published")
        status = INCOMPLETE if failed else FINISHED
        finalize_steps(c, mirror_root, status, progress)
        if c.status != status:
            c.set_status(status)
        return status
