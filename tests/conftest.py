"""Shared fixtures: the default config, one full synthetic compose reused by read-only tests, and
the bootable test appliance."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from rel_eng.compose import run_compose
from rel_eng.config import load_config

ALPHA_DATE = dt.date(2013, 4, 5)


@pytest.fixture(autouse=True)
def _uploader_schema_judges_ami_messages(monkeypatch):
    import uploader_schema

    uploader_schema.install(monkeypatch)


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def alpha_drop(tmp_path_factory, config):
    """A full local compose of 19 Alpha; tests only read it."""
    out = tmp_path_factory.mktemp("alpha")
    c = run_compose(config, out, "19", "Alpha", ALPHA_DATE)
    return c, out


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
