"""A real full disk (a small tmpfs) during a compose: one line with the path and the errno, exit 1
(files were written: not the exit 2 of bad input),
STATUS DOOMED, no temp files left, and a --resume after freeing space finishes the compose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TEMP_MARKS = (".part", ".tmp", ".staging-")


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def rel_eng(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REL_ENG_")}
    return subprocess.run([sys.executable, "-m", "rel_eng", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves `leave` bytes free on `disk`."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        chunk = b"\0" * (1 << 20)
        left = free - leave
        while left > 0:
            fh.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)
    return filler


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if any(m in p.name for m in TEMP_MARKS))


def test_disk_full_dooms_cleanly_and_resume_finishes(small_disk, tmp_path):
    out = small_disk / "out"
    # Room for the plan and the four raw disks (about 7 MiB of data), not for their deliverables.
    filler = fill(small_disk, leave=15 << 19)
    proc = rel_eng("compose", "--release", "19", "--weekly", "--date", "2013-04-05",
                   "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("rel-eng: error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].endswith("No space left on device (ENOSPC)"), errors[0]
    assert f"{out}/" in errors[0]  # names the path it could not write
    (topdir,) = [p for p in out.iterdir() if p.name.startswith("Fedora-Cloud-")]
    assert (topdir / "STATUS").read_text().strip() == "DOOMED"
    assert leftovers(small_disk) == []

    filler.unlink()
    again = rel_eng("compose", "--resume", str(topdir), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[:2] == [topdir.name, "FINISHED"]
    assert (topdir / "STATUS").read_text().strip() == "FINISHED"
    assert leftovers(small_disk) == []
    weekly = out / "mirror" / "alt" / "cloud" / "weekly" / "19" / topdir.name
    assert (weekly / "Cloud" / "x86_64" / "images").is_dir()
