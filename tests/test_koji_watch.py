"""Watching image task trees: one hub round trip per poll round, resume, slow tasks, restarts."""

from __future__ import annotations

import dataclasses
import logging
import time

import koji
import pytest

from rel_eng.builders.base import BuildHandle
from rel_eng.builders.koji import KojiBuilder

from tests.distributed_support import wait_for
from tests.fake_clock import FakeClock
from tests.kojihub.fixtures import (Recorder, compose_requests, hub_assets,  # noqa: F401
                                    koji_config, koji_hub)

S = koji.TASK_STATES
HELD = 86400.0  # a createImage that runs until the test releases it


def _release(hub) -> None:
    """Let every held createImage finish at the simulated kojid's next tick."""
    with hub.hub.lock:
        hub.inject.slow = {}
        hub.hub.task_seconds = 0.0
        for task in hub.hub.tasks.values():
            task.due = 0.0


def _releasing_sleep(hub, when):
    """A real sleep that releases the held tasks once `when(number of sleeps so far)` holds."""
    count = [0]

    def sleep(seconds: float) -> None:
        count[0] += 1
        if when(count[0]):
            _release(hub)
        time.sleep(seconds)
    return sleep, count


def _watch_round_trips(hub, builder, handles, **kw):
    before = len(hub.rpc_log)
    outcomes = builder.wait(handles, **kw)
    during = hub.rpc_log[before:]
    return outcomes, during


def _many_types(config, n):
    base = config.image_types[0]
    types = tuple(dataclasses.replace(base, key=f"t{i}", name=f"Fedora-Cloud-T{i}",
                                      subvariant=f"Cloud_T{i}") for i in range(n))
    return dataclasses.replace(config, image_types=types)


@pytest.mark.parametrize("image_types", [1, 12])
def test_one_round_trip_per_poll_round_whatever_the_task_count(koji_hub, tmp_path, image_types):
    koji_hub.hub.task_seconds = HELD  # the children run until the third sleep
    config = _many_types(koji_config(koji_hub, tmp_path), image_types)
    koji_hub.hub.tag_packages["f19"] |= {t.name for t in config.image_types}  # koji add-pkg
    _c, requests = compose_requests(config, tmp_path / "out")
    sleep, sleeps = _releasing_sleep(koji_hub, lambda n: n == 3)
    builder = KojiBuilder(config, sleep=sleep)
    handles = builder.submit(requests)
    outcomes, during = _watch_round_trips(koji_hub, builder, handles)

    assert [o.ok for o in outcomes] == [True] * (2 * image_types), outcomes
    assert sleeps[0] >= 3 and builder.poll_rounds == sleeps[0] + 1  # a sleep between rounds
    assert len(during) == builder.poll_rounds  # exactly one HTTP round trip per round
    assert all(method == "multiCall" for method, _ in during)
    # The first round asks for every parent's info and children in that one multicall.
    assert during[0][1] == ["getTaskInfo"] + ["getTaskChildren"] * image_types
    tasks = koji_hub.hub.tasks.values()
    assert sum(t.method == "createImage" for t in tasks) == 2 * image_types
    assert all(t.state == S["CLOSED"] for t in tasks)


def test_resume_watches_recorded_tasks_without_resubmitting(koji_hub, tmp_path):
    koji_hub.hub.task_seconds = 0.3
    config = koji_config(koji_hub, tmp_path)
    _c, requests = compose_requests(config, tmp_path / "out")
    record = Recorder()
    KojiBuilder(config, on_submitted=record).submit(requests)  # ...and the process dies

    # A new process: handles come back from what on_submitted recorded (the manifest).
    resumed = [BuildHandle(h.job_key, h.external_id, dict(h.data)) for h in record.handles]
    builder = KojiBuilder(config)
    outcomes = builder.wait(resumed)
    assert all(o.ok for o in outcomes), outcomes
    assert len(koji_hub.hub.submissions) == 2  # nothing submitted again
    assert not any(m == "sslLogin" for m, _ in koji_hub.rpc_log[-builder.poll_rounds:])
    assert builder.submitted == resumed  # cancellable on a signal like fresh ones


def test_slow_task_times_out_then_resumes(koji_hub, tmp_path):
    koji_hub.inject.slow = {"x86_64": HELD}
    config = koji_config(koji_hub, tmp_path, poll_interval=0.25)
    _c, requests = compose_requests(config, tmp_path / "out")
    requests = [r for r in requests if r.job.image_type == "generic"]
    record = Recorder()
    clock = FakeClock()  # the watch's own time: 2 s of it pass in 8 sleeps, however slow
    builder = KojiBuilder(config, on_submitted=record, sleep=clock.sleep, clock=clock)
    handles = builder.submit(requests)
    task = handles[0].external_id
    # The simulated kojid opens tasks on its own real-time tick, and the watch below spends only
    # fake time: wait (bounded) until the hub has opened the task, as a busy host can lag.
    wait_for(lambda: koji_hub.hub.tasks[int(task)].state == S["OPEN"], 15,
             f"the hub to open task {task}", interval=0.05)

    outcomes, during = _watch_round_trips(koji_hub, builder, handles, timeout=2.0)
    assert len(outcomes) == 2 and not any(o.ok for o in outcomes)
    for o in outcomes:
        assert f"koji task {task} still OPEN" in o.reason
        assert f"taskinfo?taskID={task}" in o.reason and "resume" in o.reason
    assert clock.sleeps == [0.25] * 8  # polled all along until the deadline...
    assert len(during) == builder.poll_rounds == 9  # ...one trip per round, one round per sleep
    assert koji_hub.hub.tasks[int(task)].state == S["OPEN"]  # a timeout cancels nothing

    _release(koji_hub)  # the slow build ends; a later run picks its tasks up
    later = KojiBuilder(config).wait(record.handles)
    assert all(o.ok for o in later), later


def test_hub_restart_mid_watch_is_retried_with_backoff(koji_hub, tmp_path, caplog):
    koji_hub.hub.task_seconds = HELD  # running until the hub has been restarted
    koji_hub.inject.restart_after_rounds = 2
    koji_hub.inject.down_for = 0.6
    config = koji_config(koji_hub, tmp_path)
    _c, requests = compose_requests(config, tmp_path / "out")
    sleep, _ = _releasing_sleep(koji_hub, lambda n: koji_hub.restarts == 1)
    builder = KojiBuilder(config, sleep=sleep)
    handles = builder.submit(requests)
    port = koji_hub.port
    with caplog.at_level(logging.WARNING, logger="rel_eng.builders.koji_session"):
        outcomes = builder.wait(handles)
    assert all(o.ok for o in outcomes), outcomes
    assert koji_hub.restarts == 1 and koji_hub.port == port
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retries and all("watching tasks" in m for m in retries)
    assert "ConnectionError" in retries[0]


def test_hub_gone_for_good_is_a_bounded_error(koji_hub, tmp_path):
    from rel_eng.builders.koji_session import HubError

    koji_hub.hub.task_seconds = 30
    config = koji_config(koji_hub, tmp_path, retries=3, retry_backoff=0.05)
    _c, requests = compose_requests(config, tmp_path / "out")
    builder = KojiBuilder(config)
    handles = builder.submit(requests)
    koji_hub._halt()  # the server is gone; the fixture's stop() still cleans up
    with pytest.raises(HubError) as err:
        builder.wait(handles)
    assert "unreachable for watching tasks" in str(err.value)
    assert "after 4 attempt(s)" in str(err.value) and "resume" in str(err.value)
