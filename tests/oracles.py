"""Expected values computed without the code under test: hashlib and plain reads only.

A test that compares the product's digest with the product's digest shows only that the code
agrees with itself. These read every byte of the file through the ordinary read path (holes come
back as the zeros they are) and hash it with hashlib, with no knowledge of extents, sparse files
or the product's shortcuts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

MIB = 1024 * 1024
_ZERO_BLOCK = bytes(MIB)
_ZERO_BLOCK_SHA = hashlib.sha256(_ZERO_BLOCK).digest()


def block_sha256(path: Path | str) -> str:
    """sha256 over the sha256 of every 1 MiB block of the file, in order, the last one as long
    as it is: the definition of a raw disk's block digest, written out.

    Every byte is read and compared; a block that reads as exactly 1 MiB of zeros takes hashlib's
    digest of 1 MiB of zeros computed once (the same value, without hashing GiBs of zeros again).
    """
    top = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(MIB):
            top.update(_ZERO_BLOCK_SHA if block == _ZERO_BLOCK else hashlib.sha256(block).digest())
    return top.hexdigest()


def block_sha256_of(data: bytes) -> str:
    """The same definition over bytes in memory, block by block, no shortcut at all."""
    top = hashlib.sha256()
    for i in range(0, len(data), MIB):
        top.update(hashlib.sha256(data[i:i + MIB]).digest())
    return top.hexdigest()


def sha256(path: Path | str) -> str:
    """sha256 of every byte of the file, as `sha256sum` reads it."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(MIB):
            h.update(chunk)
    return h.hexdigest()
