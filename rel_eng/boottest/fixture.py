"""A bootable Debian-based cloud test appliance, built without loop devices and cached by recipe.

No Fedora media can be fetched here, so the boot gate's own tests (and `make demo-boot`) boot a
Debian bookworm root made with debootstrap: a kernel, real cloud-init, openssh-server, growpart
and sudo, the serial console on ttyS0, and cloud-init's default user named `fedora` so the checks
apply unchanged. It is labelled for what it is (a Debian test appliance), never as Fedora.

The disk is put together by offset: a DOS partition table (sfdisk on a plain file), the root
filesystem written into partition 1 by `mkfs.ext4 -d -E offset=`, GRUB's boot.img in MBR bytes
0..439 and core.img from sector 1. Nothing is mounted except /proc and /dev for the chroot.

The appliance is lean on purpose, since the suite boots it under TCG on one emulated CPU: a
small initrd, cloud-init's modules cut to those the checks exercise, ed25519 and ECDSA host keys
only, no display target, no units or modules a cloud guest has no use for, and no documentation,
translations or drivers for absent hardware. What the gate checks is left as a cloud image has it.

The result lives in ~/.cache/rel-eng/fixtures/, named by the digest of its recipe, so a machine
builds each recipe once. Negative fixtures are derived from the good one by changing one thing,
with `debugfs -w` at the partition offset (still no mount).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rel_eng import runner
from rel_eng.atomic import atomic_path, atomic_write
from rel_eng.errors import FixtureFailed

# Bump when the build procedure changes in a way the recipe below does not show.
RECIPE_VERSION = 4
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
DISK_BYTES = 2 * 1024**3
# MBR: partition 1 the EFI system partition (type ef, vfat), partition 2 the root (ext4, last so
# growpart can grow it). BIOS boots GRUB from the MBR gap, UEFI boots \EFI\BOOT\BOOTX64.EFI from
# the ESP; both read the one grub.cfg on the root.
ESP_START_SECTOR = 2048
ESP_SECTORS = 32 * 2048  # 32 MiB
ESP_OFFSET = ESP_START_SECTOR * 512
ESP_TYPE = "ef"
PART_START_SECTOR = ESP_START_SECTOR + ESP_SECTORS
PART_OFFSET = PART_START_SECTOR * 512
GRUB_DIR = Path("/usr/lib/grub/i386-pc")
GRUB_EFI_DIR = Path("/usr/lib/grub/x86_64-efi")
GRUB_MODULES = ["biosdisk", "part_msdos", "ext2", "search_fs_uuid", "normal", "linux",
                "serial", "terminal", "echo"]
# The EFI image finds the root by its UUID (firmware disk order is not the BIOS's), then loads
# the rest from /boot/grub/x86_64-efi like the BIOS core does from i386-pc.
GRUB_EFI_MODULES = ["part_msdos", "ext2", "search_fs_uuid", "normal", "linux", "serial",
                    "terminal", "echo", "efi_gop"]
EFI_EARLY_CFG = "search.fs_uuid {root_uuid} root\nset prefix=($root)/boot/grub\n"
# GRUB 2.06 cannot read these newer ext4 features; switch them off where mke2fs knows them.
EXT4_FEATURES_OFF = ["^orphan_file", "^metadata_csum_seed"]
APPLIANCE_NAME = "Debian bookworm cloud test appliance (rel-eng boot gate fixture, not Fedora)"
DEFAULT_USER = "fedora"
# The appliance boots on one emulated CPU, so whatever runs beside cloud-init slows it down.
# No display: graphical.target only adds units to wait for. These units and modules do nothing
# a cloud guest needs (scrubbing, binfmt, debug and fuse mounts; floppy, PC speaker, nested KVM).
DEFAULT_TARGET = "multi-user.target"
MASKED_UNITS = ["e2scrub_reap.service", "systemd-binfmt.service",
                "proc-sys-fs-binfmt_misc.automount", "sys-kernel-debug.mount",
                "sys-kernel-tracing.mount", "sys-kernel-config.mount", "dev-hugepages.mount",
                "dev-mqueue.mount", "sys-fs-fuse-connections.mount", "modprobe@drm.service",
                "modprobe@fuse.service", "modprobe@loop.service", "modprobe@dm_mod.service",
                "modprobe@efi_pstore.service", "modprobe@configfs.service"]
BLACKLISTED_MODULES = ["floppy", "pcspkr", "kvm", "kvm_amd", "kvm_intel", "ccp", "serio_raw",
                       "i2c_piix4", "drm", "efi_pstore", "evdev"]

KERNELS = {"amd64": "linux-image-amd64", "i386": "linux-image-686"}
PACKAGES = ["systemd-sysv", "udev", "dbus", "cloud-init", "openssh-server", "cloud-guest-utils",
            "fdisk", "e2fsprogs", "sudo", "ifupdown", "isc-dhcp-client", "iproute2", "netbase",
            "procps", "initramfs-tools"]
# Debian names of what the fixture's test kickstart asks for, and what it must leave out.
EXCLUDED_PACKAGES = ["firewalld", "ufw", "network-manager"]

# cloud-init's modules, cut to what the gate's checks exercise: growpart and resizefs (root
# grown), users-groups (default user, sudo), ssh (key, host keys), set-passwords (ssh_pwauth),
# runcmd and scripts-user (the nonce), keys-to-console (host keys pinned from the console).
# Every module is Python imported under emulation, so each one left out is boot time saved;
# locale is left out too because the appliance has no locales package (update-locale).
CLOUD_INIT_MODULES = {
    "cloud_init_modules": ["growpart", "resizefs", "set_hostname", "update_hostname",
                           "update_etc_hosts", "users-groups", "ssh"],
    "cloud_config_modules": ["set-passwords", "runcmd"],
    "cloud_final_modules": ["scripts-user", "ssh-authkey-fingerprints", "keys-to-console",
                            "final-message"],
}
CLOUD_CFG = f"""\
# {APPLIANCE_NAME}
datasource_list: [ NoCloud, None ]
manage_etc_hosts: true
ssh_pwauth: false
# RSA host keys take ~8 s to make under emulation; these two take well under one.
ssh_genkeytypes: [ed25519, ecdsa]
disable_root: true
system_info:
  default_user:
    name: {DEFAULT_USER}
    lock_passwd: true
    gecos: Test appliance default user
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
""" + "".join(f"{stage}: [{', '.join(mods)}]\n" for stage, mods in CLOUD_INIT_MODULES.items())

# The initramfs holds only what finds a virtio or IDE root on ext4: initramfs-tools' default
# (MODULES=most) made a 35 MB initrd, which GRUB reads through the BIOS and the kernel unpacks,
# both emulated under TCG.
INITRAMFS_CONF = "MODULES=list\n"
# nvme: the root is attached as NVMe when the appliance boots as an EC2 (Nitro) instance.
# sr_mod: a CD (the NoCloud seed, Nova's config drive) must be /dev/sr0 before systemd's
# generators run, since cloud-init's ds-identify looks for the config-2 label then; loaded later
# by udev, it is missed and ds-identify leaves ConfigDrive out of the datasource list.
INITRAMFS_MODULES = ["virtio_pci", "virtio_blk", "ata_piix", "sd_mod", "sr_mod", "nvme", "ext4",
                     "crc32c_generic"]
# dpkg leaves these out at install: documentation, translations, and kernel drivers for hardware
# that a qemu guest never has. They were 2/3 of the disk, which the suite copies, converts,
# compresses and digests several times over.
_NO_DRIVERS = ["gpu", "media", "infiniband", "usb", "iio", "staging", "comedi", "hwmon", "mtd",
               "video", "isdn", "bluetooth", "net/wireless", "net/ethernet", "net/can", "net/usb",
               "net/wwan"]
# ...except Amazon's ENA driver (drivers/net/ethernet/amazon), which an EC2 instance's NIC needs.
_KEEP_DRIVERS = ["net/ethernet/amazon"]
_MODULE_TOPS = ("/lib", "/usr/lib")
DPKG_EXCLUDES = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*",
                 *(f"{top}/modules/*/kernel/{sub}/*" for top in _MODULE_TOPS
                   for sub in [*(f"drivers/{d}" for d in _NO_DRIVERS), "sound", "net/wireless",
                               "net/mac80211", "net/bluetooth"])]
DPKG_INCLUDES = [f"{top}/modules/*/kernel/drivers/{d}/*" for top in _MODULE_TOPS for d in _KEEP_DRIVERS]
# fsck pass 0: a fresh filesystem made by mkfs.ext4 -d, checked by no boot (it is on the
# critical path before cloud-init-local).
FSTAB = "UUID={root_uuid} / ext4 errors=remount-ro 0 0\n"

INTERFACES = """\
# The NIC stanza is written by cloud-init on first boot for the MAC it finds.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
"""


@dataclass(frozen=True)
class Fixture:
    path: Path
    arch: str
    fmt: str
    digest: str
    variant: str = "good"


def cache_dir() -> Path:
    base = os.environ.get("REL_ENG_FIXTURE_CACHE")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rel-eng" / "fixtures"


def recipe(arch: str) -> dict:
    if arch not in KERNELS:
        raise ValueError(f"no fixture recipe for arch {arch!r} (known: {', '.join(KERNELS)})")
    return {
        "version": RECIPE_VERSION, "suite": SUITE, "mirror": MIRROR, "arch": arch,
        "packages": [KERNELS[arch], *PACKAGES], "cloud_cfg": CLOUD_CFG, "interfaces": INTERFACES,
        "disk_bytes": DISK_BYTES, "part_start": PART_START_SECTOR, "grub_modules": GRUB_MODULES,
        "esp": [ESP_START_SECTOR, ESP_SECTORS, ESP_TYPE, GRUB_EFI_MODULES, EFI_EARLY_CFG],
        "ext4_off": EXT4_FEATURES_OFF, "grub_cfg": _grub_cfg("ROOTUUID", "KERNEL", "INITRD"),
        "initramfs": [INITRAMFS_CONF, INITRAMFS_MODULES], "default_target": DEFAULT_TARGET,
        "masked": MASKED_UNITS, "blacklist": BLACKLISTED_MODULES, "fstab": FSTAB,
        "dpkg_excludes": DPKG_EXCLUDES, "dpkg_includes": DPKG_INCLUDES,
    }


def recipe_digest(arch: str) -> str:
    blob = json.dumps(recipe(arch), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def fixture_name(arch: str, variant: str = "good", ext: str = "qcow2") -> str:
    return f"debian-{SUITE}-test-appliance-{arch}-{recipe_digest(arch)}-{variant}.{ext}"


def kickstart_text(arch: str) -> str:
    """What the appliance's %packages would say (Debian names), for the anaconda-install check."""
    lines = [f"# {APPLIANCE_NAME}: package names are Debian's", "%packages",
             KERNELS[arch], *PACKAGES, *(f"-{p}" for p in EXCLUDED_PACKAGES), "%end"]
    return "\n".join(lines) + "\n"


