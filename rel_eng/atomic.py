"""Write to a temp file beside the target, fsync, rename; remove the temp on any failure.

Every file the pipeline writes goes through `atomic_path` (or `atomic_write` for bytes in
memory), so a reader sees the old file or the new one, never a half-written one, and a signal,
an error or a full disk leaves no temp file behind. A SIGKILL cannot be cleaned up after, so temp
names carry the writer's pid: `sweep` removes those of processes that no longer run.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterator

# `.<name>.tmp-<pid>-<token>`, `.<drop>.staging-<pid>-<t>`, `.<drop>.removing-<pid>`: ours.
LEFTOVER_RE = re.compile(r"^\..+\.(?:tmp|staging|removing)-(\d+)(?:-.*)?$")


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temp path in `path`'s dir to write (by hand or by a tool); on success it is
    fsynced, given `mode` and renamed to `path`. On any exception (signals included) it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # write() errors (a full disk) carry no path: name the file
        raise


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    with atomic_path(path, mode) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)


def atomic_symlink(target: str, link: Path) -> None:
    """Point `link` at `target`; readers see the old link or the new one, never none."""
    tmp = temp_path(link)
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs on this host (this process counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(root: Path, recursive: bool = True) -> list[Path]:
    """Temp files and dirs under `root` whose writer no longer runs (on this host)."""
    found = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            m = LEFTOVER_RE.match(name)
            if m and not pid_alive(int(m.group(1))):
                found.append(Path(dirpath) / name)
        dirnames[:] = [d for d in dirnames if recursive and not LEFTOVER_RE.match(d)]
    return sorted(found)


def sweep(root: Path, recursive: bool = True) -> list[Path]:
    """Remove `leftovers(root)`; returns what was removed."""
    removed = []
    for p in leftovers(root, recursive):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed
