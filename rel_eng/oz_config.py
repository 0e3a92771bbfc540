"""The `[oz]` table of the pipeline config: how a bare-metal host runs oz-install.

It lives outside rel_eng/builders/ because config.py imports it and the builders package imports
config types; this module imports nothing from rel_eng. The parser takes config's problem
collector, so Oz mistakes are reported with file and key alongside every other one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (min, max) of each integer setting
_RANGES = {
    "memory_mib": (2048, 1024 * 1024),  # Fedora's Oz builders run installs with >= 2048 MiB
    "cpus": (1, 256),
    "install_timeout_s": (60, 7 * 86400),
    "inactivity_timeout_s": (30, 86400),
    "boot_timeout_s": (30, 86400),
    "shutdown_timeout_s": (10, 86400),
    "kill_grace_s": (1, 86400),
    "parallel": (1, 32),
}
_PATHS = ("data_dir", "output_dir", "screenshot_dir")


@dataclass(frozen=True)
class OzConfig:
    libvirt_uri: str = "qemu:///system"
    libvirt_type: str = "kvm"
    bridge_name: str = ""  # "" leaves Oz's default bridge
    memory_mib: int = 2048
    cpus: int = 2
    install_timeout_s: int = 3600  # oz-install -t and [timeouts] install
    inactivity_timeout_s: int = 300
    boot_timeout_s: int = 300
    shutdown_timeout_s: int = 90
    kill_grace_s: int = 300  # past the install timeout, rel-eng kills an oz-install that hangs
    data_dir: str = "/var/lib/oz"  # Oz's install media cache, shared by builds on the host
    output_dir: str = ""  # "" = the image's work dir in the compose
    screenshot_dir: str = ""  # "" = the image's log dir, so failure screenshots stay with the compose
    parallel: int = 1  # oz-install runs at once on one host (each needs memory_mib)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OzConfig":
        return cls(**data)


def parse_oz(table: Any, problems, where: str = "oz.") -> OzConfig:
    """`[oz]` -> OzConfig; every mistake goes to `problems` (rel_eng.config._Problems)."""
    base = OzConfig()
    if not isinstance(table, dict):
        problems.add(where.rstrip("."), "expected a table")
        return base
    fields = {f.name: f for f in dataclasses.fields(OzConfig)}
    problems.unknown(table, set(fields), where)
    values = {}
    for name in sorted(set(fields) & set(table)):
        default = getattr(base, name)
        values[name] = problems.take(table, name, type(default), default, where)
    oz = dataclasses.replace(base, **values)
    for name, (low, high) in _RANGES.items():
        value = getattr(oz, name)
        if not low <= value <= high:
            problems.add(f"{where}{name}", f"must be {low}..{high}, got {value}")
    if "://" not in oz.libvirt_uri:
        problems.add(f"{where}libvirt_uri", f"'{oz.libvirt_uri}' is not a libvirt URI (e.g. qemu:///system)")
    for name in _PATHS:
        value = getattr(oz, name)
        if value and not Path(value).is_absolute():
            problems.add(f"{where}{name}", f"must be an absolute path (Oz requires it), got '{value}'")
    return oz
