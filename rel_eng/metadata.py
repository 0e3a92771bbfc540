"""Compose metadata written with productmd (composeinfo.json, images.json) plus our drop summary."""

from __future__ import annotations

import json
from pathlib import Path

from productmd.composeinfo import ComposeInfo, Variant
from productmd.images import Image, Images

from rel_eng.atomic import atomic_path, atomic_write
from rel_eng.manifest import Artifact
from rel_eng.plan import DropPlan

SUMMARY = "rel-eng.json"


def _fill_compose(header, plan: DropPlan) -> None:
    header.id = plan.compose_id
    header.type = plan.compose_type
    header.date = plan.date
    header.respin = plan.respin
    header.label = plan.label


def _dump(obj, path: Path) -> None:
    # productmd dumps in place; write beside and rename so readers never see half a file.
    with atomic_path(path) as tmp:
        obj.dump(str(tmp))


def write_composeinfo(metadir: Path, plan: DropPlan) -> Path:
    ci = ComposeInfo()
    ci.release.name = "Fedora"
    ci.release.short = "Fedora"
    ci.release.version = plan.release_version
    ci.release.type = "ga"
    ci.release.is_layered = False
    _fill_compose(ci.compose, plan)
    variant = Variant(ci)
    variant.id = variant.uid = variant.name = plan.variant
    variant.type = "variant"
    variant.arches = set(plan.arches())
    for arch in variant.arches:
        variant.paths.images[arch] = f"{plan.variant}/{arch}/images"
    ci.variants.add(variant)
    metadir.mkdir(parents=True, exist_ok=True)
    path = metadir / "composeinfo.json"
    _dump(ci, path)
    return path


def write_images(metadir: Path, plan: DropPlan, deliverables: list[Artifact], topdir: Path) -> Path:
    """images.json: one productmd Image per deliverable; subvariant tells generic from EC2."""
    jobs = {j.key: j for j in plan.images}
    images = Images()
    _fill_compose(images.compose, plan)
    for art in sorted(deliverables, key=lambda a: a.path):
        job = jobs[art.job_key]
        output = next((o for o in job.outputs if o.suffix == art.kind), None)
        if output is None:  # not an image (e.g. the boot test's package list)
            continue
        img = Image(images)
        img.path = str(Path(art.path).relative_to("compose"))
        img.mtime = int((topdir / art.path).stat().st_mtime)
        img.size = art.size
        img.volume_id = None
        img.type = output.type
        img.format = output.format
        img.arch = job.arch
        img.disc_number = 1
        img.disc_count = 1
        img.checksums = {"sha256": art.sha256}
        img.implant_md5 = None
        img.bootable = art.bootable
        img.subvariant = job.subvariant
        images.add(plan.variant, job.arch, img)
    path = metadir / "images.json"
    _dump(images, path)
    return path


def write_summary(metadir: Path, plan: DropPlan, status: str, failed: dict[str, str],
                  bootable: bool) -> Path:
    """Our own summary: status, failed images and why, and whether the images boot."""
    data = {
        "compose_id": plan.compose_id,
        "status": status,
        "builder": plan.builder,
        "bootable": bootable,
        "failed_images": {k: failed[k] for k in sorted(failed)},
        "mirror_path": plan.mirror_path,
    }
    path = metadir / SUMMARY
    previous = read_json(path) if path.is_file() else None
    if previous and "boot_test" in previous:  # written by the boot gate step, kept
        data["boot_test"] = previous["boot_test"]
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
