"""The attributes an EC2 image's AMI declares, per release and arch.

`[ec2]` holds the defaults; a release's `ec2_boot_mode`, `ec2_imds` and `ec2_ena` (releases.toml)
override them, because each is a fact about that release's image: its kickstart's partitioning
and bootloader (a BIOS-only disk cannot boot through UEFI), its cloud-init (IMDSv2 tokens from
cloud-init 20.1), its kernel (the ena driver from Linux 4.9). The boot gate boots the image with
exactly these attributes, and registration takes them only as the gate verified them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rel_eng.config.ec2 import BOOT_MODES, IMDS_SUPPORT

if TYPE_CHECKING:
    from rel_eng.config.ec2 import Ec2Config
    from rel_eng.config.problems import Problems
    from rel_eng.config.releases import Release

# EC2 boots i386 AMIs only through legacy BIOS, and no i386 instance type has ENA.
UEFI_MODES = ("uefi", "uefi-preferred")
# releases.toml key -> (Ec2Config field, the values the AMI API accepts)
RELEASE_KEYS = {"ec2_boot_mode": ("boot_mode", BOOT_MODES), "ec2_imds": ("imds_support", IMDS_SUPPORT),
                "ec2_ena": ("ena_support", (True, False))}


@dataclass(frozen=True)
class AmiAttributes:
    boot_mode: str          # legacy-bios | uefi | uefi-preferred
    imds_support: str       # "v2.0" (instances refuse IMDSv1) or "" (IMDSv1 allowed)
    ena_support: bool
    sriov_net_support: str  # "simple" or "" (unset)
    tpm_support: str        # "v2.0" or "" (unset); needs boot_mode uefi

    def api(self) -> dict[str, Any]:
        """The RegisterImage fields, as the AMI API names them; unset ones left out."""
        d: dict[str, Any] = {"BootMode": self.boot_mode, "EnaSupport": self.ena_support}
        for key, value in (("ImdsSupport", self.imds_support), ("SriovNetSupport", self.sriov_net_support),
                           ("TpmSupport", self.tpm_support)):
            if value:
                d[key] = value
        return d

    def full(self) -> dict[str, Any]:
        """Every attribute by its API name, unset ones as "" (what a verdict records)."""
        return {"BootMode": self.boot_mode, "ImdsSupport": self.imds_support,
                "EnaSupport": self.ena_support, "SriovNetSupport": self.sriov_net_support,
                "TpmSupport": self.tpm_support}

    @property
    def proving_checks(self) -> tuple[str, ...]:
        """The boot checks that prove what this AMI declares (uefi-preferred: both firmwares)."""
        modes = ("legacy-bios", "uefi") if self.boot_mode == "uefi-preferred" else (self.boot_mode,)
        return (*(f"boot-mode:{m}" for m in modes), *(("imds-tokens",) if self.imds_support else ()),
                *(("ena-driver",) if self.ena_support else ()))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def for_image(ec2: "Ec2Config", release: "Release", arch: str) -> AmiAttributes:
    """What the AMI of `release`'s EC2 image for `arch` (a Fedora arch) declares. Pure."""
    boot = release.ec2_boot_mode if release.ec2_boot_mode is not None else ec2.boot_mode
    imds = release.ec2_imds if release.ec2_imds is not None else ec2.imds_support
    ena = release.ec2_ena if release.ec2_ena is not None else ec2.ena_support
    i386 = arch in ("i686", "i386")
    return AmiAttributes(boot_mode=boot, imds_support=imds, ena_support=ena and not i386,
                         sriov_net_support=ec2.sriov_net_support, tpm_support=ec2.tpm_support)


def check(ec2: "Ec2Config", releases: tuple["Release", ...], arches: tuple[str, ...],
          problems: "Problems", config_problems: "Problems") -> None:
    """The combinations AWS or EC2 refuse, each told once at the key that set it."""
    i686 = "i686" in arches and ec2.i386
    for rel in releases:
        boot = rel.ec2_boot_mode if rel.ec2_boot_mode is not None else ec2.boot_mode
        own = rel.ec2_boot_mode is not None
        where, into = (f"releases.{rel.key}.ec2_boot_mode", problems) if own else ("ec2.boot_mode",
                                                                                   config_problems)
        if i686 and boot in UEFI_MODES:
            into.add(where, f"'{boot}' for release {rel.key}: EC2 boots i386 AMIs only in legacy "
                            "BIOS (set \"legacy-bios\", or ec2.i386 = false to skip the i686 AMI)")
        if ec2.tpm_support and boot != "uefi":
            into.add(where, f"'{boot}' for release {rel.key}: ec2.tpm_support needs BootMode "
                            "\"uefi\" (AWS refuses TpmSupport with legacy-bios or uefi-preferred)")


API_ORDER = ("BootMode", "ImdsSupport", "EnaSupport", "SriovNetSupport", "TpmSupport")


def describe_recorded(info: dict) -> str:
    """One line for people, from an image's ec2.json entry: its attributes and whether a boot
    verified them ("" when none are recorded). The README and the download page show it."""
    attrs = info.get("ami_attributes") or {}
    line = " ".join(f"{k}={attrs[k] if attrs[k] != '' else 'unset'}" for k in API_ORDER if k in attrs)
    return f"{line} ({info.get('ami_attributes_verified') or 'not verified by a boot'})" if line else ""
