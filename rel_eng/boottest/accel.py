"""KVM or TCG, and why: `/dev/kvm` existing is not enough.

A software nested KVM (kvm_pvm) exposes /dev/kvm, yet a normal kernel hangs under it. So KVM is
chosen only when a hardware KVM module (kvm_intel, kvm_amd) is loaded, or when an injected probe
says a real boot works; `REL_ENG_ACCEL` or `[boot_test] accel` override the choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HARDWARE_KVM_MODULES = ("kvm_intel", "kvm_amd")
CHOICES = ("auto", "kvm", "tcg")


@dataclass(frozen=True)
class Accel:
    name: str  # "kvm" or "tcg"
    reason: str


def choose(requested: str = "auto", *, env: dict | None = None, sys_module: Path = Path("/sys/module"),
           dev_kvm: Path = Path("/dev/kvm"), probe: Callable[[], bool] | None = None) -> Accel:
    env = os.environ if env is None else env
    override = env.get("REL_ENG_ACCEL", "").strip().lower()
    if override:
        if override not in CHOICES:
            raise ValueError(f"REL_ENG_ACCEL={override!r} is not one of {', '.join(CHOICES)}")
        if override != "auto":
            return Accel(override, f"forced by REL_ENG_ACCEL={override}")
    elif requested != "auto":
        return Accel(requested, f"forced by [boot_test] accel = \"{requested}\"")
    if not dev_kvm.exists():
        return Accel("tcg", f"{dev_kvm} does not exist")
    if not os.access(dev_kvm, os.R_OK | os.W_OK):
        return Accel("tcg", f"{dev_kvm} is not readable and writable by this user")
    loaded = [m for m in HARDWARE_KVM_MODULES if (sys_module / m).is_dir()]
    if loaded:
        return Accel("kvm", f"hardware KVM module {loaded[0]} is loaded")
    others = sorted(p.name for p in sys_module.glob("kvm_*")) if sys_module.is_dir() else []
    if probe is not None and probe():
        return Accel("kvm", "a probe boot under KVM succeeded")
    what = f"only {', '.join(others)}" if others else "no hardware KVM module"
    return Accel("tcg", f"{dev_kvm} exists but {what} is loaded (a software nested KVM hangs a "
                        "normal kernel)")
