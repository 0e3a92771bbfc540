"""Fedora-format CHECKSUM files (`sha256sum -c` reads them), clearsigned with gpg when configured."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rel_eng import runner
from rel_eng.config import Signing
from rel_eng.errors import CommandFailed


@dataclass(frozen=True)
class Entry:
    filename: str
    size: int
    sha256: str


def checksum_text(entries: list[Entry]) -> str:
    lines = []
    for e in sorted(entries, key=lambda e: e.filename):
        lines.append(f"# {e.filename}: {e.size} bytes")
        lines.append(f"SHA256 ({e.filename}) = {e.sha256}")
    return "\n".join(lines) + "\n"


def clearsign(text: str, signing: Signing, timeout: float | None = None) -> str:
    """Clearsign with the configured key. The passphrase is read by gpg from its file."""
    argv = ["gpg", "--batch", "--yes", "--quiet", "--armor", "--local-user", signing.key]
    if signing.gpg_home:
        argv += ["--homedir", signing.gpg_home]
    if signing.passphrase_file:
        argv += ["--pinentry-mode", "loopback", "--passphrase-file", signing.passphrase_file]
    argv += ["--digest-algo", "SHA256", "--clearsign"]
    return runner.run(argv, input=text.encode(), timeout=timeout).stdout.decode()


def signing_problem(signing: Signing, where: str) -> str | None:
    """Why the configured key cannot sign (no such key, wrong passphrase, no gpg home), found by
    clearsigning a probe the way a compose will; None when it can. `where` names the config."""
    home = signing.gpg_home or os.environ.get("GNUPGHOME") or "~/.gnupg"
    if signing.gpg_home and not os.path.isdir(signing.gpg_home):
        return f"{where}: signing.gpg_home: {signing.gpg_home} is not a directory"
    try:
        clearsign("rel-eng signing check\n", signing, timeout=60)
        return None
    except CommandFailed as exc:
        failure = exc.stderr_tail
    listing = ["gpg", "--batch", "--with-colons", "--list-secret-keys", signing.key]
    if signing.gpg_home:
        listing[1:1] = ["--homedir", signing.gpg_home]
    try:
        runner.run(listing, timeout=60)
    except CommandFailed:
        return (f"{where}: signing.key: gpg has no secret key '{signing.key}' in {home} "
                "(import it there, or fix signing.key / signing.gpg_home)")
    if signing.passphrase_file:
        return (f"{where}: signing.passphrase_file: gpg cannot unlock key '{signing.key}' with "
                f"the passphrase in {signing.passphrase_file} (wrong passphrase?)")
    tail = " ".join(failure.split())[-200:]
    return (f"{where}: signing.key: gpg cannot sign with '{signing.key}': {tail} "
            "(a protected key needs signing.passphrase_file)")
