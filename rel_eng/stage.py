"""Atomic staging of a finished compose into the mirror tree.

The drop is assembled in a hidden sibling directory on the same filesystem, every file is
verified against its recorded digest while it is copied (or hardlinked when an earlier drop holds
the same bytes), permissions are made world-readable, and only then one rename makes it visible.
A mirror reader sees either no drop or a complete one. Weeklies also get an atomically swapped
`latest` link and keep the newest N drops.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from productmd.images import Images

from rel_eng.errors import InputError, RelEngError
from rel_eng.web.stream import write_stream_files

CHUNK = 1024 * 1024


class StagingError(RelEngError):
    pass


@dataclass(frozen=True)
class StageFile:
    src: Path
    rel: str  # path inside the drop
    size: int
    sha256: str = ""  # known for images; other files are small and copied as they are


def _known_digests(drop: Path) -> dict[tuple[str, int], Path]:
    """(sha256, size) -> file, from an earlier drop's images.json."""
    meta = drop / "metadata" / "images.json"
    if not meta.is_file():
        return {}
    images = Images()
    try:
        images.load(str(meta))
    except Exception:  # a damaged old drop just means nothing to link against
        return {}
    out = {}
    for variant in images.images.values():
        for arch_images in variant.values():
            for img in arch_images:
                path = drop / img.path
                sha = img.checksums.get("sha256")
                if sha and path.is_file():
                    out[(sha, img.size)] = path
    return out


def _copy_verified(f: StageFile, dst: Path) -> None:
    digest = hashlib.sha256()
    with open(f.src, "rb") as src, open(dst, "wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if f.sha256 and digest.hexdigest() != f.sha256:
        raise StagingError(f"{f.src}: sha256 changed since it was recorded; not staging it")


def _previous_drops(parent: Path, exclude: str) -> list[Path]:
    if not parent.is_dir():
        return []
    drops = [p for p in parent.iterdir()
             if p.is_dir() and not p.name.startswith(".") and not p.is_symlink() and p.name != exclude]
    return sorted(drops, key=lambda p: p.stat().st_mtime, reverse=True)


def _same_drop(target: Path, files: list[StageFile]) -> bool:
    for f in files:
        p = target / f.rel
        if not p.is_file() or p.stat().st_size != f.size:
            return False
    return True


def stage(files: list[StageFile], mirror_root: Path, mirror_path: str,
          weekly_retention: int | None = None) -> Path:
    """Publish `files` as `mirror_root/mirror_path`; returns the drop dir. Safe to rerun."""
    target = mirror_root / mirror_path
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    rel = parent.relative_to(mirror_root)
    for d in [rel, *rel.parents]:  # the mirror path is world-readable down to the drop
        os.chmod(mirror_root / d, 0o755)
    if target.exists():
        if _same_drop(target, files):
            return target  # a rerun after a crash past the rename: already staged
        raise InputError(f"{target} already exists in the mirror with different content",
                         hint="this compose was staged before; start a new respin")
    earlier: dict[tuple[str, int], Path] = {}
    for drop in reversed(_previous_drops(parent, target.name)):
        earlier.update(_known_digests(drop))
    tmp = parent / f".{target.name}.staging-{os.getpid()}-{int(time.time())}"
    tmp.mkdir(mode=0o755)
    try:
        for f in sorted(files, key=lambda f: f.rel):
            dst = tmp / f.rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            same = earlier.get((f.sha256, f.size)) if f.sha256 else None
            if same is not None:
                os.link(same, dst)  # unchanged since an earlier drop: no copy
            else:
                _copy_verified(f, dst)
            os.chmod(dst, 0o644)
        for dirpath, dirnames, _ in os.walk(tmp):
            for d in dirnames:
                os.chmod(Path(dirpath) / d, 0o755)
        os.chmod(tmp, 0o755)
        _fsync_dir(tmp)
        os.rename(tmp, target)  # the moment the drop appears, complete
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if weekly_retention is not None:
        _point_latest(parent, target.name)
        _prune(parent, keep=weekly_retention, current=target.name)
        write_stream_files(parent)  # the stream's index, feed and releases.json follow `latest`
    return target


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _point_latest(parent: Path, name: str) -> None:
    tmp = parent / f".latest.tmp-{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(name, tmp)
    os.replace(tmp, parent / "latest")  # readers see the old or the new link, never none


def _prune(parent: Path, keep: int, current: str) -> list[str]:
    drops = _previous_drops(parent, exclude="")
    removed = []
    for old in drops[keep:]:
        if old.name == current:
            continue
        # Rename out of sight first so nobody reads a half-deleted drop.
        trash = parent / f".{old.name}.removing-{os.getpid()}"
        os.rename(old, trash)
        shutil.rmtree(trash)
        removed.append(old.name)
    return removed
