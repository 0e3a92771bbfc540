"""CHECKSUM files clearsigned with a real gpg key; the passphrase never reaches the output."""

import dataclasses
import subprocess

import pytest

from rel_eng.compose import run_compose
from rel_eng.config import Signing
from rel_eng.progress import Progress

from conftest import ALPHA_DATE
from gpg_support import signing_key_home

PASSPHRASE = "correct-horse-battery-staple-7f3a"


@pytest.fixture(scope="module")
def gpg_home(tmp_path_factory):
    uid = "rel-eng test signing <signing@example.org>"
    with signing_key_home(tmp_path_factory, uid, PASSPHRASE) as key:
        yield key


def test_checksums_are_clearsigned_and_verify(tmp_path, config, gpg_home, caplog, capfd):
    home, pp = gpg_home
    cfg = dataclasses.replace(config, signing=Signing(key="signing@example.org", gpg_home=str(home),
                                                      passphrase_file=str(pp)))
    caplog.set_level("DEBUG")
    c = run_compose(cfg, tmp_path, "19", "Alpha", ALPHA_DATE, progress=Progress(False))
    for arch in ("i686", "x86_64"):
        d = c.images_dir(arch)
        name = c.plan.checksum_name(arch)
        text = (d / name).read_text()
        assert text.startswith("-----BEGIN PGP SIGNED MESSAGE-----")
        subprocess.run(["gpg", "--homedir", str(home), "--verify", name], cwd=d, check=True,
                       capture_output=True)
        subprocess.run(["sha256sum", "-c", name], cwd=d, check=True, capture_output=True)
        assert "gpg --verify" in (d / "README").read_text()
    captured = capfd.readouterr()
    everything = captured.out + captured.err + caplog.text
    searched = [f for f in tmp_path.rglob("*") if f.is_file() and f.stat().st_size < 1 << 20]
    assert len(searched) > 20, searched  # the compose's metadata, logs, CHECKSUMs, the drop
    for f in searched:
        everything += f.read_bytes().decode("latin-1")
    assert PASSPHRASE not in everything
