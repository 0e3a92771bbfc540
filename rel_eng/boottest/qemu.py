"""The qemu command line for one boot test: pure, so it is tested directly."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

QEMU_BINARIES = {"x86_64": "qemu-system-x86_64", "i386": "qemu-system-i386",
                 "i686": "qemu-system-i386"}
QEMU_PACKAGE = "qemu-system-x86"


@dataclass(frozen=True)
class VmSpec:
    arch: str
    accel: str
    disk: Path          # the throw-away overlay, never the image itself
    seed: Path          # NoCloud cidata ISO
    console: Path
    mac: str
    ssh_port: int
    memory_mib: int = 1024
    cpus: int = 1
    tb_size_mib: int = 0  # TCG translation cache size; 0: qemu's default


def random_mac(rand: bytes | None = None) -> str:
    """A locally administered-looking QEMU MAC (52:54:00 is QEMU's prefix) with 3 random bytes."""
    tail = rand if rand is not None else secrets.token_bytes(3)
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail[:3])


def binary(arch: str) -> str:
    try:
        return QEMU_BINARIES[arch]
    except KeyError:
        raise ValueError(f"no qemu system emulator for arch {arch!r}") from None


def _accel_arg(accel: str, tb_size_mib: int = 0) -> str:
    # TCG's translation cache is most of a VM's host memory beyond the guest's own: qemu's default
    # (1 GiB on this host) took the appliance's boot to guest RAM + ~600 MiB. Measured side by
    # side (bench/boot_test.py --tb-sizes): 256 MiB took 1-9% longer than the default at half
    # the host memory, 128 ~7% longer, 64 ~30% longer (it flushes and retranslates all the time).
    if accel == "tcg" and tb_size_mib:
        return f"tcg,tb-size={tb_size_mib}"
    return accel


def argv(spec: VmSpec) -> list[str]:
    """Boot the disk through the BIOS as a cloud does (never -kernel), console to a file."""
    cmd = [binary(spec.arch), "-nodefaults", "-no-user-config", "-display", "none",
           "-machine", "pc", "-accel", _accel_arg(spec.accel, spec.tb_size_mib), "-m", str(spec.memory_mib),
           "-smp", str(spec.cpus)]
    if spec.accel == "kvm":
        cmd += ["-cpu", "host"]
    cmd += [
        "-drive", f"file={spec.disk},format=qcow2,if=virtio,cache=unsafe",
        "-drive", f"file={spec.seed},format=raw,if=ide,media=cdrom,readonly=on",
        "-nic", f"user,model=virtio-net-pci,mac={spec.mac},"
                f"hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22",
        "-serial", f"file:{spec.console}",
        "-boot", "order=c", "-no-reboot",
    ]
    return cmd
