"""The packages a kickstart's %packages names explicitly, and those it excludes (`-name`)."""

from __future__ import annotations

from pathlib import Path

from pykickstart.errors import KickstartError
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion

from rel_eng.errors import InputError


def packages(path: Path, ksversion: str | None = None) -> tuple[list[str], list[str]]:
    if not path.is_file():
        raise InputError(f"{path}: kickstart not found")
    handler = makeVersion(ksversion) if ksversion else makeVersion()
    parser = KickstartParser(handler, errorsAreFatal=True)
    try:
        parser.readKickstart(str(path))
    except KickstartError as exc:
        msg = " ".join(str(exc).split())
        raise InputError(f"{path}: invalid kickstart: {msg}") from None
    pk = handler.packages
    # Globs name no particular package; groups are resolved by the installer, not checked here.
    wanted = [p for p in pk.packageList if not any(ch in p for ch in "*?[")]
    excluded = [p for p in pk.excludedList if not any(ch in p for ch in "*?[")]
    return wanted, excluded
