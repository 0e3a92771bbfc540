"""The dashboard page of a queued compose that has not ended names each step that waits on a
queue no live worker serves: a real redis-server, a real queued compose and no worker."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from distributed_support import URL_ENV, RedisServer, write_config  # noqa: E402

from rel_eng.config import load_config  # noqa: E402
from rel_eng.plan import plan_drop  # noqa: E402
from rel_eng.store.engine import open_engine  # noqa: E402
from rel_eng.web.dashboard.app import create_app  # noqa: E402
from rel_eng.web.dashboard.waiting import CACHE_S, WaitingCache, pending_steps  # noqa: E402


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def _waiting_items(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<li data-queue="([^"]+)">Step <code>(\w+)</code>', html)


def test_the_page_of_a_queued_compose_names_the_queue_no_worker_serves(broker, tmp_path,
                                                                       monkeypatch):
    from rel_eng.distributed.canvas import submit_compose

    for name in URL_ENV:
        monkeypatch.delenv(name, raising=False)
    config = load_config(write_config(tmp_path / "rel-eng.toml", broker.url))
    out = tmp_path / "out"
    cid = submit_compose(config, out, "19", "Beta", dt.date(2013, 5, 28))  # no worker runs
    now = [0.0]
    cache = WaitingCache(clock=lambda: now[0])
    engine = open_engine(config.store.url_for(out))
    try:
        with TestClient(create_app(engine, config, waiting=cache)) as client:
            page = client.get(f"/composes/{cid}")
            assert page.status_code == 200
            # every image waits on its build, on the build host of its arch
            assert _waiting_items(page.text) == [("oz.i686", "build"), ("oz.x86_64", "build")]
            for q in ("oz.i686", "oz.x86_64"):
                assert (f"waits on queue <code>{q}</code>, which no live worker serves: start "
                        f"one with <code>rel-eng worker --queues {q}</code>") in page.text
            assert cache.asked == 1
            # the list, the API and a reload within the cache's time ask nobody
            assert client.get("/").status_code == 200
            assert client.get(f"/api/composes/{cid}").status_code == 200
            assert _waiting_items(client.get(f"/composes/{cid}").text) == \
                [("oz.i686", "build"), ("oz.x86_64", "build")]
            assert cache.asked == 1
            now[0] += CACHE_S
            client.get(f"/composes/{cid}")
            assert cache.asked == 2
            # an ended compose is never asked about, and shows no waiting step
            from rel_eng.compose.model import TERMINATED
            from rel_eng.store.recorder import load_recorded

            ended = load_recorded(out / cid)
            try:
                ended.set_status(TERMINATED, ended.recorder)  # STATUS and the store's row
            finally:
                ended.recorder.close()
            now[0] += CACHE_S
            page = client.get(f"/composes/{cid}")
            assert page.status_code == 200 and 'id="waiting"' not in page.text
            assert cache.asked == 2
    finally:
        engine.dispose()


def test_the_step_waiting_follows_each_images_progress(config):
    plan = plan_drop(config, "19", milestone="Beta", date=dt.date(2013, 5, 28))
    keys = [j.key for j in plan.images]
    done = {"state": "done"}
    steps = {keys[0]: {"build": done}, keys[1]: {"build": {"state": "failed"}}}
    assert [(s.name, j.key) for s, j in pending_steps(plan, steps)] == \
        [("process", keys[0])] + [("build", k) for k in keys[2:]]
    finished = {k: {"build": done, "process": done, "boottest": {"state": "skipped"}}
                for k in keys}
    finished[keys[-1]] = {"build": {"state": "failed"}}
    assert [(s.name, j) for s, j in pending_steps(plan, finished)] == [("finalize", None)]


def test_a_broker_that_cannot_be_asked_is_a_note_not_an_error(broker, tmp_path, monkeypatch):
    from rel_eng.distributed.canvas import submit_compose

    for name in URL_ENV:
        monkeypatch.delenv(name, raising=False)
    config = load_config(write_config(tmp_path / "rel-eng.toml", broker.url))
    out = tmp_path / "out"
    cid = submit_compose(config, out, "19", "Beta", dt.date(2013, 5, 28))

    def refused(timeout):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    engine = open_engine(config.store.url_for(out))
    try:
        with TestClient(create_app(engine, config, waiting=WaitingCache(inspect=refused))) as c:
            page = c.get(f"/composes/{cid}")
        assert page.status_code == 200
        assert ("workers not asked: ConnectionError: Error 111 connecting to 127.0.0.1:1. "
                "Connection refused.") in page.text
        assert _waiting_items(page.text) == []
    finally:
        engine.dispose()