def kickstart_path(fx: "Fixture") -> Path:
    path = fx.path.with_suffix(".ks")
    if not path.exists():
        atomic_write(path, kickstart_text(fx.arch))
    return path


def ensure(arch: str = "amd64", *, log=print) -> Fixture:
    """The cached good fixture for arch, building it (once per recipe, under a lock) if missing."""
    out = cache_dir() / fixture_name(arch)
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with _lock(out):
            if not out.exists():
                _build(arch, out, log)
    fx = Fixture(out, arch, "qcow2", recipe_digest(arch))
    kickstart_path(fx)
    return fx


def ensure_all(arches: tuple[str, ...] = tuple(KERNELS), *, log=print) -> dict[str, Fixture]:
    """The good fixture of each arch; those missing are built side by side (a build keeps about
    one core busy, so two arches on two cores take little longer than one)."""
    with ThreadPoolExecutor(max_workers=len(arches)) as pool:
        return dict(zip(arches, pool.map(lambda arch: ensure(arch, log=log), arches)))


def _lock(out: Path):
    class _L:
        def __enter__(self):
            self.fd = os.open(str(out) + ".lock", os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)

        def __exit__(self, *exc):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
    return _L()


def _grub_cfg(root_uuid: str, kernel: str, initrd: str) -> str:
    return f"""\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
echo 'GRUB: {APPLIANCE_NAME}'
search --no-floppy --fs-uuid --set=root {root_uuid}
linux /boot/{kernel} root=UUID={root_uuid} ro console=tty0 console=ttyS0,115200 net.ifnames=0
initrd /boot/{initrd}
boot
"""


