"""The one write-to-temp-and-rename helper: readers see the old or the new file, a failure leaves
no temp behind, and killed writers' leftovers are swept; the pipeline has no other copy of it."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rel_eng import atomic

REPO = Path(__file__).resolve().parent.parent


def test_success_replaces_and_failure_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "d" / "images.json"
    atomic.atomic_write(target, "old")
    assert target.read_text() == "old" and oct(target.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(OSError, match="No space"):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["images.json"]
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("x")
            raise KeyboardInterrupt
    assert sorted(p.name for p in target.parent.iterdir()) == ["images.json"]
    atomic.atomic_symlink("images.json", tmp_path / "d" / "latest")
    atomic.atomic_symlink("other", tmp_path / "d" / "latest")
    assert os.readlink(tmp_path / "d" / "latest") == "other"
    assert sorted(p.name for p in target.parent.iterdir()) == ["images.json", "latest"]


def test_sweep_removes_dead_writers_leftovers_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)  # that process has exited
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "a" / "b").mkdir(parents=True)
        gone = [tmp_path / "a" / f".x.qcow2.tmp-{dead_pid}-ab12",
                tmp_path / "a" / "b" / f".manifest.json.tmp-{dead_pid}"]
        for p in gone:
            p.write_text("half")
        staging = tmp_path / f".19_Alpha-1.1.staging-{dead_pid}-1700000000"
        (staging / "Cloud").mkdir(parents=True)
        kept = [tmp_path / "a" / f".y.tmp-{live.pid}-cd34", tmp_path / f".z.tmp-{os.getpid()}-ef",
                tmp_path / "a" / "Fedora.qcow2", tmp_path / "a" / ".hidden"]
        for p in kept:
            p.write_text("x")
        removed = atomic.sweep(tmp_path)
        assert sorted(removed) == sorted([*gone, staging])
        assert all(p.exists() for p in kept)
        assert not staging.exists()
    finally:
        live.kill()
        live.wait()


# Renames that are not "write a temp file, then rename": each with why it stays.
OTHER_RENAMES = {
    "rel_eng/atomic.py": "the helper itself",
    "rel_eng/stage.py": "a whole staged drop renamed into place / out of sight",
    "rel_eng/release/tree.py": "a whole release tree renamed into place / aside / out of sight",
    "rel_eng/builders/koji_download.py": "the resumable .part of a Range download",
    "rel_eng/builders/oz.py": "Oz's finished output moved to its raw name",
}


def test_no_module_keeps_its_own_copy_of_the_helper():
    calls = re.compile(r"\bos\.(replace|rename)\(|\b(tmp|part)\w*\.(replace|rename)\(")
    found = {}
    for path in sorted((REPO / "rel_eng").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if calls.search(line)]
        if hits:
            found[rel] = hits
    assert len(found) > 0
    assert set(found) <= set(OTHER_RENAMES), {k: v for k, v in found.items() if k not in OTHER_RENAMES}
