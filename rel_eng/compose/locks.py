"""File locks: one per step of a compose, one per output dir for respin allocation, and one per
mirror tree.

`flock` locks: the kernel drops them when their holder dies, so a SIGKILLed run or worker never
leaves a stale lock behind. The step functions take their own lock, and a Celery task may take
the same one around them first (with a deadline): a lock a thread already holds is re-entered,
never waited on, so the two nest.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from rel_eng.errors import RelEngError

POLL_S = 0.5


class StepBusy(RelEngError):
    """Another holder keeps the lock past the deadline (a Celery task retries on it)."""


_held = threading.local()  # path -> depth, per thread


def _try_lock(fh) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextlib.contextmanager
def file_lock(path: Path, what: str, timeout: float | None = None,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Hold an exclusive flock on `path`; wait for it forever (timeout None) or raise StepBusy."""
    held = _held.__dict__
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.parent.resolve() / path.name)
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    with open(path, "a") as fh:
        if timeout is None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        else:
            deadline = clock() + timeout
            while not _try_lock(fh):
                if clock() >= deadline:
                    raise StepBusy(f"{what} is still held by another worker or run after "
                                   f"{timeout:.0f}s")
                sleep(POLL_S)
        held[key] = 1
        try:
            yield
        finally:
            held.pop(key, None)
            fcntl.flock(fh, fcntl.LOCK_UN)


def step_lock_path(topdir: Path, step: str) -> Path:
    return topdir / "work" / "locks" / (step.replace(":", "--") + ".lock")


@contextlib.contextmanager
def step_lock(topdir: Path, step: str, timeout: float | None = None, **kw) -> Iterator[None]:
    """The lock of one step (`build:<key>`, `process:<key>`, `finalize`) of the compose in `topdir`."""
    with file_lock(step_lock_path(topdir, step), f"{topdir.name}: step {step}", timeout, **kw):
        yield


@contextlib.contextmanager
def step_locks(topdir: Path, steps: list[str]) -> Iterator[None]:
    """Several step locks, always taken in one order so that two runs cannot deadlock."""
    with contextlib.ExitStack() as stack:
        for step in sorted(set(steps)):
            stack.enter_context(step_lock(topdir, step))
        yield


@contextlib.contextmanager
def _dir_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on the directory itself (made if missing), so it adds no file to it."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the lock


def allocation_lock(output: Path) -> contextlib.AbstractContextManager[None]:
    """Respin allocation and the creation of the compose dir, one compose at a time per output.

    The lock is on the output dir itself, so it adds no file to it."""
    return _dir_lock(output)


def mirror_lock(mirror_root: Path) -> contextlib.AbstractContextManager[None]:
    """One mirror tree, one holder: respin allocation against what the mirror holds and has
    reserved, and the sweep of another host's leftovers in it. On the mirror root itself, so
    it adds no file to the mirror (flock works across hosts on NFSv4 and most cluster
    filesystems)."""
    return _dir_lock(mirror_root)
