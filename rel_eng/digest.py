"""File digests that read only what holds data, and the one error for a digest that differs.

A raw disk is a sparse file of several GiB holding a few hundred MiB. `file_digest` hashes its
holes as the zeros they read as, from one zero buffer, without reading them from disk; that still
costs a sha256 pass over the whole virtual size. Raw disks therefore carry a *block digest*
(`BlockDigest`): the sha256 of the sha256 of every 1 MiB block in order, the scheme of EBS's
LINEAR snapshot checksum. An all-zero block's digest is a constant, so a hole costs nothing and
the digest costs what the data costs, with the same guarantee as a sha256 of the file.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Iterator

from rel_eng.errors import RelEngError, VerifyFailed

CHUNK = 1024 * 1024
BLOCK = 1024 * 1024  # of the block digest; fixed, it is part of the digest's definition
_ZEROS = memoryview(bytes(CHUNK))
_ZERO_BLOCK_SHA = hashlib.sha256(bytes(BLOCK)).digest()


class DigestMismatch(VerifyFailed):
    """A file's bytes are not the ones recorded for it: never trust or pass it on."""

    def __init__(self, path: Path | str, expected: str, actual: str, what: str = "sha256",
                 hint: str | None = None):
        super().__init__(f"{path}: {what} is {actual}, expected {expected}",
                         hint=hint or "the file changed or was damaged since it was recorded; "
                                      "rebuild or re-fetch it")
        self.path, self.expected, self.actual = str(path), expected, actual


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) byte ranges that may hold data; holes are never read.

    Filesystems without SEEK_DATA support report the whole file as data.
    """
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after offset
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield offset, size
                return
            raise
        end = min(size, os.lseek(fd, start, os.SEEK_HOLE))
        if end <= start:  # a filesystem answering nonsense: read the rest rather than loop
            yield start, size
            return
        yield start, end
        offset = end


def update_zeros(digest, count: int) -> None:
    if isinstance(digest, BlockDigest):
        digest.update_zeros(count)
        return
    while count > 0:
        n = min(count, CHUNK)
        digest.update(_ZEROS[:n])
        count -= n


class BlockDigest:
    """sha256(sha256(block 0) + sha256(block 1) + ...), blocks of 1 MiB, the last one shorter.

    Fed in order with `update(data)` and `update_zeros(count)`; zeros cost nothing per block.
    """

    def __init__(self):
        self._top = hashlib.sha256()
        self._buf = bytearray()
        self.size = 0

    def update(self, data) -> None:
        mv = memoryview(data).cast("B")
        self.size += len(mv)
        if self._buf:
            take = BLOCK - len(self._buf)
            self._buf += mv[:take]
            mv = mv[take:]
            if len(self._buf) < BLOCK:
                return
            self._top.update(hashlib.sha256(self._buf).digest())
            self._buf.clear()
        while len(mv) >= BLOCK:
            self._top.update(hashlib.sha256(mv[:BLOCK]).digest())
            mv = mv[BLOCK:]
        self._buf += mv

    def update_zeros(self, count: int) -> None:
        if self._buf:
            take = min(count, BLOCK - len(self._buf))
            self.update(bytes(take))
            count -= take
        full, rest = divmod(count, BLOCK)
        self.size += full * BLOCK
        while full > 0:
            n = min(full, 4096)
            self._top.update(_ZERO_BLOCK_SHA * n)
            full -= n
        if rest:
            self.update(bytes(rest))

    def hexdigest(self) -> str:
        top = self._top.copy()
        if self._buf:
            top.update(hashlib.sha256(self._buf).digest())
        return top.hexdigest()


def file_digest(path: Path | str, algo: str = "sha256") -> str:
    """Hex digest of the file's bytes (holes hashed as zeros, never read); `algo` is a hashlib
    name or "blocks" for the block digest."""
    digest = BlockDigest() if algo == "blocks" else hashlib.new(algo)
    with open(path, "rb", buffering=0) as fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        for start, end in data_extents(fd, size):
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


def raw_digest(path: Path | str) -> str:
    """What a raw disk's manifest `sha256` holds: its block digest."""
    return file_digest(path, "blocks")


def check_raw(path: Path | str, expected: str, who: str) -> None:
    """Before `who` trusts a raw disk: its block digest must be the one the builder recorded."""
    if not expected:
        raise RelEngError(f"{path}: no digest recorded for this raw disk in the manifest; "
                          f"{who} will not trust it", hint="rebuild the image")
    actual = raw_digest(path)
    if actual != expected:
        raise DigestMismatch(path, expected, actual, what="block sha256",
                             hint=f"{who} refused it; the raw disk changed since the builder "
                                  "handed it over: rebuild the image")


def sha256_file(path: Path | str) -> str:
    return file_digest(path, "sha256")

