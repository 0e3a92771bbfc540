"""Pipeline config and release definitions: TOML parsed once into frozen, typed objects.

Every problem is collected with its file and key and reported together (ConfigError, exit 2).
Objects round-trip through plain JSON-able dicts (`to_dict`/`from_dict`) for the manifest and
for task queues.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rel_eng import paths
from rel_eng.naming import OUTPUT_FORMATS, QCOW2_COMPRESSION, path_component_problem
from rel_eng.boottest.settings import BootTestConfig, parse_boot_test
from rel_eng.builders import BUILDERS  # the lazy registry: names only, no backend imported
from rel_eng.errors import ConfigError
from rel_eng.redact import check_urls
from rel_eng.distributed.settings import CelerySettings, parse_celery
from rel_eng.koji_config import KojiConfig, parse_koji
from rel_eng.messaging.settings import MessagingConfig, parse_messaging
from rel_eng.naming import ARCHES  # noqa: F401  (re-exported: its old home)
from rel_eng.oz_config import OzConfig, parse_oz
from rel_eng.publish.ec2_config import Ec2Config, parse_ec2
from rel_eng.schedule.settings import ScheduleConfig, load_streams, parse_schedule
from rel_eng.store.settings import StoreConfig, parse_store

MILESTONES = ("Alpha", "Beta", "Final")


@dataclass(frozen=True)
class ImageType:
    key: str  # "generic" / "ec2"
    name: str  # image name, e.g. Fedora-Cloud-Base
    subvariant: str  # productmd subvariant, tells generic from EC2
    kickstart: str  # file name inside the kickstart dir
    description: str


@dataclass(frozen=True)
class Release:
    key: str  # "19", "rawhide"
    version: str  # productmd release version: "19", "Rawhide"
    fedora_version: int  # what pykickstart and Oz target
    install_tree: str  # may hold $arch
    repos: tuple[str, ...] = ()
    koji_target: str = ""
    milestones: tuple[tuple[str, str], ...] = ()  # (milestone, ISO date), in order

    @property
    def ksversion(self) -> str:
        return f"F{self.fedora_version}"

    @property
    def has_milestones(self) -> bool:
        return bool(self.milestones)


@dataclass(frozen=True)
class Signing:
    key: str = ""  # gpg key id; empty means unsigned
    gpg_home: str = ""
    passphrase_file: str = ""  # a path, never the secret itself

    @property
    def enabled(self) -> bool:
        return bool(self.key)


@dataclass(frozen=True)
class Config:
    source: str = "(defaults)"
    short: str = "Fedora-Cloud"
    variant: str = "Cloud"
    builder: str = "synthetic"
    arches: tuple[str, ...] = ARCHES
    optional_arches: tuple[str, ...] = ()
    disk_size_gib: int = 3
    xz_preset: int = 6
    qcow2_compression: str = "zlib"  # zlib / zstd / none (rel_eng.naming.QCOW2_COMPRESSION)
    outputs: tuple[str, ...] = ("qcow2", "raw.tar.xz")  # deliverables per image (naming.OUTPUT_FORMATS)
    default_user: str = "fedora"
    weekly_retention: int = 4
    kickstart_dir: str = str(paths.KICKSTART_DIR)
    tdl_dir: str = str(paths.TDL_DIR)
    releases_file: str = str(paths.RELEASES_FILE)
    signing: Signing = field(default_factory=Signing)
    celery: CelerySettings = field(default_factory=CelerySettings)
    ec2: Ec2Config = field(default_factory=Ec2Config)
    koji: KojiConfig = field(default_factory=KojiConfig)
    oz: OzConfig = field(default_factory=OzConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    messaging: MessagingConfig = field(default_factory=MessagingConfig)
    boot_test: BootTestConfig = field(default_factory=BootTestConfig)
    image_types: tuple[ImageType, ...] = (
        ImageType("generic", "Fedora-Cloud-Base", "Cloud_Base", "fedora-cloud-base.ks",
                  "Generic cloud image for OpenStack, Eucalyptus and other clouds"),
        ImageType("ec2", "Fedora-Cloud-Base-EC2", "Cloud_Base_EC2", "fedora-cloud-base-ec2.ks",
                  "Amazon EC2 image"),
    )
    releases: tuple[Release, ...] = ()

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
        data = dict(data)
        if "qcow2_compress" in data:  # saved by a compose made before qcow2_compression existed
            data["qcow2_compression"] = "zlib" if data.pop("qcow2_compress") else "none"
        data["signing"] = Signing(**data["signing"])
        for name, (kind, _) in _SECTIONS.items():
            if name in data:
                data[name] = kind.from_dict(data[name])
        data["image_types"] = tuple(ImageType(**t) for t in data["image_types"])
        data["releases"] = tuple(
            Release(**{**r, "repos": tuple(r["repos"]),
                       "milestones": tuple(tuple(m) for m in r["milestones"])})
            for r in data["releases"]
        )
        for key in ("arches", "optional_arches", "outputs"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


class _Problems:
    """Collects 'file: key: what is wrong' lines so all are reported at once."""

    def __init__(self, source: str):
        self.source = source
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{self.source}: {key}: {message}")

    def take(self, table: dict, key: str, kind: type | tuple, default: Any, where: str,
             item: type | None = None) -> Any:
        """table[key] if it has the right type (lists: of `item`), else default and a problem."""
        if key not in table:
            return default
        value = table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.add(f"{where}{key}", f"expected {name}, got {type(value).__name__} {_short(value)}")
            return default
        bad = _bad_value(value, item)
        if bad:
            self.add(f"{where}{key}", bad)
            return default
        return value

    def table(self, doc: dict, key: str, where: str = "") -> dict:
        """doc[key] when it is a table (or absent: {}); anything else is a problem."""
        value = doc.get(key, {})
        if not isinstance(value, dict):
            self.add(f"{where}{key}", f"expected a table, got {type(value).__name__} {_short(value)}")
            return {}
        return value

    def name(self, key: str, value: str) -> None:
        """`value` becomes a file or directory name: one rule for all of them."""
        bad = path_component_problem(value)
        if bad:
            self.add(key, f"{bad} (it becomes part of a path)")

    def unknown(self, table: dict, allowed: set[str], where: str) -> None:
        for key in sorted(set(table) - allowed):
            self.add(f"{where}{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


_INT_MAX = 2**63 - 1  # what SQLite, JSON consumers and C time functions take


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad_value(value: Any, item: type | None) -> str | None:
    """Values of the right TOML type that no consumer can take: NUL bytes, 64-bit overflow,
    list items of the wrong type."""
    if isinstance(value, str) and "\0" in value:
        return "contains a NUL character"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT_MAX:
        return f"{value} is too large (at most {_INT_MAX})"
    if isinstance(value, list):
        for i, v in enumerate(value):
            if item is not None and (not isinstance(v, item) or isinstance(v, bool) and item is not bool):
                return f"item {i}: expected {item.__name__}, got {type(v).__name__} {_short(v)}"
            bad = _bad_value(v, None)
            if bad:
                return f"item {i}: {bad}"
    return None


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, expected a TOML file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: invalid TOML: not UTF-8 text"]) from None


# The tables each backend owns: name -> (frozen type, parser(table, problems, config dir)).
_SECTIONS = {
    "celery": (CelerySettings, lambda t, p, d: parse_celery(t, p)),
    "ec2": (Ec2Config, lambda t, p, d: parse_ec2(t, p)),
    "koji": (KojiConfig, lambda t, p, d: parse_koji(t, p)),
    "oz": (OzConfig, lambda t, p, d: parse_oz(t, p)),
    "store": (StoreConfig, parse_store),
    "schedule": (ScheduleConfig, parse_schedule),
    "messaging": (MessagingConfig, parse_messaging),
    "boot_test": (BootTestConfig, lambda t, p, d: parse_boot_test(t, p)),
}

_COMPOSE_KEYS = {
    "short", "variant", "builder", "arches", "optional_arches", "disk_size_gib", "xz_preset",
    "qcow2_compression", "outputs", "default_user", "weekly_retention", "kickstart_dir", "tdl_dir",
    "releases_file",
}


def load_config(path: Path | None = None, releases_file: Path | None = None) -> Config:
    """Parse the pipeline config (defaults when path is None) and the release definitions."""
    base = Config()
    problems = _Problems(str(path) if path else "(defaults)")
    values: dict[str, Any] = {}
    if path is not None:
        doc = _read_toml(path)
        problems.unknown(doc, {"compose", "signing", "images", *_SECTIONS}, "")
        compose = problems.table(doc, "compose")
        if "qcow2_compress" in compose:  # the boolean it replaced: say what to write instead
            compose = {k: v for k, v in compose.items() if k != "qcow2_compress"}
            problems.add("compose.qcow2_compress", 'replaced by qcow2_compression = "zlib", '
                                                   '"zstd" or "none" (the default is "zlib")')
        problems.unknown(compose, _COMPOSE_KEYS, "compose.")
        for key in sorted(_COMPOSE_KEYS & set(compose)):
            default = getattr(base, key)
            kind = list if isinstance(default, tuple) else type(default)
            value = problems.take(compose, key, kind, default, "compose.", item=str)
            values[key] = tuple(value) if isinstance(value, list) else value
        relative = path.parent
        for key in ("kickstart_dir", "tdl_dir", "releases_file"):
            if key in values and not Path(values[key]).is_absolute():
                values[key] = str((relative / values[key]).resolve())
        signing = problems.table(doc, "signing")
        problems.unknown(signing, {"key", "gpg_home", "passphrase_file"}, "signing.")
        values["signing"] = Signing(**{
            k: problems.take(signing, k, str, "", "signing.")
            for k in ("key", "gpg_home", "passphrase_file")
        })
        if "images" in doc:
            values["image_types"] = _image_types(doc["images"], problems, base)
        for name, (_, parse) in _SECTIONS.items():
            if name in doc:
                values[name] = parse(doc[name], problems, relative)
    cfg = dataclasses.replace(base, source=problems.source, **values)
    _check_config(cfg, problems)
    rel_path = Path(releases_file) if releases_file else Path(cfg.releases_file)
    releases, rel_problems = _load_releases(rel_path)
    schedule, sched_problems = load_streams(cfg.schedule, [r.key for r in releases])
    all_problems = problems.items + rel_problems + sched_problems
    if all_problems:
        raise ConfigError(all_problems)
    return dataclasses.replace(cfg, releases=releases, releases_file=str(rel_path),
                               schedule=schedule)


def _image_types(table: Any, problems: _Problems, base: Config) -> tuple[ImageType, ...]:
    defaults = {t.key: t for t in base.image_types}
    out = []
    if not isinstance(table, dict):
        problems.add("images", f"expected [images.<key>] tables, got {type(table).__name__}")
        return base.image_types
    if not table:
        problems.add("images", "defines no image (add an [images.<key>] table or drop [images])")
    for key, sub in table.items():
        where = f"images.{key}."
        problems.name(f"images.{key}", key)
        if not isinstance(sub, dict):
            problems.add(f"images.{key}", "expected a table")
            continue
        problems.unknown(sub, {"name", "subvariant", "kickstart", "description"}, where)
        dflt = defaults.get(key)
        fields = {}
        for f in ("name", "subvariant", "kickstart", "description"):
            value = problems.take(sub, f, str, getattr(dflt, f, ""), where)
            if not value and f != "description":
                problems.add(f"{where}{f}", "is required")
            fields[f] = value
        out.append(ImageType(key=key, **fields))
    return tuple(out)


def _check_config(cfg: Config, problems: _Problems) -> None:
    for arch in cfg.arches:
        if arch not in ARCHES:
            problems.add("compose.arches", f"unknown arch '{arch}' (use {', '.join(ARCHES)})")
    for arch in cfg.optional_arches:
        if arch not in cfg.arches:
            problems.add("compose.optional_arches", f"'{arch}' is not in compose.arches")
    if not 1 <= cfg.disk_size_gib <= 1024:
        problems.add("compose.disk_size_gib", f"must be 1..1024 GiB, got {cfg.disk_size_gib}")
    if not 0 <= cfg.xz_preset <= 9:
        problems.add("compose.xz_preset", f"must be 0..9, got {cfg.xz_preset}")
    if cfg.qcow2_compression not in QCOW2_COMPRESSION:
        problems.add("compose.qcow2_compression", f"unknown compression "
                     f"{cfg.qcow2_compression!r} (use {', '.join(QCOW2_COMPRESSION)})")
    known = [suffix for suffix, _, _ in OUTPUT_FORMATS]
    for out in cfg.outputs:
        if out not in known:
            problems.add("compose.outputs", f"unknown output {out!r} (use {', '.join(known)})")
    if len(set(cfg.outputs)) != len(cfg.outputs):
        problems.add("compose.outputs", "lists an output twice")
    if not cfg.outputs:
        problems.add("compose.outputs", "must list at least one output, e.g. \"qcow2\"")
    if cfg.weekly_retention < 1:
        problems.add("compose.weekly_retention", "must be at least 1")
    if not cfg.arches:
        problems.add("compose.arches", f"must name at least one arch ({', '.join(ARCHES)})")
    for key in ("arches", "optional_arches"):
        values = getattr(cfg, key)
        for arch in sorted({a for a in values if values.count(a) > 1}):
            problems.add(f"compose.{key}", f"'{arch}' is listed twice")
    problems.name("compose.short", cfg.short)
    problems.name("compose.variant", cfg.variant)
    for key in ("kickstart_dir", "tdl_dir"):
        if not Path(getattr(cfg, key)).is_dir():
            problems.add(f"compose.{key}", f"{getattr(cfg, key)} is not a directory")
    names: dict[str, str] = {}
    for t in cfg.image_types:
        problems.name(f"images.{t.key}.name", t.name)
        problems.name(f"images.{t.key}.subvariant", t.subvariant)
        if t.name in names:
            problems.add(f"images.{t.key}.name", f"'{t.name}' is also the name of images.{names[t.name]}")
        names.setdefault(t.name, t.key)
    if cfg.builder not in BUILDERS:
        problems.add("compose.builder", f"unknown builder '{cfg.builder}' (known: {', '.join(sorted(BUILDERS))})")
    if cfg.signing.passphrase_file and not Path(cfg.signing.passphrase_file).is_file():
        problems.add("signing.passphrase_file", f"{cfg.signing.passphrase_file} is not a file")
    if cfg.signing.gpg_home and not Path(cfg.signing.gpg_home).is_dir():
        problems.add("signing.gpg_home", f"{cfg.signing.gpg_home} is not a directory")
    for t in cfg.image_types if Path(cfg.kickstart_dir).is_dir() else ():
        ks_dir = Path(cfg.kickstart_dir).resolve()
        ks = (ks_dir / t.kickstart).resolve()
        if not ks.is_relative_to(ks_dir):
            problems.add(f"images.{t.key}.kickstart",
                         f"'{t.kickstart}' is outside the kickstart dir {ks_dir} (name a file in it)")
        elif not ks.is_file():
            problems.add(f"images.{t.key}.kickstart", f"{Path(cfg.kickstart_dir) / t.kickstart} is not a file")
    if len({t.subvariant for t in cfg.image_types}) != len(cfg.image_types):
        problems.add("images", "subvariants must be unique")
    if (cfg.messaging.enabled or cfg.ec2.messaging) and not cfg.store.enabled:
        problems.add("messaging.enabled", "needs the compose store (its outbox keeps every "
                                          "message until sent): set [store] enabled = true")


_RELEASE_KEYS = {"version", "fedora_version", "install_tree", "repos", "koji_target", "milestones"}


def _load_releases(path: Path) -> tuple[tuple[Release, ...], list[str]]:
    problems = _Problems(str(path))
    try:
        doc = _read_toml(path)
    except ConfigError as exc:
        return (), exc.problems
    releases = []
    table = doc.get("releases")
    if not isinstance(table, dict) or not table:
        problems.add("releases", "no [releases.<name>] tables defined")
        return (), problems.items
    for key in sorted(set(doc) - {"releases"}):
        problems.add(key, "unknown key (allowed: releases)")
    for key, sub in table.items():
        where = f"releases.{key}."
        problems.name(f"releases.{key}", key)
        if not isinstance(sub, dict):
            problems.add(f"releases.{key}", "expected a table")
            continue
        problems.unknown(sub, _RELEASE_KEYS, where)
        version = problems.take(sub, "version", str, "", where)
        fedora = problems.take(sub, "fedora_version", int, 0, where)
        tree = problems.take(sub, "install_tree", str, "", where)
        repos = problems.take(sub, "repos", list, [], where, item=str)
        target = problems.take(sub, "koji_target", str, "", where)
        stones = problems.take(sub, "milestones", dict, {}, where)
        if not version or "-" in version:
            problems.add(f"{where}version", "is required and must not contain '-'")
        else:
            problems.name(f"{where}version", version)
        if not 19 <= fedora <= 999:
            problems.add(f"{where}fedora_version", "is required and must be 19..999")
        if not tree.startswith(("http://", "https://")):
            problems.add(f"{where}install_tree", "must be an http(s) URL")
        check_urls(problems, [(f"{where}install_tree", tree),
                              *((f"{where}repos[{i}]", r) for i, r in enumerate(repos))],
                   "serve it without credentials to the builders instead")
        milestones = []
        previous = None
        for name, date in stones.items():
            if name not in MILESTONES:
                problems.add(f"{where}milestones.{name}", f"unknown milestone (use {', '.join(MILESTONES)})")
                continue
            if isinstance(date, str):
                try:
                    date = dt.date.fromisoformat(date)
                except ValueError:
                    pass
            if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
                problems.add(f"{where}milestones.{name}", f"expected a date (YYYY-MM-DD), got {date!r}")
                continue
            if previous and date <= previous[1]:
                problems.add(f"{where}milestones.{name}", f"{date} is not after {previous[0]} ({previous[1]})")
            previous = (name, date)
            milestones.append((name, date.isoformat()))
        order = [m for m, _ in milestones]
        if order != sorted(order, key=MILESTONES.index):
            problems.add(f"{where}milestones", f"must be in order {', '.join(MILESTONES)}")
        releases.append(Release(key=key, version=version, fedora_version=fedora,
                                install_tree=tree, repos=tuple(str(r) for r in repos),
                                koji_target=target, milestones=tuple(milestones)))
    return tuple(releases), problems.items
