"""The qemu processes a test left behind, read from /proc (the boot, accel and KVM-probe tests)."""

from __future__ import annotations

from pathlib import Path


def qemu_pids_under(path: Path) -> list[int]:
    """qemu processes whose command line names a file under path."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"qemu-system" in a for a in cmd) and any(str(path).encode() in a for a in cmd):
            found.append(int(proc.name))
    return found
