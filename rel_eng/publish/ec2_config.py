"""The `[ec2]` table of the pipeline config, parsed into a frozen Ec2Config.

This module imports nothing from rel_eng.config (config.py imports it); the parser takes config's
problem collector, so EC2 mistakes are reported with file and key alongside every other one.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Protocol

UPLOAD_MODES = ("ebs-direct", "s3-import")
VOLUME_TYPES = ("gp3", "gp2")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
IMDS_SUPPORT = ("v2.0", "")  # "" leaves IMDSv1 allowed
SRIOV = ("simple", "")  # "" leaves SriovNetSupport unset
RETRY_MODES = ("standard", "adaptive")
MAX_VOLUME_GIB = 16384  # EBS gp2/gp3 maximum


@dataclass(frozen=True)
class Ec2Config:
    enabled: bool = False
    base_region: str = "us-east-1"  # where the snapshot is made and the AMI registered
    regions: tuple[str, ...] = ()  # copy targets; the base region is always published
    public_milestones: bool = True  # Alpha/Beta/Final AMIs shared with group "all"
    weekly_public: bool = False
    deprecate_days: int = 28  # weeklies get DeprecateAt = publish time + N days; 0 = never
    i386: bool = True  # i686 images get i386 AMIs (only t1/m1/c1/c3/t2 run them); off: skipped
    volume_size_gib: int = 0  # 0 = the image's size rounded up to GiB
    volume_type: str = "gp3"
    ena_support: bool = True
    sriov_net_support: str = "simple"
    boot_mode: str = "legacy-bios"
    imds_support: str = "v2.0"
    upload_mode: str = "ebs-direct"
    s3_bucket: str = ""  # required for s3-import; must be in the base region
    s3_prefix: str = "rel-eng/"
    import_role: str = "vmimport"
    workers: int = 16  # PutSnapshotBlock threads
    block_retries: int = 5  # per block, on top of botocore's own retries
    retry_mode: str = "standard"
    max_attempts: int = 8  # botocore attempts per call, first one included
    wait_timeout_s: int = 3600  # per snapshot / import / AMI wait
    poll_interval_s: int = 15
    retention_days: int = 28  # `ec2 prune` default
    messaging: bool = False  # also send the published message with fedora-messaging

    @property
    def all_regions(self) -> tuple[str, ...]:
        """The base region first, then the copy targets, without repeats."""
        return tuple(dict.fromkeys((self.base_region, *self.regions)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Ec2Config":
        return cls(**{**data, "regions": tuple(data.get("regions", ()))})


class ProblemSink(Protocol):
    """What rel_eng.config._Problems offers; typed here to avoid a circular import."""

    def add(self, key: str, message: str) -> None: ...

    def take(self, table: dict, key: str, kind: type | tuple, default: Any, where: str) -> Any: ...

    def unknown(self, table: dict, allowed: set[str], where: str) -> None: ...


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """EC2 regions from botocore's bundled endpoint data (no network)."""
    import boto3

    return frozenset(boto3.session.Session().get_available_regions("ec2"))


def parse_ec2(table: Any, problems: ProblemSink) -> Ec2Config:
    """Parse `[ec2]`; every problem goes to `problems` as `ec2.<key>: ...`."""
    base = Ec2Config()
    if not isinstance(table, dict):
        problems.add("ec2", "expected a table")
        return base
    fields = {f.name: f for f in dataclasses.fields(Ec2Config)}
    problems.unknown(table, set(fields), "ec2.")
    values: dict[str, Any] = {}
    for key in sorted(set(fields) & set(table)):
        default = getattr(base, key)
        kind = list if isinstance(default, tuple) else type(default)
        value = problems.take(table, key, kind, default, "ec2.")
        if isinstance(value, list):
            bad = [v for v in value if not isinstance(v, str)]
            if bad:
                problems.add(f"ec2.{key}", f"expected a list of strings, got {bad[0]!r}")
                value = default
            value = tuple(value)
        values[key] = value
    cfg = dataclasses.replace(base, **values)
    check_ec2(cfg, problems)
    return cfg


def check_ec2(cfg: Ec2Config, problems: ProblemSink) -> None:
    regions = known_regions()
    hint = "see `aws ec2 describe-regions`"
    if cfg.base_region not in regions:
        problems.add("ec2.base_region", f"unknown EC2 region '{cfg.base_region}' ({hint})")
    for region in cfg.regions:
        if region not in regions:
            problems.add("ec2.regions", f"unknown EC2 region '{region}' ({hint})")
    if len(set(cfg.regions)) != len(cfg.regions):
        problems.add("ec2.regions", "lists a region twice")
    choices = {
        "upload_mode": UPLOAD_MODES, "volume_type": VOLUME_TYPES, "boot_mode": BOOT_MODES,
        "imds_support": IMDS_SUPPORT, "sriov_net_support": SRIOV, "retry_mode": RETRY_MODES,
    }
    for key, allowed in choices.items():
        value = getattr(cfg, key)
        if value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            problems.add(f"ec2.{key}", f"unknown value {value!r} (use {shown})")
    ranges = {
        "deprecate_days": (0, 3650), "volume_size_gib": (0, MAX_VOLUME_GIB), "workers": (1, 256),
        "block_retries": (0, 20), "max_attempts": (1, 20), "wait_timeout_s": (1, 86400),
        "poll_interval_s": (1, 3600), "retention_days": (1, 3650),
    }
    for key, (low, high) in ranges.items():
        value = getattr(cfg, key)
        if not low <= value <= high:
            problems.add(f"ec2.{key}", f"must be {low}..{high}, got {value}")
    if cfg.upload_mode == "s3-import" and not cfg.s3_bucket:
        problems.add("ec2.s3_bucket", "is required when upload_mode is 's3-import'")
