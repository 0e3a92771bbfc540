"""Every row of the README's table of exit codes, walked: each code comes out of a real
`rel-eng` process in the situation the row names, and each class the row names carries it."""

from __future__ import annotations

import errno
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_compose_signals import compose_args, start_gated, wait_for

from rel_eng import errors
from rel_eng.config.web import BadBind
from rel_eng.digest import DigestMismatch
from rel_eng.messaging.bodies import DropMismatch

README = Path(__file__).resolve().parent.parent / "README.md"
ROW = re.compile(r"^\| (\d+) \| (.+?) \|(.*?)\|$")


def table() -> dict[int, tuple[str, list[str]]]:
    text = README.read_text()
    section = text[text.index("### Exit codes"):]
    section = section[:section.index("\n\n", section.index("| --- |"))]
    rows = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            rows[int(m.group(1))] = (m.group(2), re.findall(r"`(\w+)`", m.group(3)))
    return rows


def rel_eng(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rel_eng", *args], capture_output=True,
                          text=True, timeout=600)


def one_error(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rel-eng: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture
def drop(alpha_drop, tmp_path):
    c, out = alpha_drop
    copy = tmp_path / "drop"
    shutil.copytree(out / "mirror" / c.plan.mirror_path, copy, symlinks=True)
    return copy


def done(tmp_path, drop):
    return rel_eng("verify", str(drop))


def failed(tmp_path, drop):
    qcow2 = sorted(drop.glob("Cloud/x86_64/images/*.qcow2"))[0]
    data = bytearray(qcow2.read_bytes())
    data[len(data) // 2] ^= 1
    qcow2.write_bytes(bytes(data))
    proc = rel_eng("verify", str(drop))
    assert one_error(proc).endswith("2 problem(s)")
    return proc


def bad_input(tmp_path, drop):
    proc = rel_eng("compose", "--release", "99", "--milestone", "Alpha",
                   "--output", str(tmp_path / "out"))
    assert "release" in one_error(proc)
    assert not (tmp_path / "out").exists()  # nothing written
    return proc


def signalled(sig):
    def run(tmp_path, drop):
        marker = tmp_path / "gate"
        proc = start_gated("build", marker, *compose_args(tmp_path / "out"))
        wait_for(marker, proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
        assert f"by signal {sig.name}" in err and "Traceback" not in err, err
        (topdir,) = (tmp_path / "out").glob("Fedora-*")
        assert (topdir / "STATUS").read_text().strip() == "TERMINATED"
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return run


SITUATIONS = {0: done, 1: failed, 2: bad_input, 130: signalled(signal.SIGINT),
              143: signalled(signal.SIGTERM)}

# One instance of each class a row may name, as the code raises it.
INSTANCES = {
    "RelEngError": errors.RelEngError("a build failed"),
    "Conflict": errors.Conflict("already in the mirror with other content"),
    "WriteFailed": errors.WriteFailed(OSError(errno.ENOSPC, "No space left on device", "/x")),
    "VerifyFailed": errors.VerifyFailed("sha256 differs"),
    "InputError": errors.InputError("unknown release"),
    "ConfigError": errors.ConfigError(["a.toml: signing: expected a table"]),
}


def test_the_table_lists_every_code_once_and_only_these():
    assert sorted(table()) == sorted(SITUATIONS)


@pytest.mark.parametrize("code", sorted(SITUATIONS))
def test_each_code_comes_out_of_a_real_run(code, tmp_path, drop):
    meaning, _ = table()[code]
    proc = SITUATIONS[code](tmp_path, drop)
    assert proc.returncode == code, f"{meaning}: {proc.stderr}"


@pytest.mark.parametrize("code", sorted(SITUATIONS))
def test_each_class_a_row_names_carries_its_code(code):
    _, names = table()[code]
    assert (names == []) == (code == 0), names  # every failure code names its classes
    for name in names:
        if name == "Interrupted":
            sig = signal.Signals(code - 128)
            assert errors.Interrupted("stopped", signum=sig).exit_code == code
        else:
            assert INSTANCES[name].exit_code == code, name
            assert isinstance(INSTANCES[name], getattr(errors, name))


def test_the_exceptions_brought_into_the_tree_carry_the_code_of_their_kind():
    assert BadBind("expected HOST:PORT").exit_code == 2
    assert DigestMismatch("/x", "a" * 64, "b" * 64).exit_code == 1
    assert DropMismatch("/x: missing a").exit_code == 1
    assert isinstance(DropMismatch("x"), errors.VerifyFailed)
    with pytest.raises(errors.InputError, match="not of the form"):
        from rel_eng import naming
        naming.image_version_release("19", "Beta-01.2", "20130405", "production", 0)
