"""The finalize steps: metadata, CHECKSUM, publishers, READMEs and staging, or DOOMED."""

from __future__ import annotations

from pathlib import Path

from rel_eng import checksums, metadata, readme, stage
from rel_eng.compose import boot_gate
from rel_eng.compose.model import DOOMED, FINISHED, INCOMPLETE, Compose, ComposeDoomed
from rel_eng.manifest import atomic_write
from rel_eng.progress import Progress
from rel_eng.publish import enabled_publishers


def failures(c: Compose) -> dict[str, str]:
    steps = c.manifest.read()["steps"]
    return {k.split(":", 1)[1]: v.get("reason", "") for k, v in steps.items()
            if k.startswith("build:") and v.get("state") == "failed"}


def write_metadata(c: Compose) -> None:
    """images.json, CHECKSUM per arch (clearsigned if configured)."""
    deliverables = c.manifest.artifacts(intent="deliverable")
    metadata.write_images(c.metadir, c.plan, deliverables, c.topdir)
    for arch in c.plan.arches():
        entries = [checksums.Entry(Path(a.path).name, a.size, a.sha256)
                   for a in deliverables if a.arch == arch]
        if not entries:
            continue
        text = checksums.checksum_text(entries)
        if c.config.signing.enabled:
            text = checksums.clearsign(text, c.config.signing)
        atomic_write(c.images_dir(arch) / c.plan.checksum_name(arch), text)


def publish(c: Compose, progress: Progress | None = None) -> None:
    progress = progress or Progress(False)
    for name, publisher in enabled_publishers(c.config):
        with progress.step(f"publishing with {name}"):
            publisher(c.topdir, c.config)
    record_amis(c)


def record_amis(c: Compose) -> None:
    """AMI ids from compose/metadata/ec2.json into the compose store, when there is one."""
    amis = metadata.read_json(c.metadir / "ec2.json")
    if amis and c.recorder is not None:
        c.recorder.amis(c, amis)


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


def stage_files(c: Compose) -> list[stage.StageFile]:
    files = []
    for a in c.manifest.artifacts(intent="deliverable"):
        p = c.topdir / a.path
        files.append(stage.StageFile(p, str(Path(a.path).relative_to("compose")), a.size, a.sha256))
    for arch in c.plan.arches():
        for name in ("README", c.plan.checksum_name(arch)):
            p = c.images_dir(arch) / name
            if p.is_file():
                files.append(stage.StageFile(p, f"{c.plan.variant}/{arch}/images/{name}", p.stat().st_size))
    for p in sorted(c.metadir.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            files.append(stage.StageFile(p, f"metadata/{p.name}", p.stat().st_size))
    return files


def stage_drop(c: Compose, mirror_root: Path, progress: Progress | None = None) -> Path:
    progress = progress or Progress(False)
    with progress.step(f"staging into {mirror_root / c.plan.mirror_path}"):
        return stage.stage(stage_files(c), mirror_root, c.plan.mirror_path,
                           weekly_retention=c.config.weekly_retention if c.plan.weekly else None)


def refresh_staged(c: Compose, mirror_root: Path) -> Path | None:
    """After a late publish (e.g. `rel-eng ec2 publish`): rewrite the READMEs and summary, and
    swap the changed small files into the staged drop one by one, each atomically. Images and
    CHECKSUM files never change after staging, so the drop stays consistent throughout."""
    write_readmes(c, c.status or FINISHED)
    drop = mirror_root / c.plan.mirror_path
    if not drop.is_dir():
        return None
    for f in stage_files(c):
        if f.sha256 or not (drop / f.rel).parent.is_dir():
            continue
        atomic_write(drop / f.rel, f.src.read_bytes())
    return drop


def finalize(c: Compose, mirror_root: Path, progress: Progress | None = None) -> str:
    """After builds and processing: fail, or write metadata, publish, readme, stage, FINISHED."""
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
    write_metadata(c)
    publish(c, progress)
    write_readmes(c, status)
    stage_drop(c, mirror_root, progress)
    c.set_status(status)
    return status
