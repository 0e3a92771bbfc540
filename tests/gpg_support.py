"""A throwaway GPG home holding one passphrase-protected signing key, for the tests that sign."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path


@contextlib.contextmanager
def signing_key_home(tmp_path_factory, uid: str, passphrase: str):
    """Yield (home, passphrase_file) with an ed25519 signing key for `uid`; the home's gpg-agent
    is stopped on the way out so none outlives the tests."""
    home: Path = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    pp = home / "passphrase"
    pp.write_text(passphrase)
    try:
        subprocess.run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
                        "--passphrase-file", str(pp), "--quick-gen-key", uid, "ed25519", "sign",
                        "never"], check=True, capture_output=True)
        yield home, pp
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)
