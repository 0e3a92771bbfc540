"""Kickstarts: flattened and validated with pykickstart for the target Fedora version.

Besides syntax, a cloud image kickstart must carry what every cloud needs (cloud-init, growpart,
a serial console, no MAC binding, a locked root); those checks read pykickstart's handler.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pykickstart.errors import KickstartError, KickstartParseError
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion

from rel_eng.errors import InputError
from rel_eng.inputfile import MAX_INPUT_BYTES, InputTooLarge

# A kickstart command or section name; anything else in an "Unknown command" error is a line of
# a file that is no kickstart (say /etc/shadow), and is never echoed.
_COMMAND_NAME = re.compile(r"%?[A-Za-z][A-Za-z0-9_-]{0,40}")

REQUIRED_PACKAGES = ("cloud-init", "cloud-utils-growpart")


@dataclass(frozen=True)
class FlatKickstart:
    source: str
    ksversion: str
    text: str


class _TrackingParser(KickstartParser):
    """Remembers which (possibly %include'd) file was being read when an error was raised, and
    follows an %include only to a file inside `root` (the kickstart dir): pykickstart would read
    any path or URL, and quote its lines in a parse error."""

    def __init__(self, handler, root: Path, **kwargs):
        super().__init__(handler, **kwargs)
        self.root = root.resolve()
        self.reading: list[Path] = []

    def _handleInclude(self, f):  # noqa: N802 (pykickstart's name)
        including = self.reading[-1] if self.reading else self.root
        target, bad = inside(self.root, including.parent, f)
        if bad:
            raise InputError(f"{including}: %include {f}: {bad}",
                             hint="include only files from the kickstart dir")
        seen = [p.resolve() for p in self.reading]
        if target in seen:  # pykickstart would recurse forever
            # the loop alone, so every kickstart that reaches it reports the same one line
            chain = " -> ".join(p.name for p in [*seen[seen.index(target):], target])
            raise InputError(f"{including}: %include {f}: an include loop ({chain})",
                             hint="a kickstart may not include itself, directly or through others")
        return super()._handleInclude(str(target))

    def readKickstart(self, f, reset=True):  # noqa: N802 (pykickstart's name)
        try:
            too_big = os.stat(f).st_size > MAX_INPUT_BYTES
        except OSError:
            too_big = False  # pykickstart says what is wrong with it
        if too_big:
            raise InputTooLarge(f"{f}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB, too "
                                "large for a kickstart", hint="name the right file")
        self.reading.append(Path(f))
        try:
            return super().readKickstart(f, reset=reset)
        except KickstartError as exc:
            if not hasattr(exc, "ks_file"):
                exc.ks_file = f
            raise
        finally:
            self.reading.pop()


def inside(root: Path, base: Path, name: str) -> tuple[Path, str]:
    """(`name` relative to `base`, resolved; what is wrong with it or ""): it must be a file
    inside `root`."""
    if "\0" in name or "://" in name:
        return Path(), f"outside the kickstart dir {root}"
    target = (base / name).resolve()
    if not target.is_relative_to(root.resolve()):
        return target, f"outside the kickstart dir {root}"
    if target.is_dir():
        return target, "is a directory, not a kickstart file"
    if not target.is_file():
        return target, "no such file"
    return target, ""


def flatten(path: Path, ksversion: str, root: Path | None = None) -> FlatKickstart:
    """Parse `path` (resolving %include inside `root`, default its dir) for `ksversion` (e.g.
    F19); raise InputError with file and line."""
    root = (root or path.parent).resolve()
    _, bad = inside(root, Path.cwd(), str(path))
    if bad:
        raise InputError(f"{path}: cannot read kickstart: {bad}",
                         hint="name a file in the kickstart dir")
    try:
        handler = makeVersion(ksversion)
    except KickstartError:
        raise InputError(f"{path}: kickstart version '{ksversion}' is not known to pykickstart",
                         hint="set fedora_version to a released Fedora") from None
    parser = _TrackingParser(handler, root, errorsAreFatal=True)
    try:
        # pykickstart resolves %include relative to the including file's directory.
        parser.readKickstart(str(path))
    except KickstartParseError as exc:
        where = _abs(getattr(exc, "ks_file", path), path.parent)
        line = f":{exc.lineno}" if getattr(exc, "lineno", None) else ""
        msg = " ".join(str(exc.value if hasattr(exc, "value") else exc).split()) or "parse error"
        msg = _unechoed(msg.split("kickstart file: ", 1)[-1])
        raise InputError(f"{where}{line}: invalid kickstart for {ksversion}: {msg}",
                         hint="fix the kickstart and run 'rel-eng validate'") from None
    except KickstartError as exc:
        where = _abs(getattr(exc, "ks_file", path), path.parent)
        msg = _unechoed(" ".join(str(exc).split()).split("kickstart file: ", 1)[-1])
        raise InputError(f"{where}: cannot read kickstart: {msg}") from None
    except RecursionError:  # a chain of distinct includes deeper than Python's stack
        raise InputError(f"{path}: %include chain too deep",
                         hint="flatten the kickstart's includes") from None
    problems = cloud_problems(handler)
    if problems:
        raise InputError(f"{path}: not a usable cloud image kickstart: {'; '.join(problems)}")
    return FlatKickstart(source=str(path), ksversion=ksversion, text=str(handler))


def _abs(f: str | Path, base: Path) -> Path:
    return Path(f)  # an included file is absolute; the top one is as the caller named it


def _unechoed(msg: str) -> str:
    """pykickstart's message, without the line it quotes when that line is no kickstart
    command: a file that is not a kickstart (a secret, say) is never echoed."""
    head, sep, rest = msg.partition("Unknown command: ")
    if not sep:
        return msg
    word = rest.split(" ", 1)[0]
    if _COMMAND_NAME.fullmatch(word):
        return f"{head}Unknown command: {word}"
    return f"{head}not a kickstart command (the line is not shown)"


def cloud_problems(handler) -> list[str]:
    """What a cloud image needs, checked on the parsed handler (OpenStack image guide 2.4)."""
    problems = []
    packages = set(handler.packages.packageList)
    for pkg in REQUIRED_PACKAGES:
        if pkg not in packages:
            problems.append(f"%packages lacks {pkg}")
    if "cloud-init" not in (handler.services.enabled or []):
        problems.append("services --enabled lacks cloud-init")
    if "console=ttyS0" not in (handler.bootloader.appendLine or ""):
        problems.append("bootloader --append lacks console=ttyS0 (serial console log)")
    if not handler.rootpw.lock:
        problems.append("rootpw must be --lock (login is by ssh key)")
    for net in handler.network.network:
        device = (net.device or "").lower()
        if ":" in device or getattr(net, "bindto", None) == "mac":
            problems.append(f"network binds to a MAC address ({net.device})")
    return problems
