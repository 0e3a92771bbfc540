"""Pure planning: config + release + milestone/weekly -> a fully resolved, serialisable DropPlan.

No I/O happens here. Everything later (build, post-process, stage, publish) executes the plan.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rel_eng import naming
from rel_eng.config import MILESTONES, Config
from rel_eng.errors import InputError
from rel_eng.inputfile import read_capped

# (suffix, productmd type, productmd format), the outputs [compose] outputs may name.
# productmd checks each value on its own (SUPPORTED_IMAGE_TYPES, SUPPORTED_IMAGE_FORMATS); it has
# no type whose format list holds tar.xz for a disk, so the tarball is raw-xz / tar.xz, and the
# raw disk compressed alone is raw-xz / raw.xz, as Fedora's later composes list it.


@dataclass(frozen=True)
class Output:
    filename: str
    suffix: str
    type: str  # productmd image type
    format: str  # productmd image format


@dataclass(frozen=True)
class ImageJob:
    key: str  # unique in the drop: "<image type>-<arch>"
    image_type: str
    name: str
    subvariant: str
    description: str
    version: str
    release: str
    arch: str
    oz_arch: str
    optional: bool
    nvra: str
    kickstart: str  # file name in the kickstart dir
    ksversion: str
    fedora_version: int
    install_tree: str  # $arch resolved
    repos: tuple[str, ...]
    disk_size_gib: int
    relpath: str  # directory under compose/, e.g. Cloud/x86_64/images
    outputs: tuple[Output, ...]


@dataclass(frozen=True)
class DropPlan:
    compose_id: str
    short: str
    variant: str
    release_key: str
    release_version: str
    fedora_version: int
    milestone: str | None
    label: str | None
    compose_type: str  # productmd: production / nightly
    date: str  # YYYYMMDD
    respin: int
    mirror_path: str  # where the drop is staged, relative to the mirror root
    builder: str
    images: tuple[ImageJob, ...]

    @property
    def weekly(self) -> bool:
        return self.milestone is None

    def arches(self) -> list[str]:
        return sorted({j.arch for j in self.images})

    def checksum_name(self, arch: str) -> str:
        release = self.images[0].release
        return naming.checksum_file(self.short, self.release_version, self.label, release, arch)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DropPlan":
        images = tuple(
            ImageJob(**{**j, "repos": tuple(j["repos"]),
                        "outputs": tuple(Output(**o) for o in j["outputs"])})
            for j in data["images"]
        )
        return cls(**{**data, "images": images})


def weekly_mirror_path(release_version: str, compose_id: str) -> str:
    return f"alt/cloud/weekly/{release_version}/{compose_id}"


def plan_drop(
    cfg: Config,
    release_key: str,
    *,
    milestone: str | None = None,
    date: dt.date,
    respin: int = 0,
    label_minor: int = 1,
    builder: str | None = None,
    label_major: int = 1,
) -> DropPlan:
    """Resolve every name, version and file of one drop. `milestone=None` means a weekly."""
    release = cfg.release(release_key)
    if milestone is not None:
        if milestone not in MILESTONES:
            raise InputError(f"unknown milestone '{milestone}'", hint=f"use one of {', '.join(MILESTONES)}")
        if not release.has_milestones:
            raise InputError(
                f"release '{release.key}' has no milestones (it only gets weekly drops)",
                hint="use --weekly",
            )
    compose_type = "nightly" if milestone is None else "production"
    datestr = date.strftime("%Y%m%d")
    cid = naming.compose_id(cfg.short, release.version, datestr, compose_type, respin)
    label = naming.label(milestone, label_minor, label_major) if milestone else None
    version, rel = naming.image_version_release(release.version, label, datestr, compose_type, respin)
    if milestone:
        mirror_path = f"alt/stage/{naming.stage_dir(release.version, label)}"
    else:
        mirror_path = weekly_mirror_path(release.version, cid)
    jobs = []
    for itype in cfg.image_types:
        for arch in cfg.arches:
            nvra = naming.nvra(itype.name, version, rel, arch)
            oz_arch = naming.OZ_ARCH[arch]
            jobs.append(ImageJob(
                key=f"{itype.key}-{arch}",
                image_type=itype.key,
                name=itype.name,
                subvariant=itype.subvariant,
                description=itype.description,
                version=version,
                release=rel,
                arch=arch,
                oz_arch=oz_arch,
                optional=arch in cfg.optional_arches,
                nvra=nvra,
                kickstart=itype.kickstart,
                ksversion=release.ksversion,
                fedora_version=release.fedora_version,
                install_tree=release.install_tree.replace("$arch", oz_arch),
                repos=tuple(r.replace("$arch", oz_arch) for r in release.repos),
                disk_size_gib=cfg.disk_size_gib,
                relpath=f"{cfg.variant}/{arch}/images",
                outputs=tuple(
                    Output(f"{nvra}.{suffix}", suffix, ptype, pformat)
                    for suffix, ptype, pformat in naming.OUTPUT_FORMATS if suffix in cfg.outputs
                ),
            ))
    return DropPlan(
        compose_id=cid,
        short=cfg.short,
        variant=cfg.variant,
        release_key=release.key,
        release_version=release.version,
        fedora_version=release.fedora_version,
        milestone=milestone,
        label=label,
        compose_type=compose_type,
        date=datestr,
        respin=respin,
        mirror_path=mirror_path,
        builder=builder or cfg.builder,
        images=tuple(jobs),
    )


def load_plan(topdir: Path) -> DropPlan:
    """A compose's plan, from its work/plan.json: the one reader (compose, resume, ec2 publish).
    Missing or damaged is bad input naming the file, never a guess at a partial compose."""
    path = Path(topdir) / "work" / "plan.json"
    try:
        return DropPlan.from_dict(json.loads(read_capped(path)))
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{topdir} is not a compose directory (no work/plan.json)",
                         hint="name an <output>/<compose id> directory") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise InputError(f"{path}: plan.json is damaged ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:120]})",
                         hint="this compose cannot be resumed or published; start a new one"
                         ) from None
