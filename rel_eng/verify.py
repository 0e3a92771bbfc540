"""End-to-end check of a compose dir or a staged mirror drop: what a mirror reader would check.

Every image against images.json and its CHECKSUM file (size and sha256), every CHECKSUM entry
against the file it names, clearsigned CHECKSUM files with `gpg --verify`, and no file that the
metadata does not account for. Each problem is one line naming the file; nothing is changed.
"""

from __future__ import annotations

import json
import os
import re
import stat as statmod
from dataclasses import dataclass, field
from pathlib import Path

from productmd.images import Images

from rel_eng import drop_manifest, runner
from rel_eng.config import Signing
from rel_eng.digest import sha256_file
from rel_eng.errors import CommandFailed, InputError, RelEngError
from rel_eng.stage import inside

# Files a drop may hold beside its images and CHECKSUM files.
METADATA_FILES = frozenset({"composeinfo.json", "images.json", "rel-eng.json", "ec2.json", "web.json",
                            "release.json"})
RELEASE_RECORD = "metadata/release.json"  # marks a release tree (rel_eng.release)
IMAGES_DIR_FILES = frozenset({"README"})
NON_IMAGE_SUFFIXES = ("-packages.txt",)  # deliverables productmd has no image type for
SIGNED_HEAD = "-----BEGIN PGP SIGNED MESSAGE-----"
SIG_HEAD = "-----BEGIN PGP SIGNATURE-----"
SIG_TAIL = "-----END PGP SIGNATURE-----"
_SIZE_LINE = re.compile(r"^# (?P<name>[^/\s][^/]*): (?P<size>\d+) bytes$")
_SUM_LINE = re.compile(r"^SHA256 \((?P<name>[^/]+)\) = (?P<hex>[0-9a-f]{64})$")


class DropBroken(RelEngError):
    """The staged drop does not hold what its metadata says."""

    def __init__(self, drop: Path, problems: list[str]):
        self.problems = list(problems)
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(f"{drop}: {len(problems)} problem(s) found by verify: "
                         + "; ".join(problems[:3]) + more,
                         hint=f"run: rel-eng verify {drop}")


@dataclass
class Report:
    root: Path
    problems: list[str] = field(default_factory=list)
    checked: int = 0  # files whose bytes were checked
    digests: dict[Path, str] = field(default_factory=dict)  # the sha256 of each file read
    signatures: int = 0  # good clearsign signatures

    def bad(self, path: Path | str, what: str) -> None:
        self.problems.append(f"{path}: {what}")


def find_root(path: Path) -> Path:
    """The directory holding `metadata/images.json`: a staged drop itself, or a compose dir's
    `compose/`. Anything else is bad input (InputError, exit 2)."""
    if not path.is_dir():
        what = "not a directory" if path.exists() else "no such directory"
        raise InputError(f"{path}: {what}",
                         hint="pass a compose dir (<output>/<compose id>) or a staged mirror drop")
    for root in (path, path / "compose"):
        if (root / "metadata" / "images.json").is_file():
            return root
    raise InputError(f"{path}: not a compose dir or a staged drop (no metadata/images.json "
                     f"and no compose/metadata/images.json)",
                     hint="pass a compose dir (<output>/<compose id>) or a staged mirror drop")


class _Sums:
    """sha256 per file, each file hashed once however many records name it."""

    def __init__(self, known: dict[Path, str] | None = None):
        self._cache: dict[Path, str] = {}
        self._known = dict(known or {})  # digests just read by the caller (a release's link step)

    def __len__(self) -> int:
        return len(self._cache)

    def read(self) -> dict[Path, str]:
        return dict(self._cache)

    def of(self, path: Path) -> str:
        if path not in self._cache:
            self._cache[path] = self._known.pop(path, None) or sha256_file(path)
        return self._cache[path]


def _check_file(rep: Report, sums: _Sums, path: Path | None, shown: str, size: int,
                sha: str, where: str) -> None:
    if path is None:
        rep.bad(shown, f"listed in {where} but missing, not a regular file, or outside the drop")
        return
    try:
        actual_size = path.stat().st_size
        if actual_size != size:
            rep.bad(shown, f"{actual_size} bytes, {where} says {size}")
            return
        actual = sums.of(path)
    except (OSError, RelEngError) as exc:
        rep.bad(shown, f"unreadable: {getattr(exc, 'strerror', None) or exc}")
        return
    if actual != sha:
        rep.bad(shown, f"sha256 {actual}, {where} says {sha}")


