"""The qemu command line for one boot test: pure, so it is tested directly."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

QEMU_BINARIES = {"x86_64": "qemu-system-x86_64", "i386": "qemu-system-i386",
                 "i686": "qemu-system-i386"}
# UEFI: Debian's ovmf (x86_64 only; EC2 boots i386 AMIs through legacy BIOS alone). The 4 MiB
# build, as Debian's libvirt uses; each VM gets its own copy of the variable store.
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
OVMF_PACKAGE = "ovmf"


# The guest's network when a metadata service is served: libslirp forwards a guest address
# only from inside its virtual network (an address outside it is "Conflicting/invalid
# host:port in guest forwarding rule"), so the link-local /16 holds 169.254.169.254. The guest
# leases DHCP_START; the host side (slirp's gateway) is 169.254.0.2.
METADATA_NET = "169.254.0.0/16"
METADATA_DHCP_START = "169.254.0.15"
DEFAULT_DHCP_START = "10.0.2.15"
GATEWAYS = ("10.0.2.2", "169.254.0.2")  # slirp's host address in either network


@dataclass(frozen=True)
class VmSpec:
    arch: str
    accel: str
    disk: Path          # the throw-away overlay, never the image itself
    seed: Path | None   # a CD the platform attaches: NoCloud cidata or OpenStack config-2
    console: Path
    mac: str
    ssh_port: int
    memory_mib: int = 1024
    cpus: int = 1
    tb_size_mib: int = 0  # TCG translation cache size; 0: qemu's default
    smbios: tuple[str, ...] = ()   # -smbios arguments (the platform's DMI)
    nvme_root: bool = False        # the root disk as NVMe (an EC2 Nitro instance)
    guestfwd: str = ""             # guestfwd=... option serving 169.254.169.254:80, or ""
    allow_reboot: bool = False     # the reboot check: a guest reset reboots instead of ending qemu
    seed_is_disk: bool = False     # the seed is a disk (Nova's vfat config drive), not a CD
    uefi_vars: Path | None = None  # this VM's copy of OVMF_VARS: boot through OVMF, not SeaBIOS


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
    """Boot the disk through its firmware (SeaBIOS, or OVMF for UEFI) as a cloud does (never
    -kernel), console to a file."""
    cmd = [binary(spec.arch), "-nodefaults", "-no-user-config", "-display", "none",
           "-machine", "pc", "-accel", _accel_arg(spec.accel, spec.tb_size_mib), "-m", str(spec.memory_mib),
           "-smp", str(spec.cpus)]
    if spec.accel == "kvm":
        cmd += ["-cpu", "host"]
    cmd += list(spec.smbios)
    if spec.uefi_vars is not None:
        cmd += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_escape(str(OVMF_CODE))}",
                "-drive", f"if=pflash,format=raw,unit=1,file={_escape(str(spec.uefi_vars))}"]
    disk = _escape(str(spec.disk))
    if spec.nvme_root:
        cmd += ["-drive", f"file={disk},format=qcow2,if=none,id=root,cache=unsafe",
                "-device", f"nvme,drive=root,serial={ebs_serial(spec.mac)},bootindex=0"]
    else:
        cmd += ["-drive", f"file={disk},format=qcow2,if=virtio,cache=unsafe"]
    if spec.seed is not None and spec.seed_is_disk:
        cmd += ["-drive", f"file={_escape(str(spec.seed))},format=raw,if=virtio,readonly=on"]
    elif spec.seed is not None:
        cmd += ["-drive", f"file={_escape(str(spec.seed))},format=raw,if=ide,media=cdrom,readonly=on"]
    cmd += ["-nic", nic(spec), "-serial", f"file:{spec.console}", "-boot", "order=c"]
    if not spec.allow_reboot:
        cmd.append("-no-reboot")
    return cmd


def nic(spec: VmSpec) -> str:
    """User networking sealed with restrict=on: the guest reaches no host port and nothing
    beyond; only ssh comes in (from 127.0.0.1) and, where served, the metadata service. No
    IPv6: slirp's fec0::/64 would be one more way towards the host to keep shut."""
    opts = ["user", "model=virtio-net-pci", f"mac={spec.mac}", "restrict=on", "ipv6=off",
            f"hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22"]
    if spec.guestfwd:
        opts += [f"net={METADATA_NET}", f"dhcpstart={METADATA_DHCP_START}", _escape(spec.guestfwd)]
    return ",".join(opts)


def guest_ipv4(serves_metadata: bool) -> str:
    return METADATA_DHCP_START if serves_metadata else DEFAULT_DHCP_START


def ebs_serial(mac: str) -> str:
    """An EBS-style NVMe serial ("vol" and 17 hex digits), from the run's random MAC."""
    return "vol0" + mac.replace(":", "")[-12:].rjust(16, "0")


def _escape(value: str) -> str:
    # qemu's option parser splits on ","; a literal comma is written twice.
    return value.replace(",", ",,")
