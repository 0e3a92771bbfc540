"""Config: the `[compose]` keys, and one `section(...)` field per table of the config file.

The fields declared with `setting` are the `[compose]` table; every `section` field names a
table and the dataclass (or parser) that reads it. Adding a section is one dataclass in its own
module of rel_eng.config and one line here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rel_eng import paths
from rel_eng.builder_names import BUILDER_CLASSES  # the registry's table: a leaf, no backend
from rel_eng.config.boot_test import BootTestConfig
from rel_eng.config.celery import CelerySettings
from rel_eng.config.ec2 import Ec2Config
from rel_eng.config.images import DEFAULT_IMAGE_TYPES, ImageType, parse_images
from rel_eng.config.koji import KojiConfig
from rel_eng.config.messaging import MessagingConfig
from rel_eng.config.oz import OzConfig
from rel_eng.config.problems import Problems
from rel_eng.config.release import ReleaseConfig
from rel_eng.config.releases import Release
from rel_eng.config.schedule import ScheduleConfig
from rel_eng.config.signing import Signing
from rel_eng.config.store import StoreConfig
from rel_eng.config.table import from_json, section, setting
from rel_eng.config.web import WebConfig
from rel_eng.errors import ConfigError
from rel_eng.naming import ARCHES, OUTPUT_FORMATS, QCOW2_COMPRESSION, user_name_problem

_OUTPUTS = tuple(suffix for suffix, _, _ in OUTPUT_FORMATS)


def _arches(values: tuple[str, ...]) -> str | None:
    unknown = [a for a in values if a not in ARCHES]
    if unknown:
        return f"unknown arch '{unknown[0]}' (use {', '.join(ARCHES)})"
    twice = sorted({a for a in values if values.count(a) > 1})
    return f"'{twice[0]}' is listed twice" if twice else None


def _builder(name: str) -> str | None:
    if name not in BUILDER_CLASSES:
        return f"unknown builder '{name}' (known: {', '.join(sorted(BUILDER_CLASSES))})"
    return None


def _outputs(values: tuple[str, ...]) -> str | None:
    unknown = [o for o in values if o not in _OUTPUTS]
    if unknown:
        return f"unknown output {unknown[0]!r} (use {', '.join(_OUTPUTS)})"
    if len(set(values)) != len(values):
        return "lists an output twice"
    return None if values else 'must list at least one output, e.g. "qcow2"'


def _directory(path: str) -> str | None:
    return None if Path(path).is_dir() else f"{path} is not a directory"


@dataclass(frozen=True)
class Config:
    source: str = "(defaults)"  # the file it was loaded from
    # [compose]
    short: str = setting("Fedora-Cloud", "productmd short name: the compose id's first part")
    variant: str = setting("Cloud", "productmd variant")
    builder: str = setting("synthetic", "synthetic, oz or koji (rel_eng.builders)", valid=_builder)
    arches: tuple[str, ...] = setting(ARCHES, "the arches every image is built for", valid=_arches)
    optional_arches: tuple[str, ...] = setting((), "arches whose failure leaves the compose "
                                               "FINISHED_INCOMPLETE", valid=_arches)
    disk_size_gib: int = setting(3, "virtual size of the raw disk", low=1, high=1024, unit="GiB")
    xz_preset: int = setting(6, "xz -N for raw.tar.xz and raw.xz", low=0, high=9)
    qcow2_compression: str = setting("zlib", "qemu-img's compression of the qcow2",
                                     choices=QCOW2_COMPRESSION, noun="compression")
    outputs: tuple[str, ...] = setting(("qcow2", "raw.tar.xz"), "deliverables per image "
                                       "(rel_eng.naming.OUTPUT_FORMATS)", valid=_outputs)
    default_user: str = setting("fedora", "cloud-init's default user, as the boot test logs in",
                                valid=user_name_problem)
    weekly_retention: int = setting(4, "weekly drops kept in the mirror per stream", low=1)
    kickstart_dir: str = setting(str(paths.KICKSTART_DIR), "where images' kickstarts are",
                                 path="relative", valid=_directory)
    tdl_dir: str = setting(str(paths.TDL_DIR), "where the Oz TDL template is", path="relative",
                           valid=_directory)
    releases_file: str = setting(str(paths.RELEASES_FILE), "the release definitions",
                                 path="relative")
    # the other tables
    signing: Signing = section(Signing, "signing")
    celery: CelerySettings = section(CelerySettings, "celery")
    ec2: Ec2Config = section(Ec2Config, "ec2")
    koji: KojiConfig = section(KojiConfig, "koji")
    oz: OzConfig = section(OzConfig, "oz")
    store: StoreConfig = section(StoreConfig, "store")
    schedule: ScheduleConfig = section(ScheduleConfig, "schedule")
    messaging: MessagingConfig = section(MessagingConfig, "messaging")
    boot_test: BootTestConfig = section(BootTestConfig, "boot_test")
    web: WebConfig = section(WebConfig, "web")
    release_tree: ReleaseConfig = section(ReleaseConfig, "release")
    image_types: tuple[ImageType, ...] = section(ImageType, "images", parse=parse_images,
                                                 default=lambda: DEFAULT_IMAGE_TYPES)
    releases: tuple[Release, ...] = ()  # from releases_file

    def release(self, key: str) -> Release:
        for rel in self.releases:
            if rel.key.lower() == str(key).lower():
                return rel
        known = ", ".join(r.key for r in self.releases) or "none"
        raise ConfigError([f"unknown release '{key}' (known: {known}; defined in {self.releases_file})"])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        return from_json(cls, dict(data))


def check_config(cfg: Config, problems: Problems) -> None:
    """The rules that tie tables together, and the files the config names."""
    for arch in cfg.optional_arches:
        if arch in ARCHES and arch not in cfg.arches:  # an unknown arch is told once, above
            problems.add("compose.optional_arches", f"'{arch}' is not in compose.arches")
    if not cfg.arches:
        problems.add("compose.arches", f"must name at least one arch ({', '.join(ARCHES)})")
    problems.name("compose.short", cfg.short)
    problems.name("compose.variant", cfg.variant)
    names: dict[str, str] = {}
    for t in cfg.image_types:
        problems.name(f"images.{t.key}.name", t.name)
        problems.name(f"images.{t.key}.subvariant", t.subvariant)
        if t.name in names:
            problems.add(f"images.{t.key}.name", f"'{t.name}' is also the name of images.{names[t.name]}")
        names.setdefault(t.name, t.key)
    missing = []
    for t in cfg.image_types if Path(cfg.kickstart_dir).is_dir() else ():
        ks_dir = Path(cfg.kickstart_dir).resolve()
        ks = (ks_dir / t.kickstart).resolve()
        if not ks.is_relative_to(ks_dir):
            problems.add(f"images.{t.key}.kickstart",
                         f"'{t.kickstart}' is outside the kickstart dir {ks_dir} (name a file in it)")
        elif not ks.is_file():
            missing.append(t)
    if len(missing) > 1 and len(missing) == len(cfg.image_types):
        # One bad value, one line: the dir holds none of them, so the dir is what is wrong.
        problems.add("compose.kickstart_dir", f"{cfg.kickstart_dir or '.'} holds none of the "
                     f"kickstarts the images name ({', '.join(t.kickstart for t in missing)})")
    else:
        for t in missing:
            problems.add(f"images.{t.key}.kickstart",
                         f"{Path(cfg.kickstart_dir) / t.kickstart} is not a file")
    if len({t.subvariant for t in cfg.image_types}) != len(cfg.image_types):
        problems.add("images", "subvariants must be unique")
    if cfg.messaging.enabled and not cfg.store.enabled:
        problems.add("messaging.enabled", "needs the compose store (its outbox keeps every "
                                          "message until sent): set [store] enabled = true")

