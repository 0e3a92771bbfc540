"""Nothing is queued on a queue no live worker serves: a real redis-server and real workers,
asked with Celery's inspect, before `compose --queue`, `trigger` and each beat firing."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from distributed_support import URL_ENV, RedisServer, Worker, write_config  # noqa: E402

from rel_eng.config import load_config  # noqa: E402
from rel_eng.distributed import liveness  # noqa: E402
from rel_eng.errors import ConfigError  # noqa: E402

REL_ENG = [sys.executable, "-m", "rel_eng"]
BETA_QUEUES = ["oz.i686", "oz.x86_64", "process", "boottest", "publish"]


def test_the_queues_a_compose_uses(config):
    assert liveness.compose_queues(config, "19", "Beta") == BETA_QUEUES
    assert liveness.compose_queues(config, "19", None, builder="koji") == \
        ["koji", "process", "boottest", "publish"]


def test_a_queue_without_a_worker_is_one_line_each(config):
    answers = {"a@h": [{"name": "oz.x86_64"}, {"name": "process"}],
               "b@h": [{"name": "publish"}, {"name": "oz.x86_64"}], "c@h": None}
    with pytest.raises(ConfigError) as err:
        liveness.check_workers(config, "19", "Beta", inspect=lambda timeout: answers)
    assert err.value.problems == [
        f"queue '{q}' has no live worker (start one that serves it: rel-eng worker --queues {q});"
        " nothing was queued" for q in ("oz.i686", "boottest")]
    with pytest.raises(ConfigError) as err:  # no worker answered at all
        liveness.check_workers(config, "19", "Beta", inspect=lambda timeout: None)
    assert len(err.value.problems) == 5
    everything = {"w@h": [{"name": q} for q in BETA_QUEUES]}
    assert liveness.check_workers(config, "19", "Beta", inspect=lambda timeout: everything) is None


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def _cli(args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in URL_ENV}
    return subprocess.run([*REL_ENG, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


def test_compose_queue_and_trigger_refuse_a_queue_nobody_serves(broker, tmp_path):
    cfg = write_config(tmp_path / "rel-eng.toml", broker.url)
    worker = Worker("light", cfg, tmp_path, queues="koji,process,publish").start()
    try:
        out = tmp_path / "out"
        for args in (["compose", "--queue", "--release", "19", "--milestone", "Beta",
                      "--date", "2013-05-28", "--output", str(out)],
                     ["trigger", "--release", "19", "--milestone", "Beta", "--output", str(out)]):
            proc = _cli([args[0], "--config", str(cfg), *args[1:]], tmp_path)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 2, proc.stderr
            assert lines == [f"rel-eng: error: queue '{q}' has no live worker (start one that "
                             f"serves it: rel-eng worker --queues {q}); nothing was queued"
                             for q in ("oz.i686", "oz.x86_64", "boottest")], proc.stderr
            assert not out.exists()  # nothing created, nothing queued
        with broker.client() as r:
            assert not [k for k in r.keys("*") if not k.startswith((b"_kombu", b"unacked"))
                        and r.type(k) == b"list" and r.llen(k)], "a task was queued"
        # queued anyway (submit_compose itself does not ask): status names what it waits on
        from rel_eng.distributed.canvas import submit_compose

        config = load_config(cfg)
        cid = submit_compose(config, out, "19", "Beta", dt.date(2013, 5, 28))
        proc = _cli(["status", cid, "--config", str(cfg), "--output", str(out)], tmp_path)
        assert proc.returncode == 0, proc.stderr
        waiting = [line.strip() for line in proc.stdout.splitlines() if "waiting on" in line]
        assert waiting == [f"waiting on queue '{q}', which no live worker serves (start one: "
                           f"rel-eng worker --queues {q})" for q in ("oz.i686", "oz.x86_64",
                                                                     "boottest")], proc.stdout
        # with every queue served, the check passes
        full = Worker("full", cfg, tmp_path, queues="oz.x86_64,oz.i686,boottest").start()
        try:
            assert liveness.check_workers(config, "19", "Beta") is None
        finally:
            full.stop()
    finally:
        worker.stop()
