"""Shared fixtures: the default config, one full synthetic compose reused by read-only tests, and
the bootable test appliance."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from rel_eng.compose import run_compose
from rel_eng.config import load_config
from tests.skip_gate import (pytest_collectreport, pytest_runtest_logreport,  # noqa: F401
                             pytest_sessionfinish, pytest_terminal_summary)

ALPHA_DATE = dt.date(2013, 4, 5)


@pytest.fixture(autouse=True)
def _uploader_schema_judges_ami_messages(monkeypatch):
    import uploader_schema

    uploader_schema.install(monkeypatch)


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def _alpha_drop_built(tmp_path_factory, config):
    out = tmp_path_factory.mktemp("alpha")
    c = run_compose(config, out, "19", "Alpha", ALPHA_DATE)
    return c, out, tree_state(out)


@pytest.fixture
def alpha_drop(_alpha_drop_built, request):
    """A full local compose of 19 Alpha, shared by every test that asks: read it, never change it
    (a test that must, copies it with `private_copy`). Checked after each test: any file added,
    removed or touched fails that test, so no result depends on the order tests run in."""
    c, out, before = _alpha_drop_built
    yield c, out
    after = tree_state(out)
    if after != before:
        changed = sorted(set(before.items()) ^ set(after.items()))[:5]
        pytest.fail(f"{request.node.nodeid} changed the shared alpha_drop: {changed}", pytrace=False)


def tree_state(root: Path) -> dict[str, tuple]:
    """path -> (type and mode, size, mtime, symlink target) of everything under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                             os.readlink(p) if p.is_symlink() else None)
    return out


def private_copy(src: Path, dest: Path) -> Path:
    """A copy of a compose output dir that keeps holes, modes, times and symlinks (cp -a)."""
    import subprocess

    subprocess.run(["cp", "-a", "--sparse=always", str(src), str(dest)], check=True)
    return dest


def data_extents(path: Path) -> list[tuple[int, int]]:
    """(start, end) of every data region; everything else is a hole and reads as zeros."""
    out = []
    with open(path, "rb") as fh:
        fd, size, pos = fh.fileno(), os.fstat(fh.fileno()).st_size, 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: no data past pos
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, end))
            pos = end
    return out


def sparse_equal(a: Path, b: Path) -> bool:
    """Byte-for-byte equality that reads only data regions (holes of both are zeros)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for start, end in sorted(set(data_extents(a) + data_extents(b))):
            fa.seek(start)
            fb.seek(start)
            if fa.read(end - start) != fb.read(end - start):
                return False
    return True


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def appliance_images():
    """The Debian-based test appliance of each arch (cached by recipe; on a machine that has
    none, both arches are built side by side, before the first boot test)."""
    from rel_eng.boottest import fixture

    return fixture.ensure_all()
