"""What validate and compose check before writing anything, against a real gpg and real dirs."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rel_eng import preflight
from rel_eng.config import Signing
from tests.tmpfs_ns import in_readonly_tmpfs

KEY = "preflight@example.org"
PASSPHRASE = "preflight-passphrase-93c1"


@pytest.fixture(scope="module")
def gpg_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    pp = home.parent / "pp-right"
    pp.write_text(PASSPHRASE)
    subprocess.run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
                    "--passphrase-file", str(pp), "--quick-gen-key", KEY, "ed25519", "sign",
                    "never"], check=True, capture_output=True)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)
    yield home, pp
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)


def signed(config, **kw):
    return dataclasses.replace(config, signing=Signing(**kw))


def test_a_usable_key_and_dirs_pass(config, gpg_home, tmp_path):
    home, pp = gpg_home
    cfg = signed(config, key=KEY, gpg_home=str(home), passphrase_file=str(pp))
    assert preflight.problems(cfg, output=tmp_path / "new" / "out", mirror=None) == []
    assert list(tmp_path.iterdir()) == []  # only looked


def test_wrong_passphrase_missing_key_and_missing_home(config, gpg_home, tmp_path):
    home, _ = gpg_home
    # gpg-agent caches a passphrase once used (a compose would then sign too): start afresh.
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)
    wrong = tmp_path / "wrong"
    wrong.write_text("not it")
    cfg = signed(config, key=KEY, gpg_home=str(home), passphrase_file=str(wrong))
    (line,) = preflight.problems(cfg, output=None, mirror=None)
    assert "signing.passphrase_file: gpg cannot unlock key" in line and "not it" not in line
    cfg = signed(config, key="nobody@example.org", gpg_home=str(home))
    (line,) = preflight.problems(cfg, output=None, mirror=None)
    assert "signing.key: gpg has no secret key 'nobody@example.org'" in line
    cfg = signed(config, key=KEY, gpg_home=str(tmp_path / "nope"))
    (line,) = preflight.problems(cfg, output=None, mirror=None)
    assert f"signing.gpg_home: {tmp_path / 'nope'} is not a directory" in line


def test_output_and_mirror_that_are_files(config, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    assert preflight.problems(config, output=f, mirror=None) == [
        f"--output {f}: is a file, not a directory (name a directory)"]
    assert preflight.problems(config, output=tmp_path, mirror=f / "m") == [
        f"--mirror {f / 'm'}: {f} is a file, not a directory (name a directory)"]


def test_a_read_only_output_is_refused(config, tmp_path):
    """On a read-only filesystem (root ignores permission bits, not that), checked in a user and
    mount namespace where `ro` is a read-only tmpfs."""
    ro = tmp_path / "ro"
    code = ("import json, sys; from pathlib import Path; from rel_eng import preflight; "
            "from rel_eng.config import load_config; "
            "print(json.dumps(preflight.problems(load_config(), output=Path(sys.argv[1]), "
            "mirror=None)))")
    proc = subprocess.run(in_readonly_tmpfs(ro, [sys.executable, "-c", code, str(ro / "out")]),
                          capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    (line,) = json.loads(proc.stdout)
    assert line.startswith(f"--output {ro / 'out'}: {ro} is not writable")
    assert list(ro.iterdir()) == []


def test_a_missing_koji_profile(config, tmp_path):
    cfg = dataclasses.replace(config, koji=dataclasses.replace(
        config.koji, profile="nosuch", config_file=str(tmp_path / "koji.conf")))
    (line,) = preflight.problems(cfg, output=None, mirror=None, builder="koji")
    assert "koji profile 'nosuch'" in line