def _build(arch: str, out: Path, log) -> None:
    for tool in ("debootstrap", "chroot", "mkfs.ext4", "sfdisk", "grub-mkimage", "qemu-img"):
        runner.require(tool)
    runner.require_all(["mkfs.vfat", "mcopy", "mmd"])
    if not (GRUB_DIR / "boot.img").exists():
        raise runner.ToolMissing("grub i386-pc images", "grub-pc-bin")
    if not (GRUB_EFI_DIR / "normal.mod").exists():
        raise runner.ToolMissing("grub x86_64-efi modules", "grub-efi-amd64-bin")
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent))
    root = work / "root"
    try:
        log(f"fixture: debootstrap {SUITE} {arch} into {root}")
        runner.run(["debootstrap", "--variant=minbase", f"--arch={arch}", SUITE, root, MIRROR])
        _install_packages(root, [KERNELS[arch], *PACKAGES], log)
        root_uuid = str(uuid.uuid4())
        _configure(root, root_uuid)
        raw = work / "disk.raw"
        _make_disk(root, raw, root_uuid)
        log("fixture: converting to qcow2")
        with atomic_path(out) as tmp:
            runner.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, tmp])
        log(f"fixture: {out}")
    finally:
        _umount_all(root)
        shutil.rmtree(work, ignore_errors=True)


