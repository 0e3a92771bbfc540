"""An AMI's BootMode as boots: legacy-bios (SeaBIOS) and uefi (OVMF) are one boot each;
uefi-preferred is both, side by side as far as `parallel` and the host's memory allow, judged as
one verdict (an AMI that prefers UEFI must also boot where an instance type has only BIOS)."""

from __future__ import annotations

import dataclasses

from rel_eng.boottest import checks as ck
from rel_eng.boottest import engine
from rel_eng.boottest.image import DiskImage
from rel_eng.boottest.platform import Platform
from rel_eng.config.ec2 import BOOT_MODES


def firmwares(boot_mode: str) -> tuple[str, ...]:
    if boot_mode not in BOOT_MODES:
        raise ValueError(f"unknown boot mode {boot_mode!r} (use {' | '.join(BOOT_MODES)})")
    return ("legacy-bios", "uefi") if boot_mode == "uefi-preferred" else (boot_mode,)


def run_many(images: list[DiskImage], opts: engine.BootOptions, parallel: int,
             platforms: list[Platform], boot_modes: list[str], *, boot=engine.run_many
             ) -> list[engine.Verdict]:
    """One verdict per image, each booted once per firmware its boot mode needs; all the boots
    of all the images go to one `boot` call, so they share its bound."""
    flat_imgs, flat_plats, owner = [], [], []
    for i, (img, plat, mode) in enumerate(zip(images, platforms, boot_modes)):
        for fw in firmwares(mode):
            flat_imgs.append(img)
            flat_plats.append(dataclasses.replace(plat, boot_mode=fw))
            owner.append(i)
    verdicts = boot(flat_imgs, opts, parallel, flat_plats)
    grouped: dict[int, list[engine.Verdict]] = {}
    for i, v in zip(owner, verdicts):
        grouped.setdefault(i, []).append(v)
    return [merge(grouped[i], boot_modes[i]) for i in range(len(images))]


def merge(verdicts: list[engine.Verdict], boot_mode: str) -> engine.Verdict:
    """The verdicts of one image's boots as one: each check from the boot that tested it (a
    failure in either boot wins), the status a pass only when every boot passed."""
    if len(verdicts) == 1:
        return verdicts[0]
    base, *others = verdicts
    by_name = [{c.name: c for c in v.checks} for v in verdicts]
    labels = [v.platform.get("boot_mode", "legacy-bios") for v in verdicts]
    checks = []
    for name in [c.name for c in base.checks]:  # the order the checks are reported in
        found = [(label, d[name]) for label, d in zip(labels, by_name) if name in d]
        ran = [(label, c) for label, c in found if c.status != "skipped"] or found
        bad = [(label, c) for label, c in ran if ck.counts_against(c)]
        label, chosen = (bad or ran)[0]
        if bad and len(ran) > 1:
            chosen = dataclasses.replace(chosen, message=f"under {label}: {chosen.message}")
        checks.append(chosen)
    status = "pass" if all(v.status == "pass" for v in verdicts) else "fail"
    reason = "; ".join(f"{label} boot: {v.reason}" for label, v in zip(labels, verdicts) if v.reason)
    seconds = dict(base.seconds)
    for label, v in zip(labels[1:], others):
        seconds.update({f"{label}:{k}": t for k, t in v.seconds.items()})
    seconds["verdict"] = max(v.seconds.get("verdict", 0.0) for v in verdicts)
    return dataclasses.replace(base, checks=checks, status=status, reason=reason, seconds=seconds,
                               platform={**base.platform, "boot_mode": boot_mode,
                                         "label": base.platform.get("label", "ec2").rstrip(")")
                                         + f", {boot_mode}: BIOS and UEFI)"},
                               peak_rss_mib=max((v.peak_rss_mib or 0.0) for v in verdicts) or None)
