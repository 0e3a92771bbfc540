"""`[koji]`: which koji client profile, target and formats the Koji builder uses.

It names a koji client *profile*; the hub URL, topurl and credentials stay in the standard koji
client config (/etc/koji.conf, /etc/koji.conf.d/, ~/.koji/config) and are read only when the Koji
builder starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rel_eng.config.problems import Problems
from rel_eng.config.table import NOTHING, Section, setting

# kojid's BaseImageTask.supported_formats: anything else fails the createImage task.
KOJI_FORMATS = (
    "docker", "liveimg-squashfs", "qcow", "qcow2", "raw", "raw-xz", "rhevm-ova", "tar-gz",
    "vagrant-hyperv", "vagrant-libvirt", "vagrant-virtualbox", "vagrant-vmware-fusion", "vdi",
    "vmdk", "vpc", "vsphere-ova",
)
# Formats the builder can turn into the raw disk post-processing takes.
RAW_FORMATS = ("raw-xz", "raw")


def _pairs(value: Any, problems: Problems, key: str, base_dir) -> Any:
    if not isinstance(value, list):
        problems.add(key, f"expected list, got {type(value).__name__} {value!r}")
        return NOTHING
    pairs = []
    for i, pair in enumerate(value):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(p, str) and p for p in pair)):
            problems.add(f"{key}[{i}]", f"expected [\"name\", \"value\"] (two strings), got {pair!r}")
            continue
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


@dataclass(frozen=True)
class KojiConfig(Section):
    profile: str = setting("koji", "section of the koji client config; --koji-profile overrides it")
    config_file: str = setting("", "extra koji client config, read after the standard files")
    target: str = setting("", "overrides the release's koji_target")
    formats: tuple[str, ...] = setting(("raw-xz",), "what collect() downloads: nothing else is fetched")
    ksurl: str = setting("", "SCM URL holding the kickstarts; empty = upload the flattened kickstart")
    scratch_weeklies: bool = setting(True, "weekly composes build scratch images")
    factory_parameter: tuple[tuple[str, str], ...] = setting(
        (), "[name, value] pairs passed to ImageFactory", convert=_pairs)
    poll_interval: float = setting(20.0, "seconds between watch rounds (one hub round trip each)",
                                   low=0.01, high=3600.0, unit="seconds")
    timeout: float = setting(6 * 3600.0, "give up watching after this long; the tasks keep running",
                             low=1.0, high=7 * 86400.0, unit="seconds")
    retries: int = setting(8, "per hub round or download, on connection errors and hub restarts",
                           low=0, high=100)
    retry_backoff: float = setting(2.0, "first back-off in seconds; doubles each retry",
                                   low=0.0, high=3600.0, unit="seconds")
    retry_backoff_max: float = setting(120.0, "the longest back-off", low=0.0, high=3600.0,
                                       unit="seconds")
    call_timeout: float = setting(300.0, "one hub call; koji's own default is 12 hours",
                                  low=1.0, high=3600.0, unit="seconds")
    download_timeout: float = setting(300.0, "socket read timeout for image downloads",
                                      low=1.0, high=3600.0, unit="seconds")
    cancel_on_signal: bool = setting(True, "SIGINT/SIGTERM cancel the tasks this compose submitted")

    def check(self, problems: Problems, where: str = "koji.") -> None:
        if not self.profile or any(c in self.profile for c in "[]\n"):
            problems.add(f"{where}profile", f"must name a koji client config section, got {self.profile!r}")
        bad = [f for f in self.formats if f not in KOJI_FORMATS]
        if bad:
            problems.add(f"{where}formats", f"unknown image format(s) {', '.join(bad)} "
                                            f"(kojid knows: {', '.join(KOJI_FORMATS)})")
        if len(set(self.formats)) != len(self.formats):
            problems.add(f"{where}formats", "lists a format twice")
        if not any(f in self.formats for f in RAW_FORMATS):
            problems.add(f"{where}formats", "must include raw-xz (or raw): post-processing starts "
                                            "from the raw disk")
        if self.retry_backoff_max < self.retry_backoff:
            problems.add(f"{where}retry_backoff_max", "must not be below koji.retry_backoff")
        self._check_ksurl(problems, f"{where}ksurl")

    def _check_ksurl(self, problems: Problems, key: str) -> None:
        from rel_eng.redact import password_problem

        secret = password_problem(self.ksurl, "let the builders reach the SCM without "
                                              "credentials in the URL (kojid's own SCM config)")
        if secret:
            problems.add(key, secret)
        elif self.ksurl:
            import koji  # late: koji's own SCM URL parser, pure string checks
            from koji.daemon import SCM

            try:
                SCM.is_scm_url(self.ksurl, strict=True)
                SCM(self.ksurl)
            except koji.GenericError as exc:
                problems.add(key, f"not a koji SCM URL ({exc}); "
                                  "e.g. git+https://pagure.io/fedora-kickstarts.git#f19")