def signed_body(text: str) -> tuple[str, str]:
    """(the signed text, problem or "") of a clearsigned message; plain text is returned as is."""
    if not text.startswith(SIGNED_HEAD):
        if SIGNED_HEAD in text or SIG_HEAD in text:
            return "", "text before the signed message"
        return text, ""
    head, _, rest = text.partition("\n\n")  # armor headers ("Hash: SHA256") end at a blank line
    body, sep, tail = rest.partition("\n" + SIG_HEAD)
    if not sep:
        return "", "signed message without a signature block"
    if tail.rstrip("\n").split("\n")[-1] != SIG_TAIL or tail.count(SIG_TAIL) != 1:
        return "", "text after the signature block"
    lines = [line[2:] if line.startswith("- ") else line for line in body.split("\n")]
    return "\n".join(lines) + "\n", ""


def _gpg(gpg_home: str) -> list[str]:
    return ["gpg", "--batch", "--no-auto-key-retrieve"] + (["--homedir", gpg_home] if gpg_home else [])


def key_fingerprints(key: str, gpg_home: str = "") -> set[str]:
    """Fingerprints of `key` (primary and subkeys) in the keyring; empty when it is not there."""
    try:
        out = runner.run(_gpg(gpg_home) + ["--with-colons", "--list-keys", "--", key]).stdout
    except CommandFailed:
        return set()
    return {line.split(":")[9] for line in out.decode(errors="replace").splitlines()
            if line.startswith("fpr:") and len(line.split(":")) > 9}


def gpg_verify(path: Path, gpg_home: str = "", fingerprints: set[str] | None = None) -> str:
    """"" when gpg finds a good signature on the clearsigned `path` (made by one of
    `fingerprints` when given), else why not."""
    try:
        out = runner.run(_gpg(gpg_home) + ["--status-fd", "1", "--verify", str(path)]).stdout
    except CommandFailed as exc:
        return f"gpg --verify failed: {exc.stderr_tail.strip().splitlines()[-1:] or exc}"
    status = out.decode(errors="replace").splitlines()
    valid = [line.split()[2:] for line in status if line.startswith("[GNUPG:] VALIDSIG ")]
    if not valid or not any(line.startswith("[GNUPG:] GOODSIG ") for line in status):
        return "gpg --verify found no good signature"
    if fingerprints is not None and not any(
            fields[0] in fingerprints or fields[-1] in fingerprints for fields in valid):
        return f"signed by {valid[0][-1]}, not by the configured signing key"
    return ""


def _parse_checksum(rep: Report, shown: str, text: str) -> dict[str, tuple[int | None, str]]:
    entries: dict[str, list] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if m := _SIZE_LINE.match(line):
            entries.setdefault(m["name"], [None, ""])[0] = int(m["size"])
        elif m := _SUM_LINE.match(line):
            entries.setdefault(m["name"], [None, ""])[1] = m["hex"]
        else:
            rep.bad(shown, f"line {n}: not a CHECKSUM entry: {line[:80]!r}")
    out = {}
    for name, (size, sha) in entries.items():
        if not sha:
            rep.bad(shown, f"{name}: size line without a SHA256 line")
            continue
        out[name] = (size, sha)
    return out


def verify_tree(path: Path, gpg_home: str = "", require_signed: bool = False,
                key: str = "", known: dict[Path, str] | None = None,
                also_key: str = "") -> Report:
    """Check the compose dir, staged drop or release tree at `path`; InputError when it is
    neither. With `key`, every signature must be by that key. `known`: sha256 of files the
    caller has just read, so that they are not read twice. `also_key`: a second key whose
    signatures count too (a release tree's CHECKSUM files carry the release key's)."""
    root = find_root(path)
    if gpg_home and not Path(gpg_home).is_dir():
        raise InputError(f"gpg home {gpg_home} is not a directory",
                         hint="pass --gpg-home DIR or set [signing] gpg_home to the keyring "
                              "holding the signing key")
    fingerprints = None
    for k in (key, also_key):
        if not k:
            continue
        found = key_fingerprints(k, gpg_home)
        if not found:
            raise InputError(f"signing key {k!r} is not in the keyring"
                             + (f" {gpg_home}" if gpg_home else ""),
                             hint="pass --gpg-home DIR holding it, or --key")
        fingerprints = (fingerprints or set()) | found
    rep = Report(root)
    sums = _Sums(known)
    accounted: set[Path] = set()
    by_dir = _check_images_json(rep, sums, root, accounted)
    _check_pages(rep, sums, root, accounted)
    staged = not (root.name == "compose" and (root.parent / "work" / "plan.json").is_file())
    manifest_rep = Report(root)
    if staged:
        check_drop_manifest(manifest_rep, sums, root, accounted, gpg_home, require_signed,
                            fingerprints)
    _check_checksum_files(rep, sums, root, accounted, by_dir, gpg_home, fingerprints,
                          require_signed)
    _check_strays(rep, root, accounted)
    # One bad file, one line: what the MANIFEST adds about a file already named is left out.
    named = {p.split(": ", 1)[0] for p in rep.problems}
    rep.problems += [p for p in manifest_rep.problems if p.split(": ", 1)[0] not in named]
    rep.signatures += manifest_rep.signatures
    rep.problems.sort()
    rep.checked = len(sums)
    rep.digests = sums.read()
    return rep


