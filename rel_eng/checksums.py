"""Fedora-format CHECKSUM files (`sha256sum -c` reads them), clearsigned with gpg when configured."""

from __future__ import annotations

from dataclasses import dataclass

from rel_eng import runner
from rel_eng.config import Signing


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


def clearsign(text: str, signing: Signing) -> str:
    """Clearsign with the configured key. The passphrase is read by gpg from its file."""
    argv = ["gpg", "--batch", "--yes", "--quiet", "--armor", "--local-user", signing.key]
    if signing.gpg_home:
        argv += ["--homedir", signing.gpg_home]
    if signing.passphrase_file:
        argv += ["--pinentry-mode", "loopback", "--passphrase-file", signing.passphrase_file]
    argv += ["--digest-algo", "SHA256", "--clearsign"]
    return runner.run(argv, input=text.encode()).stdout.decode()
