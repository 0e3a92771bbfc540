"""Release benchmark: `rel-eng release` of a drop of 4 images x 2 files on one filesystem,
against its floor, side by side in one run.

The release's I/O is hardlinks and one read of each file (the check hashes each staged file
once, the link step links those very inodes). Its floor is what a person would do by hand:
`cp -al` of the same tree plus `sha256sum` of each file. Goal: release <= 1.2x the floor.

The drop is a real synthetic compose's staged drop whose image files are grown to --mib MiB of
random data each, with images.json, the CHECKSUM files and metadata/MANIFEST rewritten to match.
The page cache is warmed once before timing (both sides read the same bytes).

Usage: python3 bench/release.py [--mib 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def grow(drop: Path, mib: int) -> int:
    """Every image file of the drop holds `mib` MiB of random data; metadata rewritten."""
    from productmd.images import Images

    from rel_eng import drop_manifest
    from rel_eng.checksums import Entry, checksum_text
    from rel_eng.digest import sha256_file

    images = Images()
    images.load(str(drop / "metadata/images.json"))
    grown = 0
    for variant in images.images.values():
        for arch_images in variant.values():
            for img in arch_images:
                path = drop / img.path
                with open(path, "wb") as fh:
                    for _ in range(mib):
                        fh.write(os.urandom(1 << 20))
                img.size = path.stat().st_size
                img.checksums = {"sha256": sha256_file(path)}
                grown += 1
    images.dump(str(drop / "metadata/images.json"))
    for ck in drop.rglob("*CHECKSUM"):
        d = ck.parent
        names = [line.split("(")[1].split(")")[0] for line in ck.read_text().splitlines()
                 if line.startswith("SHA256 (")]
        ck.write_text(checksum_text([Entry(n, (d / n).stat().st_size, sha256_file(d / n))
                                     for n in names]))
    entries = {rel: ((drop / rel).stat().st_size, sha256_file(drop / rel))
               for rel in drop_manifest.drop_files(drop)}
    (drop / drop_manifest.NAME).write_text(drop_manifest.render(entries))
    return grown


def floor(drop: Path, dest: Path) -> float:
    t = time.perf_counter()
    subprocess.run(["cp", "-al", str(drop), str(dest)], check=True)
    files = sorted(str(p) for p in dest.rglob("*") if p.is_file())
    subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def floor_hashlib(drop: Path, dest: Path) -> float:
    """The same with Python's hashlib (OpenSSL) instead of coreutils' sha256sum, which may be
    slower on this CPU: the fairer floor for the hashing itself."""
    from rel_eng.digest import sha256_file

    t = time.perf_counter()
    subprocess.run(["cp", "-al", str(drop), str(dest)], check=True)
    for p in sorted(dest.rglob("*")):
        if p.is_file():
            sha256_file(p)
    return time.perf_counter() - t


def release_once(config, out: Path, label: str) -> float:
    from rel_eng.release.run import Options, release

    t = time.perf_counter()
    release(config, Options(label, out, by="bench", allow_unverified=True), out=lambda _: None)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=64, help="MiB of random data per image file")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from rel_eng.compose import run_compose
    from rel_eng.config import load_config

    config = load_config()
    with tempfile.TemporaryDirectory(prefix="rel-eng-bench-release-") as tmp:
        out = Path(tmp) / "out"
        c = run_compose(config, out, "19", "Beta", dt.date(2013, 4, 5))
        drop = out / "mirror" / c.plan.mirror_path
        n = grow(drop, args.mib)
        target = out / "mirror" / "fedora/linux/releases/test/19_Beta/Cloud"
        total = sum(p.stat().st_size for p in drop.rglob("*") if p.is_file())
        print(f"drop: {n} image files x {args.mib} MiB, {total / (1 << 20):.0f} MiB in all, "
              f"one filesystem")
        floor(drop, Path(tmp) / "warm")  # warm the page cache for both sides
        shutil.rmtree(Path(tmp) / "warm")
        rel_t, floor_t, floor2_t = [], [], []
        for i in range(args.rounds):
            floor_t.append(floor(drop, Path(tmp) / f"floor{i}"))
            shutil.rmtree(Path(tmp) / f"floor{i}")
            floor2_t.append(floor_hashlib(drop, Path(tmp) / f"floor{i}"))
            shutil.rmtree(Path(tmp) / f"floor{i}")
            rel_t.append(release_once(config, out, c.plan.label))
            shutil.rmtree(target)  # the next round releases again
        r, f, f2 = (statistics.median(x) for x in (rel_t, floor_t, floor2_t))
        print(f"rel-eng release (check + link + seal + swap + record): {r:.3f}s (median of "
              f"{args.rounds})")
        print(f"floor: cp -al + sha256sum of each file: {f:.3f}s")
        print(f"ratio release / floor: {r / f:.2f}x (goal <= 1.2x)")
        print(f"floor with hashlib instead of sha256sum: {f2:.3f}s; ratio {r / f2:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
