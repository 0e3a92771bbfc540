"""The `[boot_test]` table of the pipeline config: which drops are gated, how boots are bounded.

Imports nothing from rel_eng so config.py can import it; the parser reports through config's
problem collector (file and key) like every other section.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rel_eng.boottest.checks import CHECKS

GATES = ("milestones", "all", "none")
ACCELS = ("auto", "kvm", "tcg")
_RANGES = {
    "parallel": (1, 64),
    "memory_mib": (256, 65536),
    "console_timeout_s": (5, 3600),
    "boot_timeout_s": (10, 7200),
    "ssh_timeout_s": (5, 3600),
    "guest_script_timeout_s": (10, 3600),
    "tcg_tb_size_mib": (0, 4096),
}


@dataclass(frozen=True)
class BootTestConfig:
    enabled: bool = True       # false: every image recorded "skipped: boot test disabled"
    gate: str = "milestones"   # which drops a failed boot stops: milestones | all | none
    parallel: int = 2          # VMs at once (also bounded by host memory)
    accel: str = "auto"        # auto | kvm | tcg (REL_ENG_ACCEL overrides)
    memory_mib: int = 1024
    # TCG translation cache per VM (MiB); 0: qemu's default (1 GiB here). See README: 256 boots the
    # appliance within 10% of the default's time with ~830 MiB less host memory per VM.
    tcg_tb_size_mib: int = 256
    # TCG-sized bounds; a guest that is ready sooner gets its verdict sooner (see README).
    console_timeout_s: int = 300
    boot_timeout_s: int = 900
    ssh_timeout_s: int = 120
    guest_script_timeout_s: int = 300
    checks: tuple[str, ...] = CHECKS  # the checks a compose runs (all by default)

    def gated(self, milestone: str | None) -> bool:
        return self.gate == "all" or (self.gate == "milestones" and bool(milestone))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BootTestConfig":
        return cls(**{**data, "checks": tuple(data.get("checks", CHECKS))})


def parse_boot_test(table: Any, problems, where: str = "boot_test.") -> BootTestConfig:
    base = BootTestConfig()
    if not isinstance(table, dict):
        problems.add(where.rstrip("."), "expected a table")
        return base
    fields = {f.name for f in dataclasses.fields(BootTestConfig)}
    problems.unknown(table, fields, where)
    values: dict[str, Any] = {}
    if "checks" in table:
        value = table["checks"]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            problems.add(f"{where}checks", f"expected a non-empty list of check names, got {value!r}")
        else:
            unknown = [v for v in value if v not in CHECKS]
            if unknown:
                problems.add(f"{where}checks", f"unknown check {', '.join(unknown)} "
                                               f"(known: {', '.join(CHECKS)})")
            else:
                values["checks"] = tuple(n for n in CHECKS if n in value)
    for name in sorted((fields - {"checks"}) & set(table)):
        default = getattr(base, name)
        values[name] = problems.take(table, name, type(default), default, where)
    cfg = dataclasses.replace(base, **values)
    if cfg.gate not in GATES:
        problems.add(f"{where}gate", f"must be one of {', '.join(GATES)}, got {cfg.gate!r}")
    if cfg.accel not in ACCELS:
        problems.add(f"{where}accel", f"must be one of {', '.join(ACCELS)}, got {cfg.accel!r}")
    for name, (low, high) in _RANGES.items():
        value = getattr(cfg, name)
        if not low <= value <= high:
            problems.add(f"{where}{name}", f"must be {low}..{high}, got {value}")
    return cfg
