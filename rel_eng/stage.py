"""Atomic staging of a finished compose into the mirror tree.

The drop is assembled in a hidden sibling directory on the same filesystem, every file is
verified against its recorded digest while it is copied and read back after, or hardlinked from
an earlier drop whose images.json records the same digest and whose file re-hashes to it now.
Paths from an earlier drop's metadata must stay inside that drop, and the mirror path is walked
without following symlinks. Permissions are made world-readable, and only then one rename makes
it visible.
A mirror reader sees either no drop or a complete one. Weeklies also get an atomically swapped
`latest` link and keep the newest N drops.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat as statmod
import time
from dataclasses import dataclass
from pathlib import Path

from productmd.images import Images

from rel_eng import drop_manifest
from rel_eng.atomic import atomic_symlink, atomic_write, exchange_dirs, fsync_dir, leftover_tag
from rel_eng.digest import sha256_file
from rel_eng.errors import Conflict, InputError, RelEngError
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


def inside(drop: Path, rel: object) -> Path | None:
    """`drop/rel` when `rel` is a plain relative path that stays inside `drop` once every
    symlink is resolved and names a regular file; None for anything else (absolute paths,
    `..`, symlinks out of the drop, directories, devices)."""
    if not isinstance(rel, str) or not rel or "\0" in rel or os.path.isabs(rel):
        return None
    parts = Path(rel).parts
    if ".." in parts or "." in parts:
        return None
    path = drop / rel
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(drop.resolve(strict=True)):
            return None
        if not statmod.S_ISREG(os.lstat(path).st_mode):  # the file itself is no symlink
            return None
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    return path


def _known_digests(drop: Path) -> dict[tuple[str, int], Path]:
    """(sha256, size) -> file, from an earlier drop's images.json; only files inside the drop."""
    meta = drop / "metadata" / "images.json"
    if inside(drop, "metadata/images.json") is None:
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
                path = inside(drop, img.path)
                sha = img.checksums.get("sha256")
                if sha and path is not None:
                    out[(sha, img.size)] = path
    return out


def _copy_verified(f: StageFile, dst: Path) -> str:
    """Copy, checking the bytes read against the recorded digest and the copy against them;
    returns the sha256."""
    digest = hashlib.sha256()
    with open(f.src, "rb") as src, open(dst, "wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    read = digest.hexdigest()
    if f.sha256 and read != f.sha256:
        raise StagingError(f"{f.src}: sha256 changed since it was recorded ({read}, expected "
                           f"{f.sha256}); not staging it")
    if f.sha256 and os.path.getsize(dst) != f.size:
        raise StagingError(f"{f.src}: {os.path.getsize(dst)} bytes, {f.size} recorded; not "
                           "staging it")
    written = sha256_file(dst)
    if written != read:
        raise StagingError(f"{dst}: the copy of {f.src} reads back as sha256 {written}, "
                           f"expected {read}; not staging it", hint="check the mirror's disk")
    return read


def _link_verified(f: StageFile, same: Path, dst: Path) -> bool:
    """Hardlink an earlier drop's file when it still holds the recorded bytes: the link is made
    first and the linked inode re-hashed, so what was checked is what is staged."""
    try:
        os.link(same, dst, follow_symlinks=False)
    except OSError:  # another filesystem, or gone since: copy instead
        return False
    st = os.lstat(dst)
    if statmod.S_ISREG(st.st_mode) and st.st_size == f.size and sha256_file(dst) == f.sha256:
        return True
    dst.unlink()
    return False


def _previous_drops(parent: Path, exclude: str) -> list[Path]:
    if not parent.is_dir():
        return []
    drops = [p for p in parent.iterdir()
             if p.is_dir() and not p.name.startswith(".") and not p.is_symlink() and p.name != exclude]
    return sorted(drops, key=lambda p: p.stat().st_mtime, reverse=True)


def _differs(target: Path, files: list[StageFile]) -> str:
    """Why the existing drop `target` is not these files ("" when it holds them all, by digest)."""
    for f in files:
        p = inside(target, f.rel)
        if p is None:
            return f"{f.rel} is missing (or not a regular file inside the drop)"
        if p.stat().st_size != f.size:
            return f"{f.rel} is {p.stat().st_size} bytes, expected {f.size}"
        want = f.sha256 or sha256_file(f.src)
        have = sha256_file(p)
        if have != want:
            return f"{f.rel} has sha256 {have}, expected {want}"
    return ""


def _mirror_dirs(mirror_root: Path, rel: Path) -> None:
    """Create `rel` under the mirror root one directory at a time, never through a symlink,
    and make each directory it creates world-readable with fchmod on the directory itself
    (chmod by name would follow a symlink planted in the tree). Existing directories keep
    their modes: a shared mirror's setgid, group write and sticky bits are the admins'."""
    root_fd = os.open(mirror_root, os.O_RDONLY | os.O_DIRECTORY)
    fds = [root_fd]
    try:
        here = mirror_root
        for part in rel.parts:
            here = here / part
            try:
                os.mkdir(part, 0o755, dir_fd=fds[-1])
                created = True
            except FileExistsError:
                created = False
            try:
                fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1])
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    kind = "a symlink" if os.path.islink(here) else "not a directory"
                    raise InputError(f"{here} is {kind}; refusing to stage through it",
                                     hint="the mirror path must be plain directories under "
                                          f"{mirror_root}") from None
                raise
            fds.append(fd)
            if created:  # 0755 despite the umask; a setgid parent's bit is inherited as is
                os.fchmod(fd, 0o755 | (os.fstat(fd).st_mode & statmod.S_ISGID))
    finally:
        for fd in fds:
            os.close(fd)


