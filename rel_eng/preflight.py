"""What `rel-eng validate` and `rel-eng compose` can know before a build: the places a compose
writes (output dir, mirror), the signing key, the koji profile. Each check only looks; nothing
is created, so a refusal leaves no trace."""

from __future__ import annotations

import os
import stat as statmod
from pathlib import Path

from rel_eng.config import Config, Problems
from rel_eng.errors import InputError


def problems(config: Config, *, output: Path | None, mirror: Path | None,
             builder: str | None = None, output_flag: str = "--output",
             mirror_flag: str = "--mirror",
             drops: list[tuple[str, str | None]] | None = None) -> list[str]:
    """Every problem found, one line each; an empty list means go. `drops` (release key,
    milestone or None for a weekly) are the drops whose place in the mirror is checked; None
    means every drop the releases can have."""
    found = Problems()  # each line names its own flag, file or key
    if output is not None:
        found.extend(writable_dir(output, output_flag))
        if mirror is None and not found:
            mirror = output / "mirror"
    if mirror is not None:
        bad = writable_dir(mirror, mirror_flag)
        found.extend(bad)
        if not bad:
            found.extend(mirror_tree_problems(config, mirror, drops, mirror_flag))
    if config.signing.enabled:
        from rel_eng import runner
        from rel_eng.checksums import signing_problem

        runner.require("gpg")
        bad = signing_problem(config.signing, config.source)
        if bad:
            found.line(bad)
    if (builder or config.builder) == "koji":
        from rel_eng.builders.koji_session import read_profile

        try:
            read_profile(config.koji)
        except InputError as exc:
            found.line(str(exc))
    return found.items


def writable_dir(path: Path, flag: str) -> list[str]:
    """`path` is, or can be made as, a directory this process may write in."""
    if "\0" in str(path):
        return [f"{flag} {path!r}: contains a NUL character"]
    if path.exists() and not path.is_dir():
        return [f"{flag} {path}: is a file, not a directory (name a directory)"]
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            return [f"{flag} {path}: {existing} is a dangling symlink"]
        existing = existing.parent
    if not existing.is_dir():
        return [f"{flag} {path}: {existing} is a file, not a directory (name a directory)"]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [f"{flag} {path}: {existing} is not writable (pick a writable directory or fix its "
                "permissions)"]
    return []


def drop_parents(config: Config, drops: list[tuple[str, str | None]] | None) -> dict[str, bool]:
    """The mirror dirs (relative) the drops are staged in -> whether it is a weekly stream dir."""
    from rel_eng.plan import weekly_mirror_path

    if drops is None:
        drops = [(r.key, None) for r in config.releases]
        drops += [(r.key, "Alpha") for r in config.releases if r.has_milestones]
    out: dict[str, bool] = {}
    for key, milestone in drops:
        if milestone:
            out["alt/stage"] = False
        else:
            version = config.release(key).version
            out[str(Path(weekly_mirror_path(version, "x")).parent)] = True
    return out


def mirror_tree_problems(config: Config, mirror: Path,
                         drops: list[tuple[str, str | None]] | None,
                         flag: str = "--mirror") -> list[str]:
    """Staging walks the mirror without following a symlink and swaps a weekly stream's
    `latest` link: a symlink or a file on the way, or a `latest` that is no symlink, would fail
    it after the builds, so it is found now."""
    found: list[str] = []
    for rel, weekly in drop_parents(config, drops).items():
        here = mirror
        for part in Path(rel).parts:
            here = here / part
            try:
                st = os.lstat(here)
            except FileNotFoundError:
                break  # staging creates the rest
            except OSError as exc:
                found.append(f"{flag} {mirror}: {here}: {exc.strerror}")
                break
            if statmod.S_ISLNK(st.st_mode) or not statmod.S_ISDIR(st.st_mode):
                kind = "a symlink" if statmod.S_ISLNK(st.st_mode) else "not a directory"
                found.append(f"{flag} {mirror}: {here} is {kind}; staging goes only through "
                             "plain directories (replace it with a directory)")
                break
        else:
            latest = here / "latest"
            if weekly and (latest.exists() or latest.is_symlink()) and not latest.is_symlink():
                found.append(f"{flag} {mirror}: {latest} is not a symlink; staging points it at "
                             "the newest weekly (remove it)")
    return list(dict.fromkeys(found))
