"""Messages on a real RabbitMQ with real fedora-messaging publishers and consumers.

Every test has its own vhost (messaging_support.Broker). rel-eng runs as subprocesses, as in
production; what reached the bus is read back from a tap queue bound to every topic.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from messaging_support import (PREFIX, Consumer, amqp_user, broker, free_port,  # noqa: E402,F401
                               rel_eng, sync_command, sync_runs, wait_for)

import rel_eng_messages  # noqa: E402
from rel_eng.compose import Compose  # noqa: E402
from rel_eng.messaging import bodies  # noqa: E402

COMPOSE = ["compose", "--release", "19", "--milestone", "Beta", "--date", "2013-05-28"]
ORDER = [bodies.STATUS] + [bodies.IMAGE_BUILT] * 4 + [bodies.BOOT_TEST] * 4 + \
    [bodies.DROP_STAGED, bodies.STATUS]
CRASH = Path(__file__).resolve().parent / "messaging_crash.py"
QUEUE = "rel-eng-mirror-sync"


def write_config(path: Path, *, enabled: bool = True, sync: list[str] | None = None,
                 extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("[compose]\ndisk_size_gib = 1\n\n[messaging]\n"
            f"enabled = {'true' if enabled else 'false'}\npublish_timeout_s = 2\n"
            f"retry_delay_s = 0\nqueue = \"{QUEUE}\"\n")
    if sync:
        text += f"sync_command = {json.dumps(sync)}\n"
    path.write_text(text + extra)
    return path


def outbox(out: Path, conf: Path, cfg: Path) -> list[dict]:
    return json.loads(rel_eng(["messages", "--json", "--config", str(cfg), "--output", str(out)],
                              conf).stdout)


def compose(cfg: Path, out: Path, conf: Path) -> Compose:
    proc = rel_eng([*COMPOSE, "--config", str(cfg), "--output", str(out)], conf)
    cid, status, topdir = proc.stdout.split()[-3:]
    assert status == "FINISHED", proc.stdout
    return Compose.load(Path(topdir))


def flush(cfg: Path, out: Path, conf: Path) -> dict:
    proc = rel_eng(["messages", "flush", "--json", "--config", str(cfg), "--output", str(out)], conf)
    return json.loads(proc.stdout)


def test_a_local_compose_announces_each_step_in_order_valid_and_without_secrets(tmp_path, broker):
    tap = broker.tap()
    cfg = write_config(tmp_path / "rel-eng.toml")
    out = tmp_path / "out"
    proc = rel_eng([*COMPOSE, "--config", str(cfg), "--output", str(out)], broker.conf)
    c = Compose.load(out / proc.stdout.split()[0])

    got = tap.drain()
    assert [m.topic for m in got] == [f"{PREFIX}.{t}" for t in ORDER]
    assert [type(m) for m in got] == [rel_eng_messages.BY_TOPIC[t] for t in ORDER]
    assert [m.body["status"] for m in (got[0], got[-1])] == ["STARTED", "FINISHED"]
    assert got[0].body["compose_id"] == c.plan.compose_id
    assert got[0].body["compose_label"] == "Beta-1.1" and got[0].body["compose_respin"] == 0
    assert got[0].body["location"] == str(c.topdir.resolve() / "compose")

    deliverables = {a.path: a for a in c.manifest.artifacts(intent="deliverable")}
    built = got[1:5]
    assert sorted(m.body["nvra"] for m in built) == sorted(j.nvra for j in c.plan.images)
    for m in built:
        assert m.body["builder"] == "synthetic" and m.body["task_ids"] == [f"synthetic:{m.body['nvra']}"]
        assert len(m.body["artifacts"]) == 2
        for a in m.body["artifacts"]:
            assert (a["size"], a["sha256"]) == (deliverables[a["path"]].size,
                                                deliverables[a["path"]].sha256)

    booted = got[5:9]  # the synthetic builder's images: skipped by the boot test, not passed
    assert sorted(m.body["nvra"] for m in booted) == sorted(j.nvra for j in c.plan.images)
    assert {m.body["verdict"] for m in booted} == {"skipped"}

    staged = got[ORDER.index(bodies.DROP_STAGED)].body
    drop = out / "mirror" / staged["mirror_path"]
    assert staged["mirror_path"] == c.plan.mirror_path and drop.is_dir()
    on_disk = sorted(str(p.relative_to(drop)) for p in drop.rglob("*") if p.is_file())
    assert [f["path"] for f in staged["files"]] == on_disk
    for f in staged["files"]:
        assert (drop / f["path"]).stat().st_size == f["size"]
    for name in staged["checksum_files"]:
        assert any(f["path"].endswith("/" + name) for f in staged["files"])
    assert len(staged["checksum_files"]) == 2

    rows = outbox(out, broker.conf, cfg)
    assert [r["id"] for r in rows] == [m.id for m in got]
    assert {r["state"] for r in rows} == {"sent"}
    pending = rel_eng(["messages", "--pending", "--config", str(cfg), "--output", str(out)],
                      broker.conf)
    assert pending.stdout.strip() == "no messages pending"
    # The AMQP password is in fedora-messaging's config only.
    for text in (proc.stdout, proc.stderr, pending.stdout, json.dumps(rows)):
        assert broker.password not in text
    assert broker.password.encode() not in (out / "rel-eng.db").read_bytes()
    work_json = list((c.topdir / "work").glob("*.json"))
    assert {"config.json", "plan.json", "manifest.json"} <= {p.name for p in work_json}
    for p in work_json:
        assert broker.password.encode() not in p.read_bytes()


def test_broker_unreachable_the_compose_finishes_and_a_flush_delivers_each_once(tmp_path, broker):
    tap = broker.tap()
    cfg = write_config(tmp_path / "rel-eng.toml")
    out = tmp_path / "out"
    down = broker.write_conf(tmp_path / "down.toml", free_port())  # nothing listens there
    proc = rel_eng([*COMPOSE, "--config", str(cfg), "--output", str(out)], down)
    assert " FINISHED " in proc.stdout
    assert broker.password not in proc.stdout + proc.stderr
    assert tap.drain() == []

    rows = outbox(out, down, cfg)
    assert [r["topic"] for r in rows] == ORDER
    assert {r["state"] for r in rows} == {"pending"}
    assert rows[0]["attempts"] >= 1 and "PublishTimeout" in rows[0]["last_error"]
    assert broker.password not in json.dumps(rows)

    failed = rel_eng(["messages", "flush", "--config", str(cfg), "--output", str(out)], down,
                     check=False)
    assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1
    assert "pending" in failed.stderr and broker.password not in failed.stderr

    assert flush(cfg, out, broker.conf) == {"sent": len(ORDER), "pending": 0, "error": "", "busy": False}
    got = tap.drain()
    assert [m.id for m in got] == [r["id"] for r in rows]
    assert [m.topic for m in got] == [f"{PREFIX}.{t}" for t in ORDER]
    assert flush(cfg, out, broker.conf)["sent"] == 0
    assert tap.drain() == []


def _consumer(tmp_path: Path, broker, sync: list[str]) -> Consumer:
    cfg = write_config(tmp_path / "consumer.toml", sync=sync)
    return Consumer(cfg, tmp_path / "consumer-store", broker.conf, tmp_path / "consumer.log")


@pytest.fixture
def consumers():
    started: list[Consumer] = []
    yield started
    for c in started:
        c.stop()


def test_sigkill_between_send_and_mark_resends_the_same_id_and_syncs_once(tmp_path, broker,
                                                                          consumers):
    tap = broker.tap()
    argv, log = sync_command(tmp_path / "sync")
    consumer = _consumer(tmp_path, broker, argv).start(broker, QUEUE)
    consumers.append(consumer)
    out = tmp_path / "out"
    compose(write_config(tmp_path / "off.toml", enabled=False), out, broker.conf)
    cfg = write_config(tmp_path / "rel-eng.toml")
    assert tap.drain() == []  # messaging off: recorded only

    crash = subprocess.run([sys.executable, str(CRASH), str(cfg), str(out), bodies.DROP_STAGED],
                           capture_output=True, text=True, timeout=120,
                           env={**__import__("os").environ, "FEDORA_MESSAGING_CONF": str(broker.conf)})
    assert crash.returncode == -9, crash.stderr
    rows = outbox(out, broker.conf, cfg)
    drop = ORDER.index(bodies.DROP_STAGED)
    # One batch, confirmed up to the drop's message, never marked: all of it is sent again.
    assert [r["state"] for r in rows] == ["pending"] * (drop + 2)
    assert flush(cfg, out, broker.conf)["sent"] == drop + 2

    got = tap.drain()
    staged = [m for m in got if m.topic.endswith(bodies.DROP_STAGED)]
    assert len(staged) == 2 and staged[0].id == staged[1].id == rows[drop]["id"]
    assert len({m.id for m in got}) == len(ORDER)

    wait_for(lambda: "already synced" in consumer.text(), 60, "the consumer to see the resend")
    assert sync_runs(log) == [("sync", rows[drop]["id"], rows[drop]["body"]["mirror_path"])]
    assert broker.queue_depth(QUEUE) == 0


def test_a_failing_sync_is_requeued_and_retried_and_never_repeated(tmp_path, broker, consumers):
    argv, log = sync_command(tmp_path / "sync", failures=2)
    consumer = _consumer(tmp_path, broker, argv).start(broker, QUEUE)
    consumers.append(consumer)
    out = tmp_path / "out"
    compose(write_config(tmp_path / "off.toml", enabled=False), out, broker.conf)
    cfg = write_config(tmp_path / "rel-eng.toml")
    assert flush(cfg, out, broker.conf)["sent"] == len(ORDER)

    wait_for(lambda: any(r[0] == "sync" for r in sync_runs(log)), 60, "the sync to succeed")
    staged = [r for r in outbox(out, broker.conf, cfg) if r["topic"] == bodies.DROP_STAGED][0]
    path = staged["body"]["mirror_path"]
    assert sync_runs(log) == [("fail", staged["id"], path), ("fail", staged["id"], path),
                              ("sync", staged["id"], path)]
    assert "requeued" in consumer.text()

    # The same message delivered again (a resend): acknowledged without a second sync.
    db = sqlite3.connect(out / "rel-eng.db")
    with db:
        db.execute("UPDATE outbox SET sent_at = NULL WHERE message_id = ?", (staged["id"],))
    db.close()
    assert flush(cfg, out, broker.conf)["sent"] == 1
    wait_for(lambda: "already synced" in consumer.text(), 60, "the consumer to see the resend")
    assert [r[0] for r in sync_runs(log)] == ["fail", "fail", "sync"]
    assert broker.queue_depth(QUEUE) == 0


@pytest.fixture
def redis_server(tmp_path):
    from distributed_support import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_a_distributed_compose_sends_the_same_messages_as_a_local_one(tmp_path, broker,
                                                                       redis_server, monkeypatch):
    from distributed_support import Worker
    from distributed_support import write_config as write_celery_config

    from rel_eng.distributed.canvas import wait_compose

    for var in ("REL_ENG_BROKER_URL", "REL_ENG_RESULT_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FEDORA_MESSAGING_CONF", str(broker.conf))  # the workers' too
    tap = broker.tap()
    cfg = write_celery_config(
        tmp_path / "rel-eng.toml", redis_server.url,
        extra="\n[messaging]\nenabled = true\npublish_timeout_s = 2\n")

    local = compose(cfg, tmp_path / "local", broker.conf)
    sent_locally = tap.drain()
    worker = Worker("a", cfg, tmp_path / "logs", concurrency=2).start()
    try:
        proc = rel_eng([*COMPOSE, "--queue", "--config", str(cfg), "--output",
                        str(tmp_path / "dist")], broker.conf)
        topdir = Path(proc.stdout.split()[-1])
        assert topdir.name == local.topdir.name
        assert wait_compose(topdir, 120, poll=0.2) == "FINISHED"
        got: list = []
        # The last messages may still be on their way from the worker when STATUS is written.
        wait_for(lambda: got.extend(tap.drain()) or len(got) >= len(sent_locally), 180,
                 "every message of the distributed compose")
    finally:
        worker.stop()

    # images.json holds each image's mtime, which differs by design between two composes, and the
    # drop's MANIFEST records images.json's digest: those two are compared on disk below.
    by_time = ("metadata/images.json", "metadata/MANIFEST")

    def comparable(m):
        body = {k: v for k, v in m.body.items() if k != "location"}
        if "files" in body:
            body["files"] = [{**f, "sha256": "", "size": 0} if f["path"] in by_time
                             else f for f in body["files"]]
        return m.id, m.topic, json.dumps(body, sort_keys=True)

    # The same announcements (same ids, topics, bodies); images finish in any order on workers.
    assert sorted(map(comparable, got)) == sorted(map(comparable, sent_locally))
    assert [m.topic for m in got][0] == [m.topic for m in got][-1] == f"{PREFIX}.{bodies.STATUS}"
    assert [m.body["status"] for m in (got[0], got[-1])] == ["STARTED", "FINISHED"]
    assert got[-2].topic == f"{PREFIX}.{bodies.DROP_STAGED}"
    assert got[-2].body["mirror_path"] == sent_locally[-2].body["mirror_path"]
    # Both MANIFESTs record the same digest for every file but images.json, whose mtimes differ.
    manifests = [(root / "mirror" / got[-2].body["mirror_path"] / "metadata" / "MANIFEST")
                 .read_text().splitlines() for root in (tmp_path / "local", tmp_path / "dist")]
    assert len(manifests[0]) == len(manifests[1]) > 1
    differ = [line for line in manifests[0] if line not in manifests[1]]
    assert all(line.startswith("SHA256 (metadata/images.json) = ") for line in differ), differ



def test_fedora_messagings_own_consumer_runs_the_mirror_sync_class(tmp_path, broker, consumers):
    argv, log = sync_command(tmp_path / "sync")
    rel_cfg = write_config(tmp_path / "consumer.toml", sync=argv)
    store = tmp_path / "consumer-store"
    queue = "fm-mirror-sync"
    conf = broker.write_conf(tmp_path / "fm-consumer.toml", 5672)
    conf.write_text(conf.read_text().replace("[consumer_config]\n", "") + (
        f'[consumer_config]\nrel_eng_config = "{rel_cfg}"\noutput = "{store}"\n'
        f'[queues."{queue}"]\ndurable = true\nauto_delete = false\nexclusive = false\n'
        f'arguments = {{}}\n[[bindings]]\nqueue = "{queue}"\nexchange = "amq.topic"\n'
        f'routing_keys = ["{PREFIX}.{bodies.DROP_STAGED}"]\n'))
    consumer = Consumer(rel_cfg, store, conf, tmp_path / "fm-consumer.log")
    consumer.argv = [str(Path(sys.executable).parent / "fedora-messaging"), "--conf", str(conf),
                     "consume", "--callback=rel_eng.messaging.consumer:MirrorSyncConsumer"]
    consumers.append(consumer.start(broker, queue))

    out = tmp_path / "out"
    compose(write_config(tmp_path / "off.toml", enabled=False), out, broker.conf)
    assert flush(write_config(tmp_path / "rel-eng.toml"), out, broker.conf)["sent"] == len(ORDER)
    wait_for(lambda: sync_runs(log), 60, "the sync")
    staged = [r for r in outbox(out, broker.conf, tmp_path / "rel-eng.toml")
              if r["topic"] == bodies.DROP_STAGED][0]
    assert sync_runs(log) == [("sync", staged["id"], staged["body"]["mirror_path"])]
