"""The release tree: `<release dir>/<variant>/` built beside its place, verified, then one rename.

The release owns `<variant>/` (Cloud/) only, never the release dir the install trees share. It
holds the candidate's `<arch>/images/` (the drop's `Cloud/<arch>/images/`), its `metadata/` and
its page at the top, `metadata/release.json` (what was released, from which candidate, by whom)
and a new `metadata/MANIFEST` of every file. Files are hardlinked from the staged drop when on one
filesystem (copied otherwise) into a hidden temp dir, and each linked file is hashed once against
the staged MANIFEST; CHECKSUM copies are re-signed as new files, never the staged ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rel_eng import drop_manifest
from rel_eng.atomic import atomic_write, exchange_dirs, fsync_dir, leftover_tag, sweep
from rel_eng.digest import sha256_file
from rel_eng.errors import InputError
from rel_eng.verify import RELEASE_RECORD, gpg_verify, key_fingerprints, signed_body

CHUNK = 1024 * 1024


class NotOurs(InputError):
    """The release's place holds something no release wrote."""


@dataclass(frozen=True)
class TreeFile:
    src: Path  # in the staged drop
    rel: str  # in the release tree
    size: int
    sha256: str


def staged_files(drop: Path, variant: str, gpg_home: str = "", key: str = "") -> list[TreeFile]:
    """The staged drop's files as its MANIFEST lists them (signature checked when signed, by
    `key` when given), mapped to their place in the release tree."""
    path = drop / drop_manifest.NAME
    if not path.is_file() or path.is_symlink():
        raise InputError(f"{path}: missing; {drop} is not a staged drop",
                         hint="release a candidate that was staged (rel-eng verify DROP)")
    text = path.read_text(errors="replace")
    body, problem = signed_body(text)
    if problem:
        raise InputError(f"{path}: {problem}", hint=f"run: rel-eng verify {drop}")
    if text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        why = gpg_verify(path, gpg_home, key_fingerprints(key, gpg_home) if key else None)
        if why:
            raise InputError(f"{path}: {why}", hint=f"run: rel-eng verify {drop}")
    elif key:
        raise InputError(f"{path}: not signed, but [signing] key is set",
                         hint=f"run: rel-eng verify {drop}")
    entries, problems = drop_manifest.parse(body)
    if problems:
        raise InputError(f"{path}: {problems[0]}", hint=f"run: rel-eng verify {drop}")
    prefix = variant + "/"
    return [TreeFile(drop / rel, rel[len(prefix):] if rel.startswith(prefix) else rel, size, sha)
            for rel, (size, sha) in sorted(entries.items())]


def record_of(tree: Path) -> dict | None:
    """The release record of an existing tree; None when the tree is not a release's."""
    path = tree / RELEASE_RECORD
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("compose_id") else None


def owned(tree: Path) -> dict | None:
    """The record of the release at `tree`, None when there is none; NotOurs when `tree` holds
    something else."""
    if not os.path.lexists(tree):
        return None
    rec = record_of(tree) if tree.is_dir() and not tree.is_symlink() else None
    if rec is None:
        raise NotOurs(f"{tree} exists and is not a release of rel-eng (no {RELEASE_RECORD})",
                      hint="move it away by hand if it is stale; the release writes only there")
    return rec


def ensure_parents(mirror_root: Path, rel: Path) -> list[Path]:
    """Create `rel` under the mirror root one plain directory at a time (no symlink followed);
    returns those created, deepest last, so a failed release can take them back."""
    created = []
    here = mirror_root
    for part in rel.parts:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            raise InputError(f"{here} is a symlink or not a directory; refusing to release "
                             "through it", hint=f"the release path must be plain directories "
                                                f"under {mirror_root}")
        if not here.exists():
            here.mkdir(mode=0o755)
            os.chmod(here, 0o755)
            created.append(here)
    return created


def remove_created(created: list[Path]) -> None:
    for d in reversed(created):
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty: another release may have filled it since