def _check_images_json(rep: Report, sums: _Sums, root: Path,
                       accounted: set[Path]) -> dict[Path, dict[str, object]]:
    """Pass 1: every image images.json lists, by size and sha256. Returns dir -> {name: image}."""
    images = Images()
    meta = root / "metadata" / "images.json"
    accounted.add(meta)
    try:
        images.load(str(meta))
    except Exception as exc:  # productmd raises bare ValueErrors, KeyErrors, ...
        rep.bad(meta, f"unreadable ({type(exc).__name__}: {exc})")
        listed = []
    else:
        listed = [img for variant in images.images.values()
                  for arch_images in variant.values() for img in arch_images]
    by_dir: dict[Path, dict[str, object]] = {}
    prefix = release_prefix(root)
    for img in sorted(listed, key=lambda i: str(i.path)):
        p = inside(root, _in_tree(str(img.path), prefix))
        sha = (img.checksums or {}).get("sha256")
        if not sha:
            rep.bad(str(root / str(img.path)), "images.json records no sha256")
        else:
            _check_file(rep, sums, p, str(root / str(img.path)), img.size, sha, "images.json")
        if p is not None:
            accounted.add(p)
            by_dir.setdefault(p.parent, {})[p.name] = img
    return by_dir


def release_prefix(root: Path) -> str | None:
    """In a release tree (`<release dir>/<variant>/`, rel_eng.release) images.json keeps the
    candidate's paths (`Cloud/x86_64/images/...`, relative to the release dir): "Cloud/".
    None for a compose dir or a staged drop."""
    record = root / RELEASE_RECORD
    if record.is_symlink() or not record.is_file():
        return None
    try:
        variant = json.loads(record.read_text()).get("variant")
    except (OSError, ValueError, AttributeError):
        variant = None
    return f"{variant}/" if isinstance(variant, str) and variant else "\0/"


def _in_tree(rel: str, prefix: str | None) -> str:
    if prefix is None:
        return rel
    # a path outside the release's own dir cannot be found in it
    return rel[len(prefix):] if rel.startswith(prefix) else "\0"


def _check_checksum_files(rep: Report, sums: _Sums, root: Path, accounted: set[Path],
                          by_dir: dict[Path, dict[str, object]], gpg_home: str,
                          fingerprints: set[str] | None, require_signed: bool) -> None:
    """Pass 2: each images/ dir's CHECKSUM files (signature, every entry) against the files
    and against images.json."""
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        for name in sorted(filenames):
            if not name.endswith("CHECKSUM") or d.name != "images":
                continue
            ck = d / name
            if ck.is_symlink():
                continue  # reported as a stray below
            accounted.add(ck)
            _check_one_checksum(rep, sums, ck, by_dir, gpg_home, fingerprints, require_signed,
                                accounted)
        if d.name == "images":
            for fname in sorted(by_dir.get(d, {})):
                if not any(n.endswith("CHECKSUM") for n in filenames):
                    rep.bad(d / fname, "no CHECKSUM file beside it")
                    break


