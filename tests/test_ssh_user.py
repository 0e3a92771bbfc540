"""The ssh user ([compose] default_user, `boot-test --user`): a POSIX user name, passed to ssh
with `-l USER` and `--` before the host, so no value can become an ssh option."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import write  # noqa: E402
from rel_eng.boottest import sshclient  # noqa: E402
from rel_eng.config import load_config  # noqa: E402
from rel_eng.errors import ConfigError  # noqa: E402
from rel_eng.naming import user_name_problem  # noqa: E402

HOSTILE = ["-oProxyCommand=touch /tmp/pwned", "-F/etc/passwd", "fedora@evil.example.org",
           "fedora 127.0.0.2", "fedora\nruncmd: [reboot]", "root;id", "", "-", ".hidden",
           "9lives", "a" * 33, "fe\x1b[2Jdora", "fédora", "$(id)", "fedora/../root"]
GOOD = ["fedora", "ec2-user", "cloud_user", "_svc", "a" * 32, "Admin.1"]


@pytest.mark.parametrize("name", GOOD)
def test_posix_user_names_pass(name):
    assert user_name_problem(name) is None


@pytest.mark.parametrize("name", HOSTILE)
def test_config_refuses_a_default_user_that_is_not_a_posix_user_name(tmp_path, name):
    assert user_name_problem(name)
    cfg = write(tmp_path / "rel-eng.toml", f"[compose]\ndefault_user = {_toml(name)}\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    [problem] = err.value.problems
    assert f"{cfg}: compose.default_user: " in problem
    # A control character is refused by the rule for every config string, before the name rule.
    controls = any(ord(ch) < 32 for ch in name)
    expected = "contains a control character" if controls else "POSIX user name"
    assert expected in problem
    assert "\n" not in problem
    assert "\x1b" not in problem


def _toml(s: str) -> str:
    import json
    return json.dumps(s)  # a TOML basic string is JSON's string syntax for these


@pytest.mark.parametrize("name", HOSTILE[:4])
def test_boot_test_refuses_a_hostile_user_before_anything_boots(tmp_path, name):
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"not looked at")
    proc = subprocess.run([sys.executable, "-m", "rel_eng", "boot-test", str(disk), f"--user={name}",
                           "--logs", str(tmp_path / "logs")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("rel-eng: error: --user: ") and "POSIX user name" in line
    assert not (tmp_path / "logs").exists() and not Path("/tmp/pwned").exists()


def _resolved(argv: list[str]) -> tuple[int, dict[str, str], str]:
    """What the real ssh makes of an argv (-G: print the resolved config, connect nowhere)."""
    proc = subprocess.run([argv[0], "-G", *argv[1:]], capture_output=True, text=True, timeout=30)
    config = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    return proc.returncode, config, proc.stderr


@pytest.mark.parametrize("user", ["-oProxyCommand=touch_pwned", "-F/dev/null", "-p2223",
                                  "fedora"])
def test_the_ssh_argv_gives_the_user_with_l_and_ends_the_options_before_the_host(tmp_path, user):
    """Even a value that slipped past validation stays a user name, never an option: ssh
    refuses it as a user name, or uses it as one."""
    argv = sshclient.argv(tmp_path / "key", tmp_path / "known_hosts", 2222, user, "true")
    assert argv[argv.index("-l") + 1] == user and argv[argv.index("--") + 1] == "127.0.0.1"
    code, config, err = _resolved(argv)
    if code == 0:
        assert config["user"] == user and config["hostname"] == "127.0.0.1"
        assert config["port"] == "2222"
    else:
        assert "username contains invalid characters" in err, err
    assert "proxycommand" not in config
    # The form it replaces turned the same value into an option:
    if user.startswith("-o"):
        _, old, _ = _resolved(["ssh", "-p", "2222", f"{user}@127.0.0.1", "true"])
        assert old.get("proxycommand") == "touch_pwned@127.0.0.1"