def temp_dir(target: Path) -> Path:
    """Beside the target, named so a killed run's leftover is swept (rel_eng.atomic)."""
    return target.with_name(f".{target.name}.staging-{leftover_tag()}-{int(time.time())}")


def sweep_leftovers(parent: Path) -> list[Path]:
    return sweep(parent, recursive=False) if parent.is_dir() else []


def _hash_copy(src: Path, dst: Path) -> str:
    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    os.chmod(dst, 0o644)
    return digest.hexdigest()


def identity(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path, follow_symlinks=False)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def link_or_copy(files: list[TreeFile], tmp: Path, digests: dict[Path, str],
                 seen: dict[Path, tuple]) -> dict[Path, str]:
    """Each file into `tmp`: hardlinked when the link is the very inode the check hashed
    (`digests`, `seen`: its identity then), or copied, hashed on the way and compared. Returns
    path in tmp -> sha256; no file is read twice."""
    known: dict[Path, str] = {}
    for f in files:
        dst = tmp / f.rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f.src, dst, follow_symlinks=False)
            linked = identity(dst) == seen.get(f.src) and f.src in digests
        except OSError:  # another filesystem
            linked = False
        if linked:
            sha = digests[f.src]
        else:
            with contextlib.suppress(FileNotFoundError):
                dst.unlink()
            sha = _hash_copy(f.src, dst)
        size = dst.stat().st_size
        if (size, sha) != (f.size, f.sha256):
            raise InputError(f"{f.src}: {size} bytes, sha256 {sha}; the staged MANIFEST says "
                             f"{f.size} bytes, {f.sha256}", hint=f"the staged drop changed "
                             "while it was released: run rel-eng verify on it")
        known[dst] = sha
    return known


def replace_file(path: Path, text: str) -> None:
    """A new file in place of a hardlink: the staged drop's inode is never written to."""
    path.unlink()
    atomic_write(path, text)


def finish(tmp: Path, record: dict, known: dict[Path, str], signing, mode: int) -> None:
    """Write release.json and the tree's MANIFEST (signed with `signing` when enabled; `known`:
    digests the link step read, so no image is read twice), then the directory modes; `mode`
    is the top dir's (0755, or closed)."""
    atomic_write(tmp / RELEASE_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    entries = {}
    for rel in drop_manifest.drop_files(tmp):
        p = tmp / rel
        entries[rel] = (p.stat().st_size, known.get(p) or sha256_file(p))
    atomic_write(tmp / drop_manifest.NAME, drop_manifest.text_for(entries, signing))
    for dirpath, dirnames, _ in os.walk(tmp):
        for d in dirnames:
            os.chmod(Path(dirpath) / d, 0o755)
    os.chmod(tmp, mode)
    fsync_dir(tmp)


def swap_in(tmp: Path, target: Path, replace: bool) -> Path | None:
    """Make `tmp` the tree at `target` in one rename; with `replace` the two directories are
    exchanged (renameat2 RENAME_EXCHANGE) and the old tree is returned at the temp name."""
    if replace and os.path.lexists(target):
        exchange_dirs(tmp, target)
        fsync_dir(target.parent)
        return tmp
    os.rename(tmp, target)  # fails on an existing non-empty dir: never clobbers
    fsync_dir(target.parent)
    return None


def move_aside(target: Path, aside: Path) -> None:
    """The whole tree out of the mirrors' sight in one rename (--withdraw)."""
    os.rename(target, aside)
    fsync_dir(target.parent)


def withdrawn_path(target: Path, compose_id: str) -> Path:
    """Where --withdraw moves a tree: hidden beside it, never swept, one per candidate."""
    return target.with_name(f".{target.name}.withdrawn-{compose_id}")


def remove_tree(path: Path) -> None:
    """Out of sight first, then deleted, so no reader sees half a tree."""
    if not os.path.lexists(path):
        return
    trash = path.with_name(f".{path.name.lstrip('.')}.removing-{leftover_tag()}-{int(time.time())}")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)
