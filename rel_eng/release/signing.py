"""The release's CHECKSUM copies re-signed with the release key ([signing] release_key), or
taken signed from a signing server (--signed-checksums DIR): checked before any write, and the
staged files are never touched (a re-signed copy is a new file in the release tree)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rel_eng.checksums import clearsign, signing_problem
from rel_eng.errors import InputError
from rel_eng.verify import SIGNED_HEAD, gpg_verify, key_fingerprints, signed_body


def release_signing(signing):
    """The Signing that signs with the release key, or None when none is set."""
    return dataclasses.replace(signing, key=signing.release_key) if signing.release_key else None


def check_can_sign(signing, where: str) -> None:
    rs = release_signing(signing)
    if rs is None:
        return
    why = signing_problem(rs, where)
    if why:
        raise InputError(why.replace("signing.key", "signing.release_key"),
                         hint="or pass --signed-checksums DIR with CHECKSUM files signed elsewhere")


def presigned(directory: Path, checksums: dict[str, Path], signing) -> dict[str, str]:
    """{tree path: text} of the CHECKSUM files in `directory`, each a good signature by the
    release key over exactly the candidate's CHECKSUM text (`checksums`: tree path -> staged
    file). Any other is refused, naming the file."""
    if not signing.release_key:
        raise InputError("--signed-checksums needs [signing] release_key: the key whose "
                         "public half verifies them", hint="set it in the config")
    if not directory.is_dir():
        raise InputError(f"--signed-checksums {directory}: not a directory")
    fps = key_fingerprints(signing.release_key, signing.gpg_home)
    if not fps:
        raise InputError(f"[signing] release_key {signing.release_key!r} is not in the keyring"
                         + (f" {signing.gpg_home}" if signing.gpg_home else ""),
                         hint="import the release key's public half there")
    out = {}
    for rel, staged in sorted(checksums.items()):
        path = directory / staged.name
        if not path.is_file() or path.is_symlink():
            raise InputError(f"{path}: missing; --signed-checksums must hold every CHECKSUM "
                             "file of the candidate")
        text = path.read_text(errors="replace")
        body, problem = signed_body(text)
        if not text.startswith(SIGNED_HEAD) or problem:
            raise InputError(f"{path}: not a clearsigned CHECKSUM file ({problem or 'unsigned'})")
        why = gpg_verify(path, signing.gpg_home, fps)
        if why:
            raise InputError(f"{path}: {why}", hint="it must be signed by [signing] release_key")
        want, _ = signed_body(staged.read_text(errors="replace"))
        if body != want:
            raise InputError(f"{path}: its signed text is not the candidate's {staged.name}",
                             hint="sign the candidate's own CHECKSUM files")
        out[rel] = text
    return out


def resign(text: str, signing) -> str:
    body, _ = signed_body(text)
    return clearsign(body, release_signing(signing))
