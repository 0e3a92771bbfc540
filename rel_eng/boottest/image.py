"""What the input is: a qcow2 or raw disk with its whole backing chain, and for which arch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rel_eng import runner
from rel_eng.errors import InputError

DISK_FORMATS = ("qcow2", "raw")
MBR_SIGNATURE = b"\x55\xaa"


@dataclass(frozen=True)
class DiskImage:
    path: Path
    fmt: str
    virtual_size: int
    arch: str


def guess_arch(path: Path) -> str:
    name = path.name
    if any(tag in name for tag in (".i386.", ".i686.", "-i386", "-i686", "_i386", "_i686")):
        return "i386"
    return "x86_64"


def inspect(path: Path, arch: str | None = None) -> DiskImage:
    """Refuse anything that is not a bootable-looking disk, with one line saying why."""
    if not path.exists():
        raise InputError(f"{path}: no such file", hint="give the path of a qcow2 or raw disk image")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file", hint="give the path of a qcow2 or raw disk image")
    proc = runner.run(["qemu-img", "info", "--output=json", "--backing-chain", str(path)],
                      check=False, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["unreadable"])[-1]
        if "backing" in tail.lower() or "No such file" in tail:
            raise InputError(f"{path}: its backing file is missing ({tail.split(': ')[-1]})",
                             hint="boot-test needs the whole backing chain; copy the backing file next to it")
        raise InputError(f"{path}: not a disk image qemu can read: {tail}")
    chain = json.loads(proc.stdout)
    top = chain[0] if isinstance(chain, list) else chain
    fmt = top.get("format")
    if fmt not in DISK_FORMATS:
        raise InputError(f"{path}: format {fmt!r} is not a disk image boot-test boots",
                         hint=f"give a {' or '.join(DISK_FORMATS)} disk")
    if fmt == "raw":
        with open(path, "rb") as fh:
            head = fh.read(512)
        if len(head) < 512 or head[510:512] != MBR_SIGNATURE:
            raise InputError(f"{path}: not a disk (no boot sector signature in its first 512 bytes)",
                             hint="give a qcow2 or raw disk image, not an archive or a filesystem")
    return DiskImage(path.resolve(), fmt, int(top["virtual-size"]), arch or guess_arch(path))
