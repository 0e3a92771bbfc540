"""Reading an input file with a size cap: `--releases /dev/zero` or a runaway file must be one
line of bad input, never an unbounded read that the kernel ends for memory."""

from __future__ import annotations

from pathlib import Path

from rel_eng.errors import InputError

# Far above any real config, releases file, kickstart or compose record (each a few KiB to a
# few hundred KiB), far below what would strain memory.
MAX_INPUT_BYTES = 16 * 1024 * 1024


class InputTooLarge(InputError):
    pass


def read_capped(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The file's bytes; more than `limit` (a device such as /dev/zero included) is refused.
    OSErrors (missing, a directory, unreadable) pass through for the caller to word."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputTooLarge(f"{path}: larger than {limit // (1024 * 1024)} MiB, too large for an "
                            "input file", hint="name the right file")
    return data