def stage(files: list[StageFile], mirror_root: Path, mirror_path: str,
          weekly_retention: int | None = None, signing=None) -> Path:
    """Publish `files` as `mirror_root/mirror_path`, with its metadata/MANIFEST (clearsigned
    when `signing` is enabled); returns the drop dir. Safe to rerun."""
    parts = Path(mirror_path).parts
    if not parts or os.path.isabs(mirror_path) or ".." in parts or "." in parts:
        raise InputError(f"mirror path {mirror_path!r} would leave the mirror root {mirror_root}",
                         hint="a mirror path is relative, without '.' or '..'")
    if not mirror_root.is_dir():
        try:
            mirror_root.mkdir(parents=True)
            os.chmod(mirror_root, 0o755)  # created here: world-readable whatever the umask
        except FileExistsError:
            pass
    mirror_root = mirror_root.resolve()  # the root may be a link; nothing below it may be
    target = mirror_root / mirror_path
    parent = target.parent
    _mirror_dirs(mirror_root, parent.relative_to(mirror_root))
    if target.is_symlink():
        raise InputError(f"{target} is a symlink; refusing to stage over it",
                         hint="remove it; a drop is a plain directory")
    if target.exists():
        why = _differs(target, files)
        if not why:
            if weekly_retention is not None:  # a crash may have left these behind
                settle_weekly(parent, weekly_retention, current=target.name)
            return target  # a rerun after a crash past the rename: already staged
        raise Conflict(f"{target} already exists in the mirror with different content: {why}",
                       hint="this compose was staged before; start a new respin")
    earlier: dict[tuple[str, int], Path] = {}
    for drop in reversed(_previous_drops(parent, target.name)):
        earlier.update(_known_digests(drop))
    tmp = parent / f".{target.name}.staging-{leftover_tag()}-{int(time.time())}"
    tmp.mkdir(mode=0o700)  # private while it is built: rsync copies dot-dirs too
    try:
        _fill(tmp, files, earlier, signing)
        os.rename(tmp, target)  # the moment the drop appears, complete
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if weekly_retention is not None:
        settle_weekly(parent, weekly_retention, current=target.name)
    return target


def _fill(tmp: Path, files: list[StageFile], earlier: dict[tuple[str, int], Path],
          signing) -> None:
    """Every file into the private `tmp`, verified, then its MANIFEST; made world-readable."""
    entries: dict[str, tuple[int, str]] = {}
    for f in sorted(files, key=lambda f: f.rel):
        if f.rel == drop_manifest.NAME:
            raise StagingError(f"{f.src}: {f.rel} is the drop's own MANIFEST; not staging it")
        dst = tmp / f.rel
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            same = earlier.get((f.sha256, f.size)) if f.sha256 else None
            # unchanged since an earlier drop (by digest, re-hashed now): no copy
            if same is not None and _link_verified(f, same, dst):
                entries[f.rel] = (f.size, f.sha256)
            else:
                entries[f.rel] = (os.path.getsize(f.src), _copy_verified(f, dst))
            os.chmod(dst, 0o644)
        except OSError as exc:
            if exc.filename is None:  # write() errors (a full disk) carry no path
                exc.filename = str(dst)
            raise
    manifest = tmp / drop_manifest.NAME
    manifest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(manifest, drop_manifest.text_for(entries, signing))
    for dirpath, dirnames, _ in os.walk(tmp):
        for d in dirnames:
            os.chmod(Path(dirpath) / d, 0o755)
    os.chmod(tmp, 0o755)
    fsync_dir(tmp)


