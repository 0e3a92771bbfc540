"""Boot gate benchmark: time to verdict for one image and for a 4-image drop, KVM and TCG.

Prints, measured side by side in one run on this machine, with the Debian-based test appliance
(built once into ~/.cache/rel-eng/fixtures):
  - time to verdict of one image, and of N images side by side (one overlay each on the same
    disk), and their ratio (targets: < 1.3x the slowest single image with KVM, < 2.5x under TCG
    on 2 cores);
  - the gate's overhead per image: time to verdict minus the guest's own boot time, taken from
    cloud-init's "Up N seconds" on the console (target <= 5 s). What the BIOS and GRUB take
    before the kernel starts counts as overhead here, so the figure is an upper bound;
  - peak host memory (VmHWM of qemu) per VM against the guest's RAM (target <= RAM + 100 MiB).
KVM is measured only where a hardware KVM is usable; otherwise the line says why not.

Usage: python3 bench/boot_test.py [--images 4] [--accel tcg,kvm] [--memory-mib 1024]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rel_eng.boottest import accel as accel_mod  # noqa: E402
from rel_eng.boottest import engine, fixture, image  # noqa: E402


def run(imgs, accel, memory, parallel):
    opts = engine.BootOptions(accel=accel, memory_mib=memory,
                              checks=tuple(c for c in engine.ck.CHECKS if c != "anaconda-install"))
    t0 = time.monotonic()
    verdicts = engine.run_many(imgs, opts, parallel)
    return time.monotonic() - t0, verdicts


def report(label, wall, verdicts, memory):
    for v in verdicts:
        up = v.guest_uptime
        over = f"{v.seconds['verdict'] - up:6.1f} s" if up else "   n/a"
        print(f"  {label}: {v.status:4} verdict {v.seconds['verdict']:6.1f} s, guest boot "
              f"{up or 0:6.1f} s, gate overhead {over}, peak RSS {v.peak_rss_mib:6.1f} MiB "
              f"(guest RAM {memory} MiB, +{(v.peak_rss_mib or 0) - memory:.0f} MiB)")
        if v.status != "pass":
            print(f"    reason: {v.reason}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--accel", default="tcg,kvm")
    ap.add_argument("--memory-mib", type=int, default=1024)
    args = ap.parse_args()
    fx = fixture.ensure("amd64")
    img = image.inspect(fx.path)
    auto = accel_mod.choose("auto", env={})
    for name in args.accel.split(","):
        if name == "kvm" and auto.name != "kvm":
            print(f"KVM: not measured: {auto.reason}")
            continue
        chosen = accel_mod.Accel(name, "benchmark")
        print(f"{name.upper()}:")
        single_wall, single = run([img], chosen, args.memory_mib, 1)
        report("1 image ", single_wall, single, args.memory_mib)
        drop_wall, drop = run([img] * args.images, chosen, args.memory_mib, args.images)
        report(f"{args.images} images", drop_wall, drop, args.memory_mib)
        slowest = max(v.seconds["verdict"] for v in single)
        target = 1.3 if name == "kvm" else 2.5
        print(f"  {args.images}-image drop side by side: {drop_wall:.1f} s = "
              f"{drop_wall / slowest:.2f}x the single image ({slowest:.1f} s); target < {target}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
