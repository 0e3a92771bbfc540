"""A release's CHECKSUM copies re-signed with the release key, or taken signed from elsewhere
(--signed-checksums); the staged files keep the compose key's signature, untouched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rel_eng import cli

from gpg_support import signing_key_home

PASSPHRASE = "release key passphrase"
BETA = "fedora/linux/releases/test/19_Beta/Cloud"
STAGED = "alt/stage/19_Beta-1.1/Cloud/x86_64/images"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """One gpg home: the compose key and the release key."""
    with signing_key_home(tmp_path_factory, "compose <compose@example.org>", PASSPHRASE) as (home, pp):
        subprocess.run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
                        "--passphrase-file", str(pp), "--quick-gen-key",
                        "release <release@example.org>", "ed25519", "sign", "never"],
                       check=True, capture_output=True)
        yield home, pp


def _config(path: Path, home: Path, pp: Path, release_key: str) -> Path:
    path.write_text(f'[signing]\nkey = "compose@example.org"\ngpg_home = "{home}"\n'
                    f'passphrase_file = "{pp}"\nrelease_key = "{release_key}"\n')
    return path


def _signed_beta(tmp_path: Path, home: Path, pp: Path) -> tuple[Path, Path]:
    """A config with a release key, and a 19 Beta composed and staged with it: (config, output)."""
    cfg = _config(tmp_path / "rel-eng.toml", home, pp, "release@example.org")
    out = tmp_path / "out"
    assert cli.main(["compose", "--release", "19", "--milestone", "Beta", "--date", "2013-04-05",
                     "--config", str(cfg), "--output", str(out)]) == 0
    return cfg, out


def _verify_out(path: Path, home: Path) -> str:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--verify", str(path)],
                          capture_output=True, text=True).stderr


def test_release_key_resigns_copies_and_signed_checksums_are_checked(tmp_path, keys, capsys):
    home, pp = keys
    cfg, out = _signed_beta(tmp_path, home, pp)
    capsys.readouterr()
    staged = sorted((out / "mirror" / STAGED).glob("*CHECKSUM"))
    assert len(staged) == 1
    before = staged[0].read_bytes()

    # a key gpg cannot sign with: refused before anything is written
    bad = _config(tmp_path / "bad.toml", home, pp, "nobody@example.org")
    assert cli.main(["release", "Beta-1.1", "--allow-unverified", "--config", str(bad),
                     "--output", str(out)]) == 2
    assert "signing.release_key" in capsys.readouterr().err
    assert not (out / "mirror" / "fedora").exists()

    # --signed-checksums signed by the wrong key: refused, the file named
    wrong = _signed_by(out, tmp_path / "wrong", home, pp, "compose@example.org")
    assert cli.main(["release", "Beta-1.1", "--allow-unverified", "--config", str(cfg),
                     "--output", str(out), "--signed-checksums", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert f"{wrong / 'Fedora-Cloud-19_Beta-1.1-i686-CHECKSUM'}: " in err and "release_key" in err
    assert not (out / "mirror" / "fedora").exists()

    assert cli.main(["release", "Beta-1.1", "--allow-unverified", "--config", str(cfg),
                     "--output", str(out)]) == 0
    capsys.readouterr()
    released = out / "mirror" / BETA / "x86_64/images" / staged[0].name
    assert "release <release@example.org>" in _verify_out(released, home)
    assert "compose <compose@example.org>" in _verify_out(staged[0], home)
    assert staged[0].read_bytes() == before
    assert released.stat().st_ino != staged[0].stat().st_ino
    assert cli.main(["verify", str(out / "mirror" / BETA), "--config", str(cfg)]) == 0
    assert "signature(s)" in capsys.readouterr().out


def _signed_by(out: Path, where: Path, home: Path, pp: Path, key: str) -> Path:
    """The candidate's CHECKSUM texts clearsigned by `key`, as a signing server returns them."""
    where.mkdir()
    for arch in ("i686", "x86_64"):  # non-empty: both arches
        for ck in (out / "mirror" / f"alt/stage/19_Beta-1.1/Cloud/{arch}/images").glob("*CHECKSUM"):
            subprocess.run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode",
                            "loopback", "--passphrase-file", str(pp), "--local-user", key,
                            "--clearsign", "--output", str(where / ck.name), "-"],
                           input=_body(ck), text=True, check=True, capture_output=True)
    return where


def _body(path: Path) -> str:
    from rel_eng.verify import signed_body

    return signed_body(path.read_text())[0]


def test_signed_checksums_from_elsewhere_are_used_as_given(tmp_path, keys, capsys):
    home, pp = keys
    cfg, out = _signed_beta(tmp_path, home, pp)
    signed = _signed_by(out, tmp_path / "signed", home, pp, "release@example.org")
    capsys.readouterr()
    assert cli.main(["release", "Beta-1.1", "--allow-unverified", "--config", str(cfg),
                     "--output", str(out), "--signed-checksums", str(signed)]) == 0
    for given in sorted(signed.iterdir()):  # non-empty: two CHECKSUM files
        arch = "x86_64" if "x86_64" in given.name else "i686"
        assert (out / "mirror" / BETA / arch / "images" / given.name).read_bytes() == \
            given.read_bytes()
    assert cli.main(["verify", str(out / "mirror" / BETA), "--config", str(cfg)]) == 0