def _install_packages(root: Path, packages: list[str], log) -> None:
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# no daemons start inside the build chroot\nexit 101\n")
    policy.chmod(0o755)
    (root / "etc/dpkg/dpkg.cfg.d/rel-eng-test-appliance").write_text(
        "".join(f"path-exclude={p}\n" for p in DPKG_EXCLUDES)
        + "".join(f"path-include={p}\n" for p in DPKG_INCLUDES))
    runner.run(["mount", "-t", "proc", "proc", root / "proc"])
    runner.run(["mount", "--bind", "/dev", root / "dev"])
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C"}
    try:
        log(f"fixture: apt-get install {' '.join(packages)}")
        runner.run(["chroot", root, "apt-get", "update", "-qq"], env=env)
        runner.run(["chroot", root, "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    *packages], env=env)
        runner.run(["chroot", root, "apt-get", "clean"], env=env)
        shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)  # 80 MB no check reads
        (root / "var/lib/apt/lists/partial").mkdir(parents=True)
        (root / "etc/initramfs-tools/conf.d/rel-eng-test-appliance.conf").write_text(INITRAMFS_CONF)
        (root / "etc/initramfs-tools/modules").write_text("\n".join(INITRAMFS_MODULES) + "\n")
        log("fixture: update-initramfs (a small initrd: MODULES=list)")
        runner.run(["chroot", root, "update-initramfs", "-u", "-k", "all"], env=env)
    finally:
        _umount_all(root)
        policy.unlink(missing_ok=True)


def _umount_all(root: Path) -> None:
    for sub in ("dev", "proc"):
        target = root / sub
        if os.path.ismount(target):
            runner.run(["umount", "-l", target])


def _configure(root: Path, root_uuid: str) -> None:
    (root / "etc/cloud/cloud.cfg.d/90-rel-eng-test-appliance.cfg").write_text(CLOUD_CFG)
    (root / "etc/network/interfaces").write_text(INTERFACES)
    (root / "etc/network/interfaces.d").mkdir(exist_ok=True)
    (root / "etc/fstab").write_text(FSTAB.format(root_uuid=root_uuid))
    (root / "etc/hostname").write_text("rel-eng-test-appliance\n")
    (root / "etc/rel-eng-test-appliance").write_text(APPLIANCE_NAME + "\n")
    target = root / "etc/systemd/system/default.target"
    target.unlink(missing_ok=True)
    target.symlink_to(f"/lib/systemd/system/{DEFAULT_TARGET}")
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (root / "etc/modprobe.d/rel-eng-test-appliance.conf").write_text(
        "".join(f"blacklist {m}\n" for m in BLACKLISTED_MODULES))
    # Each boot must make its own identity: machine-id and ssh host keys come from first boot.
    (root / "etc/machine-id").write_text("")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    boot = root / "boot"
    kernel = sorted(p.name for p in boot.glob("vmlinuz-*"))[-1]
    initrd = sorted(p.name for p in boot.glob("initrd.img-*"))[-1]
    grub = boot / "grub"
    (grub / "i386-pc").mkdir(parents=True, exist_ok=True)
    for mod in GRUB_DIR.glob("*.mod"):
        shutil.copy2(mod, grub / "i386-pc" / mod.name)
    for lst in GRUB_DIR.glob("*.lst"):
        shutil.copy2(lst, grub / "i386-pc" / lst.name)
    (grub / "x86_64-efi").mkdir(parents=True, exist_ok=True)
    for f in [*GRUB_EFI_DIR.glob("*.mod"), *GRUB_EFI_DIR.glob("*.lst")]:
        shutil.copy2(f, grub / "x86_64-efi" / f.name)
    (grub / "grub.cfg").write_text(_grub_cfg(root_uuid, kernel, initrd))


def _ext4_feature_flags() -> list[str]:
    """Only the switches this mke2fs knows (orphan_file arrived in 1.47, the seed in 1.43)."""
    out = runner.run(["mke2fs", "-V"]).stderr.decode()
    m = re.search(r"mke2fs (\d+)\.(\d+)", out)
    version = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    flags = []
    if version >= (1, 43):
        flags.append("^metadata_csum_seed")
    if version >= (1, 47):
        flags.append("^orphan_file")
    return flags


def _make_disk(root: Path, raw: Path, root_uuid: str) -> None:
    with open(raw, "wb") as fh:
        fh.truncate(DISK_BYTES)
    runner.run(["sfdisk", "--quiet", raw],
               input=(f"label: dos\nstart={ESP_START_SECTOR}, size={ESP_SECTORS}, type={ESP_TYPE}\n"
                      f"start={PART_START_SECTOR}, type=83, bootable\n").encode())
    part_bytes = DISK_BYTES - PART_OFFSET
    argv = ["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-U", root_uuid, "-d", root,
            "-E", f"offset={PART_OFFSET}"]
    flags = _ext4_feature_flags()
    if flags:
        argv += ["-O", ",".join(flags)]
    runner.run([*argv, raw, f"{part_bytes // 1024}k"])
    core = raw.with_suffix(".core.img")
    runner.run(["grub-mkimage", "-O", "i386-pc", "-o", core, "-p", "(hd0,msdos2)/boot/grub",
                *GRUB_MODULES])
    core_bytes = core.read_bytes()
    if len(core_bytes) > (PART_START_SECTOR - 1) * 512:
        raise FixtureFailed(f"GRUB core.img ({len(core_bytes)} bytes) does not fit before sector "
                            f"{PART_START_SECTOR}")
    boot_img = (GRUB_DIR / "boot.img").read_bytes()
    with open(raw, "r+b") as fh:
        fh.seek(0)
        fh.write(boot_img[:440])  # keep the partition table and signature sfdisk wrote
        fh.seek(512)
        fh.write(core_bytes)
    _make_esp(raw, root_uuid)


def _make_esp(raw: Path, root_uuid: str) -> None:
    """The vfat ESP with GRUB's x86_64-efi image as the removable-media path, made in a file
    (mkfs.vfat -C, mtools) and written into partition 1: no loop device, no mount."""
    work = raw.parent
    efi, early, esp = work / "BOOTX64.EFI", work / "early.cfg", work / "esp.img"
    early.write_text(EFI_EARLY_CFG.format(root_uuid=root_uuid))
    runner.run(["grub-mkimage", "-O", "x86_64-efi", "-o", efi, "-c", early, "-p", "/boot/grub",
                "-d", GRUB_EFI_DIR, *GRUB_EFI_MODULES])
    esp.unlink(missing_ok=True)
    runner.run(["mkfs.vfat", "-C", "-n", "ESP", esp, str(ESP_SECTORS // 2)])
    runner.run(["mmd", "-i", esp, "::/EFI", "::/EFI/BOOT"])
    runner.run(["mcopy", "-i", esp, efi, "::/EFI/BOOT/BOOTX64.EFI"])
    with open(raw, "r+b") as fh, open(esp, "rb") as src:
        fh.seek(ESP_OFFSET)
        shutil.copyfileobj(src, fh)
    for f in (efi, early, esp):
        f.unlink()


# Negative fixtures: the good disk with one thing changed, each meant to fail exactly one check.
MAC_RULE = ('SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="52:54:00:de:ad:01", '
            'NAME="eth0"\n')
# Platform variants: cloud-init told to look only where one cloud puts its metadata, as an
# image built for that cloud is (fedora-cloud-base-ec2.ks sets [ Ec2, None ]).
DATASOURCE_LISTS = {"ec2": "[ Ec2, None ]", "openstack": "[ ConfigDrive, OpenStack, None ]",
                    "hostile": "[ ConfigDrive, OpenStack, None ]",
                    "any-cloud": "[ NoCloud, ConfigDrive, OpenStack, Ec2, None ]"}
CLOUD_CFG_PATH = "/etc/cloud/cloud.cfg.d/90-rel-eng-test-appliance.cfg"
# The hostile image: a unit that, at boot, tries the host's loopback services through every
# address slirp gives the host (10.0.2.2, 169.254.0.2) and the gateway. It fails when it gets
# through nowhere, which is what a sealed test boot must make of it (system-health names it).
# ("$$" is a literal "$" in a unit file; the tries run side by side, each bounded.)
HOSTILE_UNIT = "rel-eng-hostile-probe.service"
HOSTILE_PORTS = (22, 5432, 5672, 6379)
HOSTILE_UNIT_TEXT = f"""\
[Unit]
Description=Hostile probe: try to reach the build host's loopback services
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/bin/bash -c 'read -r _ _ gw _ < <(ip route show default); \\
  got=$$(for h in $$gw 10.0.2.2 169.254.0.2; do for p in {" ".join(map(str, HOSTILE_PORTS))}; do \\
    (timeout 3 bash -c "exec 3<>/dev/tcp/$$h/$$p" 2>/dev/null && echo "reached $$h:$$p") & \\
  done; done; wait); echo "$${{got:-reached nothing of the host}}"; [ -n "$$got" ]'

[Install]
WantedBy=multi-user.target
"""
VARIANTS = {
    "ec2": "cloud-init datasource_list [ Ec2, None ] (an image built for EC2)",
    "openstack": "cloud-init datasource_list [ ConfigDrive, OpenStack, None ] (built for OpenStack)",
    "hostile": "built for OpenStack, with a unit that tries the host's loopback services at boot",
    "any-cloud": "cloud-init looks for NoCloud, ConfigDrive, OpenStack and Ec2 (one image, every platform)",
    "no-sshd": "sshd removed (/usr/sbin/sshd deleted)",
    "mac-binding": "a persistent-net udev rule binding eth0 to 52:54:00:de:ad:01",
    "no-growpart": "growpart removed (/usr/bin/growpart deleted)",
    "no-boot": "the kernel replaced by junk: GRUB cannot load it and stops at its prompt",
    "no-esp": "the EFI system partition deleted from the partition table (boots through BIOS only)",
    "no-ena": "the kernel's ena module deleted (an image that cannot drive EC2's ENA NIC)",
}
ENA_DIR = "kernel/drivers/net/ethernet/amazon/ena"


def variant_name(good: Fixture, variant: str) -> Path:
    parts = variant.split("+")
    tag = hashlib.sha256("".join(f"{v}:{VARIANTS[v]}:{MAC_RULE}:{_variant_cloud_cfg(v)}:"
                                 f"{HOSTILE_UNIT_TEXT}" for v in parts).encode()).hexdigest()[:8]
    return good.path.with_name(good.path.name.replace("-good.qcow2", f"-{variant}-{tag}.raw"))


def derive(good: Fixture, variant: str) -> Fixture:
    """The good fixture with one change, made on a raw copy with debugfs -w (no mount).
    "a+b" applies a then b (e.g. "openstack+no-sshd": built for OpenStack, without sshd)."""
    unknown = [v for v in variant.split("+") if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown fixture variant {unknown[0]!r} (known: {', '.join(VARIANTS)})")
    out = variant_name(good, variant)
    if out.exists():
        return Fixture(out, good.arch, "raw", good.digest, variant)
    with _lock(out):
        if not out.exists():
            with atomic_path(out) as tmp:
                runner.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", good.path, tmp])
                for part in variant.split("+"):
                    _mutate(tmp, part)
    return Fixture(out, good.arch, "raw", good.digest, variant)


def _debugfs_r(raw: Path, request: str) -> tuple[str, str]:
    proc = runner.run(["debugfs", "-R", request, f"{raw}?offset={PART_OFFSET}"])
    return proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


def _debugfs_w(raw: Path, *requests: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as cmds:
        cmds.write("\n".join(requests) + "\n")
        cmds.flush()
        proc = runner.run(["debugfs", "-w", "-f", cmds.name, f"{raw}?offset={PART_OFFSET}"])
    err = proc.stderr.decode(errors="replace")
    if "not found" in err or "Could not" in err:
        raise FixtureFailed(f"debugfs on {raw}: {err.strip().splitlines()[-1]}")


def _variant_cloud_cfg(variant: str) -> str:
    ds = DATASOURCE_LISTS.get(variant)
    return CLOUD_CFG.replace("datasource_list: [ NoCloud, None ]", f"datasource_list: {ds}") if ds else ""


def _write_file(raw: Path, path: str, text: str) -> None:
    """Replace (or create) one file of the root filesystem, mode 0644."""
    directory, name = path.rsplit("/", 1)
    with tempfile.NamedTemporaryFile("w", suffix=".file") as fh:
        fh.write(text)
        fh.flush()
        os.chmod(fh.name, 0o644)
        out, _ = _debugfs_r(raw, f"stat {path}")
        if "Inode:" in out:
            _debugfs_w(raw, f"rm {path}")
        _debugfs_w(raw, f"cd {directory}", f"write {fh.name} {name}")


def _mutate(raw: Path, variant: str) -> None:
    if variant == "no-esp":
        runner.run(["sfdisk", "--quiet", "--delete", raw, "1"])
        with open(raw, "r+b") as fh:  # and its filesystem: nothing left for a firmware to find
            fh.seek(ESP_OFFSET)
            fh.write(bytes(1024 * 1024))
    if variant == "no-ena":
        out, _ = _debugfs_r(raw, "ls -p /lib/modules")
        for kver in [f.split("/")[5] for f in out.splitlines()
                     if len(f.split("/")) > 6 and f.split("/")[5] not in (".", "..")]:
            listing, _ = _debugfs_r(raw, f"ls -p /lib/modules/{kver}/{ENA_DIR}")
            for line in listing.splitlines():
                name = line.split("/")[5] if len(line.split("/")) > 6 else ""
                if name.startswith("ena.ko"):
                    _debugfs_w(raw, f"rm /lib/modules/{kver}/{ENA_DIR}/{name}")
    if variant in DATASOURCE_LISTS:
        _write_file(raw, CLOUD_CFG_PATH, _variant_cloud_cfg(variant))
    if variant == "hostile":
        unit = f"/etc/systemd/system/{HOSTILE_UNIT}"
        _write_file(raw, unit, HOSTILE_UNIT_TEXT)
        _debugfs_w(raw, f"symlink /etc/systemd/system/multi-user.target.wants/{HOSTILE_UNIT} {unit}")
    elif variant == "no-sshd":
        _debugfs_w(raw, "rm /usr/sbin/sshd")
    elif variant == "no-growpart":
        _debugfs_w(raw, "rm /usr/bin/growpart")
    elif variant == "mac-binding":
        with tempfile.NamedTemporaryFile("w", suffix=".rules") as rule:
            rule.write(MAC_RULE)
            rule.flush()
            os.chmod(rule.name, 0o644)
            _debugfs_w(raw, "cd /etc/udev/rules.d", f"write {rule.name} 70-persistent-net.rules")
    elif variant == "no-boot":
        out, _ = _debugfs_r(raw, "ls -p /boot")
        kernels = [f.split("/")[5] for f in out.splitlines()
                   if len(f.split("/")) > 6 and f.split("/")[5].startswith("vmlinuz-")]
        with tempfile.NamedTemporaryFile("wb", suffix=".junk") as junk:
            junk.write(b"this is not a kernel\n" * 4096)
            junk.flush()
            os.chmod(junk.name, 0o644)
            for k in kernels:
                _debugfs_w(raw, f"rm /boot/{k}", "cd /boot", f"write {junk.name} {k}")


def main(argv: list[str] | None = None) -> int:
    """`python -m rel_eng.boottest.fixture [amd64|i386]`: print the disk and kickstart paths."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    fx = ensure(args[0] if args else "amd64", log=lambda m: print(m, file=sys.stderr))
    print(fx.path)
    print(kickstart_path(fx))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
