"""KVM or TCG, and why: `/dev/kvm` existing is not enough.

A software nested KVM (kvm_pvm) exposes /dev/kvm, yet a normal kernel hangs under it. So KVM is
chosen when a hardware KVM module (kvm_intel, kvm_amd) is loaded; when /dev/kvm is usable but no
such module is, a bounded probe boot (rel_eng.boottest.kvmprobe, cached per host) decides.
`REL_ENG_ACCEL` or `[boot_test] accel` override the choice.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HARDWARE_KVM_MODULES = ("kvm_intel", "kvm_amd")
CHOICES = ("auto", "kvm", "tcg")
PROBE_QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class Accel:
    name: str  # "kvm" or "tcg"
    reason: str


def host_probe():
    """The real probe: one bounded boot of the probe kernel under KVM, cached per host."""
    from rel_eng.boottest import kvmprobe

    qemu = shutil.which(PROBE_QEMU)
    if qemu is None:
        return kvmprobe.ProbeResult(False, f"no {PROBE_QEMU} to run the KVM probe with")
    return kvmprobe.probe(qemu)


def choose(requested: str = "auto", *, env: dict | None = None, sys_module: Path = Path("/sys/module"),
           dev_kvm: Path = Path("/dev/kvm"), probe: Callable | None = host_probe) -> Accel:
    """`probe()` returns an object with `kvm` (bool) and `reason`; None: decide without a probe."""
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
    what = f"only {', '.join(others)}" if others else "no hardware KVM module"
    if probe is None:
        return Accel("tcg", f"{dev_kvm} exists but {what} is loaded (a software nested KVM hangs a "
                            "normal kernel)")
    result = probe()
    cached = " (cached probe result)" if getattr(result, "cached", False) else ""
    if result.kvm:
        return Accel("kvm", f"{dev_kvm} exists with {what} loaded, and {result.reason}{cached}")
    return Accel("tcg", f"{dev_kvm} exists but {what} is loaded, and {result.reason}{cached}")
