"""The distributed engine end to end: real redis-server, real `rel-eng worker` processes.

Each test submits a compose with `submit_compose` (exactly what `rel-eng compose --queue` does)
and waits with a deadline. Builds use the synthetic builder or the test-only builders of
distributed_builders.py (slow / always broken), registered in the worker processes.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import distributed_builders  # noqa: E402
from distributed_support import (RedisServer, Worker, restore_unacked, unacked_tasks,  # noqa: E402
                                 wait_for, write_config)

from rel_eng.compose import DOOMED, FINISHED, Compose, ComposeDoomed, run_compose  # noqa: E402
from rel_eng.config import load_config  # noqa: E402
from rel_eng.distributed import tasks  # noqa: E402
from rel_eng.distributed.canvas import submit_compose, wait_compose  # noqa: E402

DATE = dt.date(2013, 5, 28)
WAIT_S = 90

distributed_builders.register()


@pytest.fixture(autouse=True)
def _no_url_overrides(monkeypatch):
    for var in ("REL_ENG_BROKER_URL", "REL_ENG_RESULT_BACKEND"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def workers(tmp_path):
    started: list[Worker] = []

    def start(config: Path, name: str, **kw) -> Worker:
        w = Worker(name, config, tmp_path / "logs", **kw).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def submit(config_path: Path, out: Path, builder: str | None = None) -> Path:
    config = load_config(config_path)
    cid = submit_compose(config, out, "19", "Beta", DATE, builder=builder)
    return out / cid


def normalized(path: Path):
    """File content for comparison: JSON metadata without timestamps, anything else as bytes."""
    if path.suffix == ".json":
        def strip(obj):
            if isinstance(obj, dict):
                return {k: strip(v) for k, v in obj.items() if k not in ("mtime", "timestamp")}
            if isinstance(obj, list):
                return [strip(v) for v in obj]
            return obj
        return strip(json.loads(path.read_text()))
    if path.name == "MANIFEST":  # the JSON files' digests follow their timestamps
        return [line for line in path.read_text().splitlines() if ".json" not in line]
    return path.read_bytes()


def tree(root: Path) -> dict[str, object]:
    return {str(p.relative_to(root)): normalized(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_local_and_distributed_drops_are_identical(tmp_path, redis_server, workers):
    # The production synthetic builder: it is reproducible, so the drops compare exactly.
    builder = "synthetic"
    cfg = write_config(tmp_path / "rel-eng.toml", redis_server.url)
    config = load_config(cfg)
    local = run_compose(config, tmp_path / "local", "19", "Beta", DATE, builder=builder)
    workers(cfg, "a", concurrency=2)
    topdir = submit(cfg, tmp_path / "dist", builder=builder)
    assert wait_compose(topdir, WAIT_S, poll=0.2) == FINISHED

    assert topdir.name == local.topdir.name
    mirror_local = tree(tmp_path / "local" / "mirror")
    mirror_dist = tree(tmp_path / "dist" / "mirror")
    assert sorted(mirror_dist) == sorted(mirror_local)
    assert any(name.endswith(".qcow2") for name in mirror_dist)
    for name in mirror_local:
        assert mirror_dist[name] == mirror_local[name], name
    compose_local, compose_dist = tree(local.topdir / "compose"), tree(topdir / "compose")
    assert compose_dist == compose_local
    assert (topdir / "STATUS").read_text() == "FINISHED\n"
    # The step tasks wrote their children (sfdisk, mkfs, qemu-img...) down where --resume
    # looks, and struck each off once it ended.
    children = topdir / "work" / "children"
    assert children.is_dir() and list(children.iterdir()) == []


def test_sigkill_worker_mid_build_completes_exactly_once(tmp_path, redis_server, workers):
    # The visibility timeout never passes during the test: the dead worker's message comes back
    # by an explicit restore (what Redis does once that timeout has passed), so nothing here
    # waits on a clock, and a healthy build slowed down by load is never handed out twice.
    cfg = write_config(tmp_path / "rel-eng.toml", redis_server.url, visibility_timeout=3600)
    victim = workers(cfg, "victim", build_seconds=3600)  # still building when it is killed
    workers(cfg, "survivor", build_seconds=1)
    topdir = submit(cfg, tmp_path / "out", builder="slow-synthetic")

    def victim_building():
        return [key for event, key, pgid in distributed_builders.read_events(topdir)
                if event == "start" and pgid == victim.pgid]
    killed_key = wait_for(victim_building, 120, "the victim worker to start a build")[0]
    victim.kill()

    def is_killed_build(headers):
        return headers["task"] == tasks.task_name("build") and repr(killed_key) in headers["argsrepr"]
    assert sum(map(is_killed_build, unacked_tasks(redis_server.url))) == 1  # held by the dead
    assert restore_unacked(redis_server.url, is_killed_build) == 1

    assert wait_compose(topdir, WAIT_S, poll=0.2) == FINISHED
    events = distributed_builders.read_events(topdir)
    c = Compose.load(topdir)
    for job in c.plan.images:
        done = [e for e in events if e[0] == "done" and e[1] == job.key]
        assert len(done) == 1, f"{job.key} finished {len(done)} builds: {events}"
    assert [e[0] for e in events if e[1] == killed_key] == ["start", "start", "done"]
    raws = c.manifest.artifacts(kind="raw-disk")
    assert sorted(a.job_key for a in raws) == sorted(j.key for j in c.plan.images)
    staged = tmp_path / "out" / "mirror" / c.plan.mirror_path
    assert len(list(staged.rglob("*.qcow2"))) == len(c.plan.images)
    assert not [p for p in staged.parent.iterdir() if p.name.startswith(".")]  # no half-staged


@pytest.fixture
def persistent_redis(tmp_path):
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    yield server
    server.stop()


def test_redis_restart_mid_compose_completes(tmp_path, persistent_redis, workers):
    # Redis with an append-only file, as in production (workers/redis.conf): a restart keeps
    # queued and unacknowledged tasks and the chord's counters.
    cfg = write_config(tmp_path / "rel-eng.toml", persistent_redis.url, visibility_timeout=10)
    workers(cfg, "a", build_seconds=2)
    workers(cfg, "b", build_seconds=2)
    topdir = submit(cfg, tmp_path / "out", builder="slow-synthetic")
    wait_for(lambda: distributed_builders.read_events(topdir), 30, "a build to start")
    persistent_redis.restart(down_seconds=1.0)  # mid-build: two builds are running
    assert wait_compose(topdir, WAIT_S, poll=0.2) == FINISHED
    c = Compose.load(topdir)
    events = distributed_builders.read_events(topdir)
    for job in c.plan.images:
        assert len([e for e in events if e[0] == "done" and e[1] == job.key]) == 1, events
    drop = tmp_path / "out" / "mirror" / c.plan.mirror_path
    assert len(list(drop.rglob("*.qcow2"))) == len(c.plan.images)


def test_task_that_keeps_failing_ends_doomed_with_reason(tmp_path, redis_server, workers):
    cfg = write_config(tmp_path / "rel-eng.toml", redis_server.url, max_retries=2, retry_backoff=1)
    workers(cfg, "a", concurrency=2)
    topdir = submit(cfg, tmp_path / "out", builder="broken")
    with pytest.raises(ComposeDoomed) as err:
        wait_compose(topdir, WAIT_S, poll=0.2)
    message = str(err.value)
    assert "is DOOMED" in message
    assert "failed after 3 attempt(s): OSError: simulated: cannot connect to libvirt" in message
    assert (topdir / "STATUS").read_text() == f"{DOOMED}\n"
    summary = json.loads((topdir / "compose" / "metadata" / "rel-eng.json").read_text())
    assert summary["status"] == DOOMED
    # The first image to give up dooms the compose; images still retrying then stop, so which
    # and how many are listed depends on timing. Each listed one gave up after all its tries.
    failed = summary["failed_images"]
    assert failed and all("failed after 3 attempt(s)" in r for r in failed.values()), failed
    attempts = [e for e in distributed_builders.read_events(topdir) if e[0] == "attempt"]
    per_image = {key: sum(1 for e in attempts if e[1] == key) for _, key, _ in attempts}
    assert all(per_image[key] == 3 for key in failed)  # first try + max_retries, then it stopped
    assert max(per_image.values()) == 3  # never retried past the limit
    c = Compose.load(topdir)
    assert not (tmp_path / "out" / "mirror" / c.plan.mirror_path).exists()  # nothing staged