def restage(files: list[StageFile], drop: Path, signing=None) -> bool:
    """Swap changed small files of the staged `drop` in (a README with the AMI table, ec2.json)
    with a new MANIFEST, all at once: the new drop is built beside it (every unchanged file
    hardlinked from it and re-hashed, the changed ones copied and verified), then the two
    directories are exchanged in one rename. Returns whether anything changed. Images and
    CHECKSUM files never change after staging: a change to one is refused."""
    changed = [f for f in files if _changed(drop, f)]
    if not changed:
        return False
    for f in changed:
        if _immutable(f.rel):
            raise StagingError(f"{drop / f.rel}: an image or CHECKSUM file changed after staging; "
                               "not restaging it", hint="start a new respin")
    names = {f.rel for f in files}
    extra = [r for r in drop_manifest.drop_files(drop) if r not in names]
    if extra:  # the compose no longer lists it: restaging would drop it silently
        raise StagingError(f"{drop / extra[0]}: in the staged drop but not in the compose; not "
                           "restaging", hint=f"run: rel-eng verify {drop}")
    unchanged = {f.rel for f in files} - {f.rel for f in changed}
    earlier = {(f.sha256, f.size): drop / f.rel for f in files if f.rel in unchanged and f.sha256}
    tmp = drop.parent / f".{drop.name}.staging-{leftover_tag()}-{int(time.time())}"
    tmp.mkdir(mode=0o700)
    try:
        _fill(tmp, files, earlier, signing)
        exchange_dirs(tmp, drop)  # readers see the old drop whole, or the new one whole
        fsync_dir(drop.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the old drop, or the unfinished new one
    return True


def _immutable(rel: str) -> bool:
    return rel.endswith(("CHECKSUM", ".qcow2", ".raw.tar.xz", ".raw.xz", "-packages.txt"))


def _changed(drop: Path, f: StageFile) -> bool:
    p = inside(drop, f.rel)
    if p is None or p.stat().st_size != f.size:
        return True
    if _immutable(f.rel) and f.sha256:  # re-hashed when linked into the new drop
        return False
    return sha256_file(p) != (f.sha256 or sha256_file(f.src))


# `<short>-<version>-<YYYYMMDD>[.<type>].<respin>`: a weekly drop's dir is its compose id.
WEEKLY_RE = re.compile(r"^.+-(?P<date>[0-9]{8})(?:\.(?:n|t|ci))?\.(?P<respin>[0-9]+)$")


def weekly_key(name: str) -> tuple[str, int] | None:
    """(compose date, respin) of a weekly drop dir; None for anything else."""
    m = WEEKLY_RE.match(name)
    return (m.group("date"), int(m.group("respin"))) if m else None


def weekly_drops(parent: Path) -> list[Path]:
    """The weekly drops under `parent`, newest first by compose date and respin (never mtime)."""
    if not parent.is_dir():
        return []
    drops = [p for p in parent.iterdir()
             if not p.name.startswith(".") and p.is_dir() and not p.is_symlink()
             and weekly_key(p.name) is not None]
    return sorted(drops, key=lambda p: weekly_key(p.name), reverse=True)


def settle_weekly(parent: Path, keep: int, current: str = "") -> None:
    """`latest` -> the newest drop, and only the newest `keep` drops kept; a no-op when both
    already hold, so a rerun repairs what a crash left behind and changes nothing else.

    `current` (the drop just staged) is never pruned in the run that staged it, even when a
    backfill makes it older than `keep` others: the next weekly's run prunes it.
    """
    drops = weekly_drops(parent)
    if drops:
        _point_latest(parent, drops[0].name)
    _prune(parent, keep=keep, current=current)
    write_stream_files(parent)  # the stream's index, feed and releases.json follow `latest`


def _point_latest(parent: Path, name: str) -> None:
    link = parent / "latest"
    if link.is_symlink() and os.readlink(link) == name:
        return
    atomic_symlink(name, link)  # readers see the old or the new link, never none


def _prune(parent: Path, keep: int, current: str) -> list[str]:
    removed = []
    for old in weekly_drops(parent)[keep:]:
        if old.name == current:
            continue
        # Rename out of sight first so nobody reads a half-deleted drop.
        trash = parent / f".{old.name}.removing-{leftover_tag()}-{int(time.time())}"
        os.rename(old, trash)
        shutil.rmtree(trash)
        removed.append(old.name)
    return removed
