"""`[signing]`: the gpg key that clearsigns CHECKSUM files (rel_eng.checksums)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rel_eng.config.table import Section, setting


def _dir(path: str) -> str | None:
    return f"{path} is not a directory" if path and not Path(path).is_dir() else None


def _file(path: str) -> str | None:
    return f"{path} is not a file" if path and not Path(path).is_file() else None


@dataclass(frozen=True)
class Signing(Section):
    key: str = setting("", "gpg key id; empty means unsigned")
    gpg_home: str = setting("", "GNUPGHOME holding the key; empty = gpg's default", valid=_dir)
    passphrase_file: str = setting("", "a file holding the passphrase (a path, never the secret "
                                   "itself)", valid=_file)
    release_key: str = setting("", "gpg key id that re-signs a release's CHECKSUM copies "
                               "(rel-eng release); empty: they keep the compose key's signature")

    @property
    def enabled(self) -> bool:
        return bool(self.key)
