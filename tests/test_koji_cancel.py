"""Cancelling submitted tasks: directly, and on SIGTERM during a real `rel-eng compose`."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import koji

from rel_eng.builders.koji import KojiBuilder

from tests.kojihub.fixtures import (PROFILE, client_config, compose_requests,  # noqa: F401
                                    hub_assets, koji_config, koji_hub)

S = koji.TASK_STATES
ROOT = Path(__file__).resolve().parent.parent


def test_cancel_stops_parents_and_children_and_says_so(koji_hub, tmp_path, caplog):
    koji_hub.inject.slow = {"i386": 30.0, "x86_64": 30.0}
    config = koji_config(koji_hub, tmp_path)
    _c, requests = compose_requests(config, tmp_path / "out")
    builder = KojiBuilder(config)
    handles = builder.submit(requests)
    with caplog.at_level(logging.WARNING, logger="rel_eng.builders.koji"):
        builder.cancel(handles)
    tasks = koji_hub.hub.tasks.values()
    assert len(tasks) >= 2 and all(t.state == S["CANCELED"] for t in tasks)
    parents = sorted({int(h.external_id) for h in handles})
    said = [r.getMessage() for r in caplog.records]
    for p in parents:
        assert f"cancelled koji task {p} and its children ({koji_hub.weburl}/taskinfo?taskID={p})" in said
    # One multicall for all of them, after the login.
    assert koji_hub.rpc_log[-1] == ("multiCall", ["cancelTask"] * len(parents))


def _terminated_compose(koji_hub, tmp_path):
    """A real `rel-eng compose` SIGTERMed while its four createImage tasks run."""
    cfg = client_config(koji_hub, tmp_path / "koji.conf")
    toml = tmp_path / "rel-eng.toml"
    toml.write_text(f'[koji]\nprofile = "{PROFILE}"\nconfig_file = "{cfg}"\n'
                    'poll_interval = 0.1\nretry_backoff = 0.1\n[boot_test]\nenabled = false\n')
    argv = [sys.executable, "-m", "rel_eng", "compose", "--config", str(toml), "--release", "19",
            "--milestone", "Alpha", "--date", "2013-04-05", "--builder", "koji",
            "--output", str(tmp_path / "out")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # a bound for a loaded machine, not a measure
        while time.monotonic() < deadline and proc.poll() is None:
            kids = [t for t in list(koji_hub.hub.tasks.values()) if t.method == "createImage"]
            if len(kids) == 4 and all(t.state == S["OPEN"] for t in kids):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"compose never got its tasks running: {proc.communicate()}")
        # Watching: a poll round after every task runs, so every submission is recorded.
        seen = len(koji_hub.rpc_log)
        while time.monotonic() < deadline and proc.poll() is None:
            if any(m == "multiCall" for m, _ in koji_hub.rpc_log[seen:]):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"compose never watched its tasks: {proc.communicate()}")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc, out, err, argv, env


def test_sigterm_during_compose_cancels_the_submitted_tasks(koji_hub, tmp_path):
    koji_hub.inject.slow = {"i386": 60.0, "x86_64": 60.0}
    proc, _out, err, _argv, _env = _terminated_compose(koji_hub, tmp_path)
    assert proc.returncode == 143, err  # 128 + SIGTERM
    tasks = list(koji_hub.hub.tasks.values())
    assert len(tasks) == 6 and all(t.state == S["CANCELED"] for t in tasks)
    parents = [t for t in tasks if t.method == "image"]
    assert len(parents) == 2  # generic and EC2
    for parent in parents:
        assert f"cancelled koji task {parent.id} and its children" in err
    assert "interrupted by signal SIGTERM" in err
    status = next((tmp_path / "out").glob("*/STATUS")).read_text().strip()
    assert status == "TERMINATED"


def test_resume_of_a_terminated_compose_submits_the_cancelled_images_again(koji_hub, tmp_path):
    koji_hub.inject.slow = {"i386": 60.0, "x86_64": 60.0}
    proc, _out, err, argv, env = _terminated_compose(koji_hub, tmp_path)
    assert proc.returncode == 143, err  # 128 + SIGTERM
    topdir = next((tmp_path / "out").glob("Fedora-Cloud-*"))
    assert (topdir / "STATUS").read_text().strip() == "TERMINATED"
    cancelled = {t.id for t in koji_hub.hub.tasks.values() if t.method == "image"}
    builds = {nvr: b["state"] for nvr, b in koji_hub.hub.builds.items()}
    assert set(builds.values()) <= {koji.BUILD_STATES["CANCELED"]}  # Koji recorded the NVRs

    koji_hub.inject.slow = {}
    toml = argv[argv.index("--config") + 1]
    resumed = subprocess.run([sys.executable, "-m", "rel_eng", "compose", "--resume",
                              str(topdir)], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert (topdir / "STATUS").read_text().strip() == "FINISHED", resumed.stderr
    new = [s for s in koji_hub.hub.submissions if s["task_id"] not in cancelled]
    assert len(new) == 2 and all(s["fault"] is None for s in new)  # both image types again
    assert all(s["opts"]["release"] == "1.1" for s in new)  # the CANCELED NVR, recycled
    assert len(cancelled) == 2  # generic and EC2
    for parent in sorted(cancelled):
        assert f"koji task {parent} ({koji_hub.weburl}/taskinfo?taskID={parent}) was " \
               "cancelled: its images are submitted again" in resumed.stderr
    assert "DOOMED" not in resumed.stderr + resumed.stdout
    assert toml  # the resume used the compose's own config (no --config given)
