"""What `rel-eng validate` and `rel-eng compose` can know before a build: the places a compose
writes (output dir, mirror), the signing key, the koji profile. Each check only looks; nothing
is created, so a refusal leaves no trace."""

from __future__ import annotations

import os
from pathlib import Path

from rel_eng.config import Config, Problems
from rel_eng.errors import InputError


def problems(config: Config, *, output: Path | None, mirror: Path | None,
             builder: str | None = None, output_flag: str = "--output",
             mirror_flag: str = "--mirror") -> list[str]:
    """Every problem found, one line each; an empty list means go."""
    found = Problems()  # each line names its own flag, file or key
    if output is not None:
        found.extend(writable_dir(output, output_flag))
        if mirror is None and not found:
            mirror = output / "mirror"
    if mirror is not None:
        found.extend(writable_dir(mirror, mirror_flag))
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
