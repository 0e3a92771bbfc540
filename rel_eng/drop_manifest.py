"""metadata/MANIFEST: every file of a staged drop with its size and sha256, clearsigned when
signing is configured. Staging writes it into the drop before the drop appears; a later rewrite
of a file (EC2 publishing, the AMI table in the README) restages the drop with a new MANIFEST in
one directory exchange, so a file and the MANIFEST never disagree. `rel-eng verify` checks every
file of the drop against it, and that it lists no more and no less than the drop holds.

The format is the CHECKSUM files' (`sha256sum -c` reads it), with paths relative to the drop.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

NAME = "metadata/MANIFEST"
_SIZE_LINE = re.compile(r"^# (?P<path>[^\s].*): (?P<size>\d+) bytes$")
_SUM_LINE = re.compile(r"^SHA256 \((?P<path>.+)\) = (?P<hex>[0-9a-f]{64})$")


def render(entries: dict[str, tuple[int, str]]) -> str:
    lines = [f"# rel-eng drop manifest: every file of the drop but {NAME}"]
    for path in sorted(entries):
        size, sha = entries[path]
        lines += [f"# {path}: {size} bytes", f"SHA256 ({path}) = {sha}"]
    return "\n".join(lines) + "\n"


def parse(body: str) -> tuple[dict[str, tuple[int, str]], list[str]]:
    """(path -> (size, sha256), problems) of a MANIFEST's (signed) body."""
    sizes: dict[str, int] = {}
    sums: dict[str, str] = {}
    problems = []
    for n, line in enumerate(body.splitlines(), 1):
        if not line.strip() or n == 1 and line.startswith("# rel-eng drop manifest"):
            continue
        if m := _SIZE_LINE.match(line):
            sizes[m["path"]] = int(m["size"])
        elif m := _SUM_LINE.match(line):
            sums[m["path"]] = m["hex"]
        else:
            problems.append(f"line {n}: not a MANIFEST entry")
    for path in sorted(set(sizes) ^ set(sums)):
        problems.append(f"{path}: a size without a SHA256 line, or the other way round")
    return {p: (sizes[p], sums[p]) for p in sums if p in sizes}, problems


def text_for(entries: dict[str, tuple[int, str]], signing) -> str:
    text = render(entries)
    if signing is not None and signing.enabled:
        from rel_eng.checksums import clearsign

        text = clearsign(text, signing)
    return text


def drop_files(drop: Path) -> list[str]:
    """Every path under `drop` (files, symlinks, anything but directories), MANIFEST excluded."""
    out = []
    for dirpath, dirnames, filenames in os.walk(drop):
        d = Path(dirpath)
        names = filenames + [n for n in dirnames if (d / n).is_symlink()]
        out += [str((d / n).relative_to(drop)) for n in names]
    return sorted(p for p in out if p != NAME)
