"""The raw disks' block digest against an oracle of hashlib and plain reads (tests/oracles.py),
over every byte, holes included, on the shapes a disk can take."""

from __future__ import annotations

import hashlib
import os

import pytest

from rel_eng.digest import BlockDigest, file_digest, raw_digest
from tests.oracles import MIB, block_sha256, block_sha256_of, sha256


def _sparse(path, size, pieces):
    """A file of `size` bytes with `pieces` [(offset, bytes)] written and holes elsewhere."""
    with open(path, "wb") as fh:
        fh.truncate(size)
        for offset, data in pieces:
            fh.seek(offset)
            fh.write(data)
    return path


def _bytes_of(size, pieces):
    buf = bytearray(size)
    for offset, data in pieces:
        buf[offset:offset + len(data)] = data
    return bytes(buf)


RND = os.urandom(3 * MIB)

SHAPES = {
    # size not a multiple of 1 MiB: the last block is hashed as long as it is
    "ragged-tail": (5 * MIB + 12345, [(0, RND[:4096]), (5 * MIB, RND[:12345])]),
    # a hole from the middle of block 0 to the middle of block 1, data on both sides
    "hole-straddles-boundary": (3 * MIB, [(0, RND[:MIB // 2]), (MIB + MIB // 2, RND[:MIB + MIB // 2])]),
    # data that straddles a boundary, holes around it
    "data-straddles-boundary": (4 * MIB, [(2 * MIB - 8192, RND[:16384])]),
    "all-zero-holes": (7 * MIB + 1, []),
    "all-zero-written": (3 * MIB, [(0, bytes(3 * MIB))]),
    "zero-bytes": (0, []),
    "one-byte": (1, [(0, b"\x01")]),
    "exactly-one-block": (MIB, [(0, RND[:MIB])]),
    "ragged-tail-in-a-hole": (2 * MIB + 7, [(0, RND[:100])]),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_block_digest_is_the_definition_over_every_byte(tmp_path, shape):
    size, pieces = SHAPES[shape]
    path = _sparse(tmp_path / "disk.raw", size, pieces)
    data = _bytes_of(size, pieces)
    expected = block_sha256_of(data)
    assert block_sha256(path) == expected  # the two oracles agree with each other
    assert raw_digest(path) == expected
    assert file_digest(path, "blocks") == expected
    assert file_digest(path) == hashlib.sha256(data).hexdigest() == sha256(path)


def test_known_values_of_the_definition():
    # written out once more by hand: nothing here calls a helper
    assert block_sha256_of(b"") == hashlib.sha256(b"").hexdigest()
    one = hashlib.sha256(b"x").digest()
    assert block_sha256_of(b"x") == hashlib.sha256(one).hexdigest()
    z = hashlib.sha256(bytes(MIB)).digest()
    tail = hashlib.sha256(b"\0\0\0").digest()
    assert block_sha256_of(bytes(MIB + 3)) == hashlib.sha256(z + tail).hexdigest()


RUNS = [("data", 100), ("zeros", MIB - 100 + 50), ("data", MIB + 7), ("zeros", 3 * MIB),
        ("data", 5), ("zeros", MIB - 5), ("zeros", 17)]


@pytest.mark.parametrize("chunk", [None, 4095, 333_333, 2 * MIB + 1])
def test_the_streaming_digest_matches_however_it_is_fed(chunk):
    """BlockDigest is fed by downloads and uploads in runs that never line up with blocks: data
    through update(), holes through update_zeros(), each run cut into `chunk`-sized pieces."""
    data = b"".join(RND[:n] if kind == "data" else bytes(n) for kind, n in RUNS)
    d = BlockDigest()
    for kind, n in RUNS:
        step = chunk or n
        for i in range(0, n, step):
            k = min(step, n - i)
            d.update(RND[i:i + k]) if kind == "data" else d.update_zeros(k)
    assert d.size == len(data)
    assert d.hexdigest() == block_sha256_of(data)
