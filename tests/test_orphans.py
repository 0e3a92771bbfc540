"""The runner owns its children's lifetime: a compose killed with SIGKILL mid post-processing
takes its qemu-img with it (PR_SET_PDEATHSIG); a child that escaped that (the kernel drops the
death signal when a child execs a set-user-ID program) is still running, and `--resume`, started
at once, kills it before writing anything, so nothing is written afterwards by an orphan. Real
processes throughout (qemu-img, sleep)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rel_eng import runner

HERE = Path(__file__).parent

# `rel-eng compose`, except that the first qemu-img it starts is frozen (SIGSTOP) the moment
# the runner has written it down, and its pid put in MARKER: a conversion caught mid-write.
# With "escaped", its children do not get the death signal.
FREEZE_QEMU_IMG = textwrap.dedent("""\
    import os, signal, sys
    from rel_eng import runner
    marker, escaped, argv = sys.argv[1], sys.argv[2] == "escaped", sys.argv[3:]
    if escaped:
        runner._prctl = None
    real = runner._record
    def record(proc):
        real(proc)
        if proc.args[0] == "qemu-img" and not os.path.exists(marker):
            os.kill(proc.pid, signal.SIGSTOP)
            with open(marker + ".tmp", "w") as fh:
                fh.write(str(proc.pid))
            os.rename(marker + ".tmp", marker)
    runner._record = record
    from rel_eng.cli import main
    sys.exit(main(argv))
    """)


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    for _ in range(2400):  # bounded: two minutes of 0.05 s polls
        if path.exists():
            return
        if proc.poll() is not None:
            pytest.fail(f"ended first: {proc.communicate()[1]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("qemu-img never started")


def alive(pid: int, begun: str) -> bool:
    return runner.start_time(pid) == begun


def test_a_sigkilled_compose_s_qemu_img_dies_with_it(tmp_path):
    marker = tmp_path / "qemu-img.pid"
    proc = subprocess.Popen(
        [sys.executable, "-c", FREEZE_QEMU_IMG, str(marker), "own", "compose", "--release", "19",
         "--milestone", "Alpha", "--date", "2013-04-05", "--output", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(marker, proc)
    child = int(marker.read_text())
    begun = runner.start_time(child)
    assert begun  # running (frozen) until its parent dies
    proc.kill()
    proc.communicate(timeout=60)
    try:
        for _ in range(200):  # bounded: the kernel sends the death signal as the parent exits
            if not alive(child, begun):
                break
            time.sleep(0.05)
        assert not alive(child, begun)
    finally:
        if alive(child, begun):
            os.kill(child, signal.SIGKILL)


def test_a_sigkilled_compose_s_qemu_img_is_killed_by_resume_before_it_writes(tmp_path):
    out = tmp_path / "out"
    marker = tmp_path / "qemu-img.pid"
    proc = subprocess.Popen(
        [sys.executable, "-c", FREEZE_QEMU_IMG, str(marker), "escaped", "compose", "--release", "19",
         "--milestone", "Alpha", "--date", "2013-04-05", "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(marker, proc)
    orphan = int(marker.read_text())
    begun = runner.start_time(orphan)
    topdir = out / "Fedora-Cloud-19-20130405.0"
    ledger = topdir / "work" / "children"
    assert str(orphan) in os.listdir(ledger)  # written down while it runs
    proc.kill()  # SIGKILL: no cleanup runs; the frozen qemu-img outlives it
    proc.communicate(timeout=60)
    assert alive(orphan, begun)
    try:
        again = subprocess.run([sys.executable, "-m", "rel_eng", "compose", "--resume",
                                str(topdir)], capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr
        assert "killed 1 leftover process(es) of an interrupted run" in again.stderr
        assert not alive(orphan, begun)  # dead before the resume wrote anything
        with contextlib.suppress(ProcessLookupError):  # gone, or a zombie its reaper owes a wait
            os.kill(orphan, signal.SIGCONT)  # nothing left to wake up and write
        assert not alive(orphan, begun)
    finally:
        if alive(orphan, begun):
            os.kill(orphan, signal.SIGKILL)
    assert list(ledger.iterdir()) == []
    assert (topdir / "STATUS").read_text().strip() == "FINISHED"
    images = topdir / "compose" / "Cloud"
    qcow2 = sorted(images.glob("*/images/*.qcow2"))
    assert len(qcow2) == 4 and not list(topdir.rglob("*.part"))
    for check in sorted(images.glob("*/images/*-CHECKSUM")):
        subprocess.run(["sha256sum", "--quiet", "-c", check.name], cwd=check.parent, check=True)
    for q in qcow2:
        subprocess.run(["qemu-img", "check", "-q", str(q)], check=True)


def test_reap_spares_a_live_run_s_children_a_recycled_pid_and_other_hosts(tmp_path):
    """Only a child whose run is gone is killed, and only the very process written down: a pid
    now naming another process (its start time differs) is left alone, and so is another
    host's entry and the child of a run still alive (a second --resume started beside it)."""
    ledger = tmp_path / "children"
    host = os.uname().nodename
    with runner.recording(ledger):
        mine = runner.start(["sleep", "30"], stdout=None)  # this test is its run: alive
        orphan = runner.start(["sleep", "30"], stdout=None)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a run that has ended: its pid names no process now
    entry = (ledger / str(orphan.pid)).read_text().split()
    (ledger / str(orphan.pid)).write_text(f"{entry[0]} {host} {gone.pid} 0 sleep\n")
    me = os.getpid()
    (ledger / str(me)).write_text(f"1 {host} {gone.pid} 0 python\n")  # not my start time
    (ledger / "1").write_text(f"{runner.start_time(1)} elsewhere {gone.pid} 0 init\n")
    sleeps = []
    try:
        assert runner.reap(ledger, sleep=sleeps.append) == [orphan.pid]
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert mine.poll() is None  # its run is alive: spared
    finally:
        for p in (mine, orphan):
            p.kill()
            p.wait()
    assert runner.start_time(me).isdigit()  # a live process has its start time
    assert sorted(p.name for p in ledger.iterdir()) == sorted(["1", str(mine.pid)])
    assert len(sleeps) < 200


def test_a_finished_child_is_struck_off(tmp_path):
    ledger = tmp_path / "children"
    with runner.recording(ledger):
        runner.run(["true"])
        proc = runner.start(["true"], stdout=None)
        runner.wait(proc)
    runner.run(["true"])  # outside the block: nothing written down
    assert list(ledger.iterdir()) == []


def test_a_spawned_vm_like_child_is_written_down_until_stopped(tmp_path):
    ledger = tmp_path / "children"
    with runner.recording(ledger):
        proc = runner.spawn(["sleep", "60"])
        try:
            assert [p.name for p in ledger.iterdir()] == [str(proc.pid)]
            assert ledger.joinpath(str(proc.pid)).read_text().split()[-1] == "sleep"
        finally:
            rc = runner.stop(proc, grace=5)
    assert rc == -signal.SIGTERM
    assert list(ledger.iterdir()) == []
