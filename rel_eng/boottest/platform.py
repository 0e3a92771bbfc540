"""Which cloud an image is booted as, and what that cloud shows the guest.

- ec2: DMI as EC2 sets it (vendor "Amazon EC2", an instance type as product, a system UUID and
  serial that begin with "ec2" and are equal), the root volume as NVMe on x86_64 (a Nitro
  instance; i686 AMIs run only on Xen instance types, so no NVMe there), and the instance
  metadata service at 169.254.169.254 (IMDSv2 tokens required, or optional with v1).
- openstack: DMI as Nova sets it (manufacturer "OpenStack Foundation", product "OpenStack
  Nova", the instance UUID as system UUID) and either a config drive labelled `config-2` (ISO
  9660 on a CD, or vfat on a disk, the two formats Nova writes) or the metadata service at
  169.254.169.254.
- nocloud: a `cidata` seed ISO, no DMI and no metadata service.

Pure: tested directly; rel_eng.boottest.engine builds what `Platform` names.
"""

from __future__ import annotations

from dataclasses import dataclass

from rel_eng.config.boot_test import FIRMWARES, IMDS_MODES, OPENSTACK_MODES, PLATFORMS

EC2_VENDOR = "Amazon EC2"
EC2_INSTANCE_TYPE = "t3.micro"       # a Nitro type: NVMe root, ENA NIC
NOVA_MANUFACTURER = "OpenStack Foundation"
NOVA_PRODUCT = "OpenStack Nova"
# cloud-init datasource names (as in its instance data, `v1.platform` / ds name) per platform.
DATASOURCES = {"ec2": ("Ec2",), "openstack:config-drive": ("ConfigDrive",),
               "openstack:config-drive-vfat": ("ConfigDrive",),
               "openstack:metadata-service": ("OpenStack",), "nocloud": ("NoCloud",)}


@dataclass(frozen=True)
class Platform:
    name: str = "nocloud"
    imds: str = "v2"                  # ec2 only: v2 = tokens required (ImdsSupport=v2.0)
    openstack: str = "config-drive"   # openstack only: config-drive[-vfat] | metadata-service
    boot_mode: str = "legacy-bios"    # the firmware: SeaBIOS, or OVMF for uefi (an AMI's BootMode)
    ena: bool = False                 # ec2 only: the AMI declares EnaSupport (ena-driver checks it)

    def __post_init__(self):
        for value, known, what in ((self.name, PLATFORMS, "platform"), (self.imds, IMDS_MODES, "IMDS mode"),
                                   (self.openstack, OPENSTACK_MODES, "OpenStack mode"),
                                   (self.boot_mode, FIRMWARES, "boot mode")):
            if value not in known:
                raise ValueError(f"unknown {what} {value!r} (use {' | '.join(known)})")

    @property
    def key(self) -> str:
        return f"openstack:{self.openstack}" if self.name == "openstack" else self.name

    @property
    def label(self) -> str:
        """How verdicts name it: "ec2 (IMDSv2)", "openstack (config drive)", "nocloud"."""
        if self.name == "ec2":
            extra = "".join((", UEFI" if self.uefi else "", ", ENA" if self.ena else ""))
            return f"ec2 (IMDS{self.imds}{extra})"
        if self.name == "openstack":
            return f"openstack ({self.openstack.replace('-', ' ')})"
        return self.name

    @property
    def datasources(self) -> tuple[str, ...]:
        return DATASOURCES[self.key]

    @property
    def serves_metadata(self) -> bool:
        return self.name == "ec2" or (self.name == "openstack" and self.openstack == "metadata-service")

    @property
    def uefi(self) -> bool:
        return self.boot_mode == "uefi"

    def nvme_root(self, arch: str) -> bool:
        return self.name == "ec2" and arch == "x86_64"

    def as_dict(self) -> dict:
        d = {"name": self.name, "label": self.label}
        if self.name == "ec2":
            d["imds"] = self.imds
        if self.name == "openstack":
            d["openstack"] = self.openstack
        if self.uefi:  # only when set, so a BIOS boot keeps its earlier key
            d["boot_mode"] = self.boot_mode
        if self.ena:
            d["ena"] = True
        return d


def smbios(platform: Platform, system_uuid: str) -> list[str]:
    """qemu -smbios arguments (type 0 BIOS, 1 system, 3 chassis) for the platform's DMI."""
    if platform.name == "ec2":
        return ["-smbios", f"type=0,vendor={EC2_VENDOR}",
                "-smbios", f"type=1,manufacturer={EC2_VENDOR},product={EC2_INSTANCE_TYPE},"
                           f"uuid={system_uuid},serial={system_uuid}",
                "-smbios", f"type=3,manufacturer={EC2_VENDOR},asset=Amazon EC2"]
    if platform.name == "openstack":
        return ["-smbios", f"type=1,manufacturer={NOVA_MANUFACTURER},product={NOVA_PRODUCT},"
                           f"uuid={system_uuid},serial={system_uuid},family=Virtual Machine"]
    return []


def imds_mode(imds_support: str) -> str:
    """The compose gate's mode from `[ec2] imds_support`: "v2.0" -> v2, "" -> v1."""
    return "v2" if imds_support == "v2.0" else "v1"
