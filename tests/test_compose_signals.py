"""SIGTERM and SIGINT at any step of a real `rel-eng compose` process: exit 128 + the signal (130
for SIGINT, 143 for SIGTERM), status TERMINATED,
no temp file or staging dir left behind, and a later --resume finishes. A SIGKILLed run's
leftovers are swept by the --resume."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
LEFTOVER = re.compile(r"(\.part$|\.tmp-|\.staging-|\.removing-|^rel-eng-root-)")

# step -> (function to pause at, before/after, a string its arguments contain)
GATES = {
    "create": ("rel_eng.compose.create:atomic_write", "after", "config.json"),
    "build": ("rel_eng.runner:run", "after", "mkfs.ext4"),
    "process": ("rel_eng.process:to_raw_tar_xz", "before", ""),
    "metadata": ("rel_eng.metadata:write_images", "before", ""),
    "staging": ("rel_eng.stage:_copy_verified", "after", ""),
}


def start_gated(step: str, marker: Path, *args: str) -> subprocess.Popen:
    target, when, match = GATES[step]
    return subprocess.Popen(
        [sys.executable, str(HERE / "gated_cli.py"), target, when, match, str(marker), "--", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(marker: Path, proc: subprocess.Popen) -> None:
    for _ in range(2400):  # bounded: at most 2 minutes of 0.05 s polls
        if marker.exists():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"ended before reaching the gate: rc={proc.returncode}\n{err}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("never reached the gate")


def leftovers(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            found += [Path(dirpath) / n for n in [*dirnames, *filenames] if LEFTOVER.search(n)]
    return found


def rel_eng(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rel_eng", *args], capture_output=True, text=True,
                          timeout=600)


def compose_args(out: Path) -> list[str]:
    return ["compose", "--release", "19", "--milestone", "Alpha", "--date", "2013-04-05",
            "--output", str(out)]


@pytest.mark.parametrize("step,sig", [
    ("create", signal.SIGINT),
    ("build", signal.SIGINT),
    ("process", signal.SIGTERM),
    ("metadata", signal.SIGTERM),
    ("staging", signal.SIGTERM),
])
def test_a_signal_at_any_step_terminates_cleanly_and_resume_finishes(tmp_path, step, sig):
    out = tmp_path / "out"
    marker = tmp_path / "gate"
    proc = start_gated(step, marker, *compose_args(out))
    wait_for(marker, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert leftovers(out) == []
    mirror = out / "mirror"
    assert not (mirror / "alt" / "stage" / "19_Alpha-1.1").exists()  # nothing half-staged
    dirs = sorted(p for p in out.iterdir() if p.name.startswith("Fedora-"))
    if step == "create":  # interrupted while creating: no half-made compose, no respin used up
        assert dirs == []
        return
    assert [d.name for d in dirs] == ["Fedora-Cloud-19-20130405.0"]
    topdir = dirs[0]
    assert (topdir / "STATUS").read_text().strip() == "TERMINATED"

    again = rel_eng("compose", "--resume", str(topdir))
    assert again.returncode == 0, again.stderr
    assert (topdir / "STATUS").read_text().strip() == "FINISHED"
    drop = mirror / "alt" / "stage" / "19_Alpha-1.1"
    checks = sorted(drop.glob("Cloud/*/images/*-CHECKSUM"))
    assert len(checks) == 2
    for check in checks:
        subprocess.run(["sha256sum", "--quiet", "-c", check.name], cwd=check.parent, check=True)
    assert leftovers(out) == []


def test_resume_sweeps_what_a_sigkilled_run_left_behind(tmp_path):
    out = tmp_path / "out"
    marker = tmp_path / "gate"
    proc = start_gated("staging", marker, *compose_args(out))
    wait_for(marker, proc)
    proc.kill()  # SIGKILL: no handler runs, the staging dir and temp files stay
    proc.communicate(timeout=60)
    stage_parent = out / "mirror" / "alt" / "stage"
    left = leftovers(out)
    assert [p for p in left if ".staging-" in p.name]  # what the resume has to deal with
    # A temp file a killed writer left mid-write in the compose dir.
    topdir = out / "Fedora-Cloud-19-20130405.0"
    stray = topdir / "compose" / "metadata" / f".images.json.tmp-{proc.pid}-dead"
    stray.write_text("half")

    again = rel_eng("compose", "--resume", str(topdir))
    assert again.returncode == 0, again.stderr
    assert (topdir / "STATUS").read_text().strip() == "FINISHED"
    assert leftovers(out) == []
    assert sorted(p.name for p in stage_parent.iterdir()) == ["19_Alpha-1.1"]
