"""`[boot_test]`: which drops a failed boot stops and how boots are bounded (rel_eng.boottest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rel_eng.config.problems import Problems
from rel_eng.config.table import NOTHING, Section, setting

# The named checks, in the order they are reported (rel_eng.boottest.checks evaluates them).
CHECKS = ("console", "boot-mode:legacy-bios", "boot-mode:uefi", "cloud-init", "datasource", "ssh",
          "metadata", "user-data", "imds-tokens", "ena-driver", "sealed", "nvme-root", "root-grown",
          "no-hardcoded-mac", "firewall-off", "root-locked", "sudo-nopasswd", "system-health",
          "anaconda-install", "reboot")
# Asked for by name only: `reboot` costs a second boot of the guest.
OPT_IN_CHECKS = ("reboot",)
DEFAULT_CHECKS = tuple(n for n in CHECKS if n not in OPT_IN_CHECKS)
# How an image is booted: what the platform presents to the guest (rel_eng.boottest.platform).
PLATFORMS = ("ec2", "openstack", "nocloud")
IMDS_MODES = ("v1", "v2")
# The firmware one boot goes through: SeaBIOS, or OVMF (an AMI's uefi-preferred is booted both ways).
FIRMWARES = ("legacy-bios", "uefi")
# Nova writes its config drive as ISO 9660 (config_drive_format = iso9660, its default, a CD)
# or vfat (a disk); either way the filesystem is labelled config-2.
OPENSTACK_MODES = ("config-drive", "config-drive-vfat", "metadata-service")
# Host loopback ports every guest tries to reach at boot (none may answer: the guest is sealed).
SEAL_PROBE_PORTS = (22, 80, 5432, 5672, 6379)
GATES = ("milestones", "all", "none")
ACCELS = ("auto", "kvm", "tcg")


def _checks(value: Any, problems: Problems, key: str, base_dir) -> Any:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.add(key, f"expected a non-empty list of check names, got {value!r}")
        return NOTHING
    unknown = [v for v in value if v not in CHECKS]
    if unknown:
        problems.add(key, f"unknown check {', '.join(unknown)} (known: {', '.join(CHECKS)})")
        return NOTHING
    return tuple(n for n in CHECKS if n in value)


def _ports(value: Any, problems: Problems, key: str, base_dir) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                              and 1 <= v <= 65535 for v in value):
        problems.add(key, f"expected a list of TCP ports 1..65535, got {value!r}")
        return NOTHING
    return tuple(value)


@dataclass(frozen=True)
class BootTestConfig(Section):
    enabled: bool = setting(True, 'false: every image recorded "skipped: boot test disabled"')
    gate: str = setting("milestones", "which drops a failed boot stops: milestones | all | none",
                        choices=GATES)
    parallel: int = setting(2, "VMs at once (also bounded by host memory)", low=1, high=64)
    accel: str = setting("auto", "auto | kvm | tcg (REL_ENG_ACCEL overrides)", choices=ACCELS)
    memory_mib: int = setting(1024, "guest RAM", low=256, high=65536)
    # 256 boots the appliance as fast as qemu's default (1 GiB here) with ~900 MiB less host
    # memory per VM (README, Boot gate).
    tcg_tb_size_mib: int = setting(256, "TCG translation cache per VM in MiB; 0: qemu's default",
                                   low=0, high=4096)
    # TCG-sized bounds; a guest that is ready sooner gets its verdict sooner (see README).
    console_timeout_s: int = setting(300, "first kernel line on the console", low=5, high=3600)
    boot_timeout_s: int = setting(900, "the whole boot, to the checks' answer", low=10, high=7200)
    ssh_timeout_s: int = setting(120, "one ssh connection", low=5, high=3600)
    guest_script_timeout_s: int = setting(300, "the checks' script in the guest", low=10, high=3600)
    checks: tuple[str, ...] = setting(DEFAULT_CHECKS, "the checks a compose runs (all but the opt-in reboot by default)", convert=_checks)
    # Nova attaches a config drive when asked and serves the metadata service always; the
    # drive is what most OpenStack clouds' images are built for, so the gate uses it.
    openstack: str = setting("config-drive", "how an openstack-platform image gets its metadata: "
                             "config-drive | config-drive-vfat | metadata-service", choices=OPENSTACK_MODES)
    seal_probe_ports: tuple[int, ...] = setting(SEAL_PROBE_PORTS, "host loopback ports each guest "
                                                "tries at boot; none may answer", convert=_ports)

    def gated(self, milestone: str | None) -> bool:
        return self.gate == "all" or (self.gate == "milestones" and bool(milestone))
