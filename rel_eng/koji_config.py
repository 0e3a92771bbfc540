"""The `[koji]` table of the pipeline config, parsed into a frozen KojiConfig.

It names a koji client *profile*; the hub URL, topurl and credentials stay in the standard koji
client config (/etc/koji.conf, /etc/koji.conf.d/, ~/.koji/config) and are read only when the Koji
builder starts. This module imports nothing from rel_eng.config (config.py imports it): the
parser feeds config's problem collector, so Koji mistakes come out with every other one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

# kojid's BaseImageTask.supported_formats: anything else fails the createImage task.
KOJI_FORMATS = (
    "docker", "liveimg-squashfs", "qcow", "qcow2", "raw", "raw-xz", "rhevm-ova", "tar-gz",
    "vagrant-hyperv", "vagrant-libvirt", "vagrant-virtualbox", "vagrant-vmware-fusion", "vdi",
    "vmdk", "vpc", "vsphere-ova",
)
# Formats the builder can turn into the raw disk post-processing takes.
RAW_FORMATS = ("raw-xz", "raw")


@dataclass(frozen=True)
class KojiConfig:
    profile: str = "koji"  # section of the koji client config; --koji-profile overrides it
    config_file: str = ""  # extra koji client config, read after the standard files
    target: str = ""  # overrides the release's koji_target
    formats: tuple[str, ...] = ("raw-xz",)  # what collect() downloads: nothing else is fetched
    ksurl: str = ""  # SCM URL holding the kickstarts; empty = upload the flattened kickstart
    scratch_weeklies: bool = True
    factory_parameter: tuple[tuple[str, str], ...] = ()
    poll_interval: float = 20.0  # seconds between watch rounds (one hub round trip each)
    timeout: float = 6 * 3600.0  # give up watching after this long; the tasks keep running
    retries: int = 8  # per hub round or download, on connection errors and hub restarts
    retry_backoff: float = 2.0  # first back-off in seconds; doubles each retry
    retry_backoff_max: float = 120.0
    call_timeout: float = 300.0  # one hub call; koji's own default is 12 hours
    download_timeout: float = 300.0  # socket read timeout for image downloads
    cancel_on_signal: bool = True  # SIGINT/SIGTERM cancel the tasks this compose submitted

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KojiConfig":
        data = dict(data)
        data["formats"] = tuple(data.get("formats", cls.formats))
        data["factory_parameter"] = tuple(tuple(p) for p in data.get("factory_parameter", ()))
        return cls(**data)


class ProblemSink(Protocol):
    """What rel_eng.config._Problems offers; every mistake is collected, none raised."""

    def add(self, key: str, message: str) -> None: ...

    def take(self, table: dict, key: str, kind: type | tuple, default: Any, where: str) -> Any: ...

    def unknown(self, table: dict, allowed: set[str], where: str) -> None: ...


_NUMBERS = {  # key: (low, high)
    "poll_interval": (0.01, 3600.0),
    "timeout": (1.0, 7 * 86400.0),
    "retry_backoff": (0.0, 3600.0),
    "retry_backoff_max": (0.0, 3600.0),
    "call_timeout": (1.0, 3600.0),
    "download_timeout": (1.0, 3600.0),
}
_KEYS = {f.name for f in dataclasses.fields(KojiConfig)}


def parse_koji(table: Any, problems: ProblemSink) -> KojiConfig:
    """`[koji]` -> KojiConfig; problems go to the collector with the key they concern."""
    base = KojiConfig()
    if not isinstance(table, dict):
        problems.add("koji", "expected a table")
        return base
    problems.unknown(table, _KEYS, "koji.")
    values: dict[str, Any] = {}
    for key in ("profile", "config_file", "target", "ksurl"):
        values[key] = problems.take(table, key, str, getattr(base, key), "koji.")
    for key in ("scratch_weeklies", "cancel_on_signal"):
        values[key] = problems.take(table, key, bool, getattr(base, key), "koji.")
    retries = problems.take(table, "retries", int, base.retries, "koji.")
    if not 0 <= retries <= 100:
        problems.add("koji.retries", f"must be 0..100, got {retries}")
    values["retries"] = retries
    for key, (low, high) in _NUMBERS.items():
        value = table.get(key, getattr(base, key))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.add(f"koji.{key}", f"expected a number of seconds, got {value!r}")
            continue
        if not low <= value <= high:
            problems.add(f"koji.{key}", f"must be {low:g}..{high:g} seconds, got {value}")
        values[key] = float(value)
    formats = problems.take(table, "formats", list, list(base.formats), "koji.")
    values["formats"] = tuple(str(f) for f in formats)
    params = problems.take(table, "factory_parameter", list, [], "koji.")
    pairs = []
    for i, pair in enumerate(params):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(p, str) and p for p in pair)):
            problems.add(f"koji.factory_parameter[{i}]",
                         f"expected [\"name\", \"value\"] (two strings), got {pair!r}")
            continue
        pairs.append((pair[0], pair[1]))
    values["factory_parameter"] = tuple(pairs)
    cfg = dataclasses.replace(base, **values)
    check_koji(cfg, problems)
    return cfg


def check_koji(cfg: KojiConfig, problems: ProblemSink) -> None:
    if not cfg.profile or any(c in cfg.profile for c in "[]\n"):
        problems.add("koji.profile", f"must name a koji client config section, got {cfg.profile!r}")
    bad = [f for f in cfg.formats if f not in KOJI_FORMATS]
    if bad:
        problems.add("koji.formats", f"unknown image format(s) {', '.join(bad)} "
                                     f"(kojid knows: {', '.join(KOJI_FORMATS)})")
    if len(set(cfg.formats)) != len(cfg.formats):
        problems.add("koji.formats", "lists a format twice")
    if not any(f in cfg.formats for f in RAW_FORMATS):
        problems.add("koji.formats", "must include raw-xz (or raw): post-processing starts "
                                     "from the raw disk")
    if cfg.retry_backoff_max < cfg.retry_backoff:
        problems.add("koji.retry_backoff_max", "must not be below koji.retry_backoff")
    from rel_eng.redact import password_problem

    secret = password_problem(cfg.ksurl, "let the builders reach the SCM without "
                                         "credentials in the URL (kojid's own SCM config)")
    if secret:
        problems.add("koji.ksurl", secret)
    elif cfg.ksurl:
        from koji.daemon import SCM  # koji's own SCM URL parser, pure string checks
        import koji

        try:
            SCM.is_scm_url(cfg.ksurl, strict=True)
            SCM(cfg.ksurl)
        except koji.GenericError as exc:
            problems.add("koji.ksurl", f"not a koji SCM URL ({exc}); "
                                       "e.g. git+https://pagure.io/fedora-kickstarts.git#f19")
