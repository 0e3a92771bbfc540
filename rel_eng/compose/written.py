"""The digest of every small file of a drop (metadata, CHECKSUM, README, download pages),
recorded by the step that writes it, the moment it has written it.

Images carry their digests in the manifest's artifacts from the step that made them; these
files are recorded here, under "written" in work/manifest.json. Staging copies a file only when
its bytes still match that record, so an edit between the step that wrote a file and staging
never reaches the mirror.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from rel_eng.digest import sha256_file
from rel_eng.web import drop_page


def drop_small_files(c) -> list[Path]:
    """The files of the drop that are not images: what a step writes beside them."""
    out = []
    for arch in c.plan.arches():
        for name in ("README", c.plan.checksum_name(arch)):
            out.append(c.images_dir(arch) / name)
    if c.metadir.is_dir():
        out += [p for p in sorted(c.metadir.iterdir()) if not p.name.startswith(".")]
    out += [c.topdir / "work" / "web" / name for name in drop_page.DROP_FILES]
    return out


def _stats(c) -> dict[Path, tuple[int, int, int]]:
    out = {}
    for p in drop_small_files(c):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        out[p] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def record(c, paths: list[Path]) -> None:
    """Hash `paths` now and record them (relative to the compose dir) in the manifest."""
    if not paths:
        return
    sums = {str(p.relative_to(c.topdir)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in paths if p.is_file() and not p.is_symlink()}
    with c.manifest.update() as data:
        data.setdefault("written", {}).update(sums)


@contextlib.contextmanager
def recording(c) -> Iterator[None]:
    """Record every small drop file the block writes (a new inode, size or mtime) as it ends."""
    before = _stats(c)
    yield
    after = _stats(c)
    record(c, [p for p, st in after.items() if before.get(p) != st])


def recorded(c) -> dict[str, dict]:
    """Compose-relative path -> {"size", "sha256"} of every recorded small file."""
    written = c.manifest.read().get("written", {})
    return written if isinstance(written, dict) else {}
