"""Write to a temp file beside the target, fsync, rename; remove the temp on any failure.

Every file the pipeline writes goes through `atomic_path` (or `atomic_write` for bytes in
memory), so a reader sees the old file or the new one, never a half-written one, and a signal,
an error or a full disk leaves no temp file behind. A SIGKILL cannot be cleaned up after, so temp
names carry the writer's pid and host name (`<pid>@<host>`): `sweep` removes those of processes
of this host that no longer run. Another host's pids mean nothing here (compose and mirror dirs
are shared storage), so its leftovers are removed only by a caller that holds the mirror's lock
and only once they are older than FOREIGN_AFTER_S, longer than any staging takes.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Iterator

# `.<name>.tmp-<pid>@<host>-<token>`, `.<drop>.staging-<pid>@<host>-<t>`,
# `.<drop>.removing-<pid>@<host>-<t>`: ours (names without `@<host>` are of older runs, here).
LEFTOVER_RE = re.compile(r"^\..+\.(?P<kind>tmp|staging|removing)-(?P<pid>\d+)"
                         r"(?:@(?P<host>[A-Za-z0-9._-]+)-(?P<rest>[0-9a-f]+)|(?:-.*)?)$")
FOREIGN_AFTER_S = 24 * 3600  # a staging copies a few GiB: far longer than any takes
_HOST_CHARS = re.compile(r"[^A-Za-z0-9.-]")


def this_host() -> str:
    """This host's name as leftovers carry it (REL_ENG_HOSTNAME overrides: containers that share
    one name and one mirror need distinct ones)."""
    name = os.environ.get("REL_ENG_HOSTNAME") or socket.gethostname() or "localhost"
    return _HOST_CHARS.sub("_", name)[:64]


def leftover_tag() -> str:
    """`<pid>@<host>`: who writes a temp file or dir, for the sweep of a killed run's leftovers."""
    return f"{os.getpid()}@{this_host()}"


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{leftover_tag()}-{secrets.token_hex(4)}")


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


def _dead(path: Path, m: re.Match, foreign_after_s: float | None, now: float,
          host: str) -> bool:
    """Whether the writer of the leftover `path` is gone."""
    if m["host"] is None or m["host"] == host:
        return not pid_alive(int(m["pid"]))
    if foreign_after_s is None:
        return False  # another host's pid: nothing here can tell whether it still runs
    try:
        # staging and removing dirs carry their start time; a temp file its random token
        begun = int(m["rest"]) if m["kind"] != "tmp" and m["rest"].isdigit() else now
        started = min(os.lstat(path).st_mtime, begun)
    except OSError:
        return False
    return now - started > foreign_after_s


def leftovers(root: Path, recursive: bool = True, *, foreign_after_s: float | None = None,
              now: float | None = None, host: str | None = None) -> list[Path]:
    """Temp files and dirs under `root` whose writer no longer runs: this host's by pid; another
    host's only with `foreign_after_s`, once older than that (the caller holds the lock that
    every writer of `root` takes)."""
    found = []
    if not root.is_dir():
        return found
    now = time.time() if now is None else now
    host = host or this_host()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            m = LEFTOVER_RE.match(name)
            if m and _dead(Path(dirpath) / name, m, foreign_after_s, now, host):
                found.append(Path(dirpath) / name)
        dirnames[:] = [d for d in dirnames if recursive and not LEFTOVER_RE.match(d)]
    return sorted(found)


def sweep(root: Path, recursive: bool = True, **kw) -> list[Path]:
    """Remove `leftovers(root, recursive, **kw)`; returns what was removed."""
    removed = []
    for p in leftovers(root, recursive, **kw):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed


RENAME_EXCHANGE = 2  # linux/fs.h


def exchange_dirs(a: Path, b: Path) -> None:
    """Swap two directories in one step (renameat2 RENAME_EXCHANGE): a reader of either path
    sees the old tree or the new one, never neither. Where the kernel or filesystem cannot, `b`
    is renamed aside and `a` into its place (a moment without `b`)."""
    import ctypes
    import errno

    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        at_fdcwd = -100
        if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(b))
    aside = b.with_name(f".{b.name}.removing-{leftover_tag()}-{int(time.time())}")
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)
