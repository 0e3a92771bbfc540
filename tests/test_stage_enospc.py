"""A full mirror disk during staging names the file being written, and leaves nothing behind."""

from __future__ import annotations

import errno
import hashlib
import subprocess

import pytest

from rel_eng.cli import os_error_line
from rel_eng.stage import StageFile, stage


@pytest.fixture()
def small_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mirror)],
                          capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield mirror
    subprocess.run(["umount", str(mirror)], capture_output=True)


def test_enospc_while_staging_names_the_path(tmp_path, small_mirror):
    data = bytes(range(256)) * (8 * 1024)  # 2 MiB into a 1 MiB filesystem
    src = tmp_path / "disk.qcow2"
    src.write_bytes(data)
    files = [StageFile(src, "Cloud/x86_64/images/disk.qcow2", len(data),
                       hashlib.sha256(data).hexdigest())]
    with pytest.raises(OSError) as err:
        stage(files, small_mirror, "alt/stage/19_Alpha-1.1")
    assert err.value.errno == errno.ENOSPC
    line = os_error_line(err.value)
    assert "Cloud/x86_64/images/disk.qcow2" in line and "(ENOSPC)" in line, line
    assert str(small_mirror) in line
    stage_dir = small_mirror / "alt" / "stage"
    assert list(stage_dir.iterdir()) == []  # the private staging dir is gone too