def _signed_file_body(rep: Report, path: Path, gpg_home: str, fingerprints: set[str] | None,
                      require_signed: bool) -> str | None:
    """The body of a file that may be clearsigned (a CHECKSUM, the drop MANIFEST), its signature
    checked and counted; None when the file cannot be read or its armour is broken (reported)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        rep.bad(path, f"unreadable: {exc.strerror}")
        return None
    body, problem = signed_body(text)
    if problem:
        rep.bad(path, problem)
        return None
    if text.startswith(SIGNED_HEAD):
        why = gpg_verify(path, gpg_home, fingerprints)
        if why:
            rep.bad(path, why)
        else:
            rep.signatures += 1
    elif require_signed:
        rep.bad(path, "not signed, but signing is configured")
    return body


def _check_one_checksum(rep: Report, sums: _Sums, ck: Path, by_dir: dict[Path, dict[str, object]],
                        gpg_home: str, fingerprints: set[str] | None, require_signed: bool,
                        accounted: set[Path]) -> None:
    d = ck.parent
    body = _signed_file_body(rep, ck, gpg_home, fingerprints, require_signed)
    if body is None:
        return
    entries = _parse_checksum(rep, str(ck), body)
    for fname, (size, sha) in sorted(entries.items()):
        target = inside(d, fname)
        if size is None:
            rep.bad(ck, f"{fname}: SHA256 line without a size line")
            size = target.stat().st_size if target is not None else -1
        _check_file(rep, sums, target, str(d / fname), size, sha, ck.name)
        if target is not None:
            accounted.add(target)
            # Disk images belong in images.json too; a listing beside them (the boot
            # test's <NVRA>-packages.txt) is no image and is vouched for by CHECKSUM alone.
            if fname not in by_dir.get(d, {}) and not fname.endswith(NON_IMAGE_SUFFIXES):
                rep.bad(d / fname, f"in {ck.name} but not in images.json")
    for fname in sorted(by_dir.get(d, {})):
        if fname not in entries:
            rep.bad(d / fname, f"in images.json but not in {ck.name}")


def _check_strays(rep: Report, root: Path, accounted: set[Path]) -> None:
    """Pass 3: anything in the tree that none of the records accounts for."""
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        for name in sorted(dirnames):
            if (d / name).is_symlink():
                rep.bad(d / name, "stray symlink (a drop holds plain files and directories)")
        for name in sorted(filenames):
            p = d / name
            st = os.lstat(p)
            if p in accounted and statmod.S_ISREG(st.st_mode):
                continue
            if statmod.S_ISREG(st.st_mode) and (
                    (d == root / "metadata" and name in METADATA_FILES)
                    or (d.name == "images" and name in IMAGES_DIR_FILES)):
                continue
            kind = "symlink" if statmod.S_ISLNK(st.st_mode) else "file"
            rep.bad(p, f"stray {kind}: not accounted for by images.json, CHECKSUM or README")


def _check_pages(rep: "Report", sums: "_Sums", root: Path, accounted: set[Path]) -> None:
    """The drop's download pages, against the size and sha256 metadata/web.json records."""
    listing = root / "metadata" / "web.json"
    if not listing.is_file() or listing.is_symlink():
        return
    try:
        pages = json.loads(listing.read_text()).get("pages", {})
        records = [(name, int(r["size"]), str(r["sha256"])) for name, r in sorted(pages.items())]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        rep.bad(listing, f"unreadable ({type(exc).__name__}: {exc})")
        return
    # In a compose dir (root = <topdir>/compose) the pages wait in work/web/ until staged.
    in_compose = root.name == "compose" and (root.parent / "work" / "plan.json").is_file()
    home = root.parent / "work" / "web" if in_compose else root
    for name, size, sha in records:
        p = inside(home, name)
        _check_file(rep, sums, p, str(home / name), size, sha, "web.json")
        if p is not None:
            accounted.add(p)


def check_drop_manifest(rep: Report, sums: _Sums, root: Path, accounted: set[Path],
                        gpg_home: str = "", require_signed: bool = False,
                        fingerprints: set[str] | None = None) -> None:
    """A staged drop's metadata/MANIFEST (see drop_manifest): its signature, every file it lists
    by size and sha256, and no file of the drop left out of it."""
    path = root / drop_manifest.NAME
    if path.is_symlink() or not path.is_file():
        rep.bad(path, "missing: a staged drop lists every file in it (restage the drop)")
        return
    accounted.add(path)
    body = _signed_file_body(rep, path, gpg_home, fingerprints, require_signed)
    if body is None:
        return
    entries, problems = drop_manifest.parse(body)
    for p in problems:
        rep.bad(path, p)
    for rel, (size, sha) in sorted(entries.items()):
        target = inside(root, rel)
        # listed is not accounted for: images.json, CHECKSUM and README still must vouch
        _check_file(rep, sums, target, str(root / rel), size, sha, "MANIFEST")
    for rel in drop_manifest.drop_files(root):
        if rel not in entries:
            rep.bad(root / rel, "not listed in metadata/MANIFEST")


def verify_staged(drop: Path, signing: Signing) -> None:
    """The compose's last check on its staged drop: raises DropBroken naming every problem.
    When signing is configured, every CHECKSUM file must carry a good signature by the
    configured key."""
    rep = verify_tree(drop, signing.gpg_home, signing.enabled, signing.key)
    if rep.problems:
        raise DropBroken(drop, rep.problems)
