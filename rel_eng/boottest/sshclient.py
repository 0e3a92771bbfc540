"""ssh into the guest with this run's key, the host key pinned from the console (never TOFU)."""

from __future__ import annotations

import re
from pathlib import Path

from rel_eng import runner
from rel_eng.errors import TimedOut

COMMON = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
          "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=10", "-o", "IdentitiesOnly=yes",
          "-F", "/dev/null"]


def make_key(work: Path) -> tuple[Path, str]:
    key = work / "id_ed25519"
    runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rel-eng-boot-test", "-f", key])
    return key, (work / "id_ed25519.pub").read_text().strip()


def fingerprint(keytype: str, blob: str) -> str | None:
    proc = runner.run(["ssh-keygen", "-l", "-E", "sha256", "-f", "-"],
                      input=f"{keytype} {blob}\n", check=False, text=True)
    m = re.search(r"SHA256:[A-Za-z0-9+/]{43}", proc.stdout)
    return m.group(0) if m else None


def pinned_known_hosts(work: Path, port: int, host_keys, fingerprints) -> tuple[Path, list[str]]:
    """known_hosts holding only the console's keys whose fingerprint the console also printed."""
    lines, pinned = [], []
    for keytype, blob in host_keys:
        fp = fingerprint(keytype, blob)
        if fp and fp in fingerprints:
            lines.append(f"[127.0.0.1]:{port} {keytype} {blob}")
            pinned.append(f"{keytype} {fp}")
    path = work / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    return path, pinned


def argv(key: Path, known_hosts: Path, port: int, user: str, *extra: str,
         verbose: bool = False) -> list[str]:
    """`verbose`: ssh -v, whose stderr also says which methods sshd offers (methods_offered)."""
    return ["ssh", *(["-v"] if verbose else []), *COMMON, "-o", f"UserKnownHostsFile={known_hosts}",
            "-i", str(key), "-p", str(port), "-l", user, "--", "127.0.0.1", *extra]


METHODS_RE = re.compile(r"Authentications that can continue: (\S+)")


def methods_offered(stderr: str) -> list[str] | None:
    """What sshd offered before any credential, from `ssh -v`'s stderr: the client's first
    request is the method "none", which sshd answers with the list (None: never got there)."""
    m = METHODS_RE.search(stderr)
    return m.group(1).split(",") if m else None


def without_debug(stderr: str) -> str:
    """`ssh -v`'s stderr without its debug lines: what a user is shown."""
    return "\n".join(ln for ln in stderr.splitlines() if not ln.startswith("debug"))


def auth_methods(known_hosts: Path, port: int, user: str, timeout: float = 30) -> list[str] | None:
    """The methods the server offers before any credential is given (None: no answer)."""
    cmd = ["ssh", "-v", *COMMON, "-o", f"UserKnownHostsFile={known_hosts}",
           "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive",
           "-p", str(port), "-l", user, "--", "127.0.0.1", "true"]
    try:
        proc = runner.run(cmd, timeout=timeout, check=False, text=True)
    except TimedOut:
        return None
    return methods_offered(proc.stderr)
