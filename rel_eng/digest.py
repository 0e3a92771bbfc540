"""sha256 of files, reading only what holds data, and the one error for a digest that differs.

A raw disk is a sparse file of several GiB holding a few hundred MiB; its holes are hashed as the
zeros they read as, from one zero buffer, without reading them from disk.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from rel_eng.errors import RelEngError

CHUNK = 1024 * 1024
_ZEROS = memoryview(bytes(CHUNK))


class DigestMismatch(RelEngError):
    """A file's bytes are not the ones recorded for it: never trust or pass it on."""

    def __init__(self, path: Path | str, expected: str, actual: str, what: str = "sha256",
                 hint: str | None = None):
        super().__init__(f"{path}: {what} is {actual}, expected {expected}",
                         hint=hint or "the file changed or was damaged since it was recorded; "
                                      "rebuild or re-fetch it")
        self.path, self.expected, self.actual = str(path), expected, actual


def _extents(fd: int, size: int):
    """(start, end) of the regions that may hold data; the rest reads as zeros."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield pos, size
                return
            raise
        end = min(size, os.lseek(fd, start, os.SEEK_HOLE))
        if end <= start:
            yield start, size
            return
        yield start, end
        pos = end


def update_zeros(digest, count: int) -> None:
    while count > 0:
        n = min(count, CHUNK)
        digest.update(_ZEROS[:n])
        count -= n


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of the file's bytes (holes hashed as zeros, never read)."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        for start, end in _extents(fd, size):
            update_zeros(digest, start - pos)
            os.lseek(fd, start, os.SEEK_SET)
            left = end - start
            while left > 0:
                chunk = os.read(fd, min(CHUNK, left))
                if not chunk:
                    raise RelEngError(f"{path}: the file shrank while it was being hashed",
                                      hint="something else is writing it; rerun when it is done")
                digest.update(chunk)
                left -= len(chunk)
            pos = end
        update_zeros(digest, size - pos)
    return digest.hexdigest()


def check_file(path: Path | str, expected: str, what: str = "sha256") -> None:
    """Raise DigestMismatch unless the file's sha256 is `expected`."""
    actual = sha256_file(path)
    if actual != expected:
        raise DigestMismatch(path, expected, actual, what)
