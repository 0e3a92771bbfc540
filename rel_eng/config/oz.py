"""`[oz]`: how a bare-metal host runs oz-install (rel_eng.builders.oz)."""

from __future__ import annotations

from dataclasses import dataclass

from rel_eng.config.table import Section, setting

_OZ = "Oz requires it"


def _libvirt_uri(uri: str) -> str | None:
    return None if "://" in uri else f"'{uri}' is not a libvirt URI (e.g. qemu:///system)"


@dataclass(frozen=True)
class OzConfig(Section):
    libvirt_uri: str = setting("qemu:///system", "libvirt connection of the host", valid=_libvirt_uri)
    libvirt_type: str = setting("kvm", "libvirt domain type")
    bridge_name: str = setting("", '"" leaves Oz\'s default bridge')
    memory_mib: int = setting(2048, "guest memory; Fedora's Oz builders install with >= 2048 MiB",
                              low=2048, high=1024 * 1024)
    cpus: int = setting(2, "guest CPUs", low=1, high=256)
    install_timeout_s: int = setting(3600, "oz-install -t and [timeouts] install", low=60, high=7 * 86400)
    inactivity_timeout_s: int = setting(300, "Oz's inactivity timeout", low=30, high=86400)
    boot_timeout_s: int = setting(300, "Oz's boot timeout", low=30, high=86400)
    shutdown_timeout_s: int = setting(90, "Oz's shutdown timeout", low=10, high=86400)
    kill_grace_s: int = setting(300, "past the install timeout, rel-eng kills an oz-install that hangs",
                                low=1, high=86400)
    data_dir: str = setting("/var/lib/oz", "Oz's install media cache, shared by builds on the host",
                            path="absolute", why_absolute=_OZ)
    output_dir: str = setting("", '"" = the image\'s work dir in the compose', path="absolute",
                              why_absolute=_OZ)
    screenshot_dir: str = setting("", '"" = the image\'s log dir, so failure screenshots stay with '
                                  "the compose", path="absolute", why_absolute=_OZ)
    parallel: int = setting(1, "oz-install runs at once on one host (each needs memory_mib)",
                            low=1, high=32)

