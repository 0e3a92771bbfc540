"""A real full disk (a small tmpfs) during a compose: one line with the path and the errno, exit 1
(files were written: not the exit 2 of bad input), STATUS DOOMED, no temp files left, and a
--resume after freeing space finishes the compose.

The tmpfs lives in a user and mount namespace (tests/tmpfs_ns.py): rel-eng runs inside it, the
test reads the same files from outside."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.tmpfs_ns import NamespacedTmpfs

TEMP_MARKS = (".part", ".tmp", ".staging-")


@pytest.fixture
def small_disk(tmp_path):
    with NamespacedTmpfs(tmp_path / "disk", size="40m") as disk:
        yield disk


def rel_eng(disk: NamespacedTmpfs, *args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REL_ENG_")}
    return disk.run([sys.executable, "-m", "rel_eng", *args], capture_output=True, text=True,
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
    disk = small_disk.outside  # the test's view; rel-eng sees small_disk.inside
    out, inside_out = disk / "out", small_disk.inside / "out"
    # Room for the plan and the four raw disks (about 7 MiB of data), not for their deliverables.
    filler = fill(disk, leave=15 << 19)
    proc = rel_eng(small_disk, "compose", "--release", "19", "--weekly", "--date", "2013-04-05",
                   "--output", str(inside_out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("rel-eng: error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].endswith("No space left on device (ENOSPC)"), errors[0]
    assert f"{inside_out}/" in errors[0]  # names the path it could not write
    (topdir,) = [p for p in out.iterdir() if p.name.startswith("Fedora-Cloud-")]
    assert (topdir / "STATUS").read_text().strip() == "DOOMED"
    assert leftovers(disk) == []

    filler.unlink()
    again = rel_eng(small_disk, "compose", "--resume", str(inside_out / topdir.name), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[:2] == [topdir.name, "FINISHED"]
    assert (topdir / "STATUS").read_text().strip() == "FINISHED"
    assert leftovers(disk) == []
    weekly = out / "mirror" / "alt" / "cloud" / "weekly" / "19" / topdir.name
    assert (weekly / "Cloud" / "x86_64" / "images").is_dir()
