"""Local runs take the per-step locks the Celery tasks take: two `--resume` runs of one compose,
started together as two real processes, never execute a step twice and both end FINISHED."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

from rel_eng.compose import allocate, create, prepare_inputs

from conftest import ALPHA_DATE


def test_two_resumes_started_together_never_run_a_step_twice(tmp_path, config):
    plan = allocate(config, tmp_path, "19", "Alpha", ALPHA_DATE)
    c = create(config, plan, tmp_path, prepare_inputs(config, plan))
    argv = [sys.executable, "-m", "rel_eng", "compose", "--resume", str(c.topdir)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    for out, err, rc in results:  # non-empty: two processes
        assert rc == 0, err
        assert out.split()[:2] == [plan.compose_id, "FINISHED"]
    logs = "".join(err for _, err, _ in results)
    started = re.findall(r"start: (building \d+ image|post-processing \S+|staging into \S+)", logs)
    assert started.count("building 4 image") == 1, logs
    assert sorted(s for s in started if s.startswith("post-processing")) == sorted(
        f"post-processing {j.nvra}" for j in plan.images)
    assert len([s for s in started if s.startswith("staging")]) == 1, logs
    assert c.read_status() == "FINISHED"


def test_a_step_lock_excludes_another_thread_and_nests_in_its_own(tmp_path):
    from rel_eng.compose.locks import step_lock

    order = []

    def other():
        with step_lock(tmp_path, "build:x"):
            order.append("other")

    with step_lock(tmp_path, "build:x"):
        with step_lock(tmp_path, "build:x"):  # the same thread: re-entered, not waited on
            t = threading.Thread(target=other)
            t.start()
            t.join(0.2)
            assert t.is_alive()  # still waiting on the lock this thread holds
            order.append("holder")
    t.join(10)
    assert order == ["holder", "other"]
