"""Hostile messages and a hostile broker, on a real RabbitMQ with a real `rel-eng consume`.

A "drop staged" body that fails its schema is rejected into the dead-letter queue and the
consumer keeps running; a broker that refuses the login or is not there is one line, never a
Twisted traceback, and the compose still finishes with its messages pending.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pika
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from messaging_support import (PREFIX, Consumer, amqp_user, broker, free_port,  # noqa: E402,F401
                               rel_eng, sync_command, sync_runs, wait_for)
from test_messages_bus import COMPOSE, QUEUE, consumers, write_config  # noqa: E402,F401

from rel_eng.messaging import bodies  # noqa: E402

DEAD = "rel-eng-mirror-sync-dead"
TOPIC = f"{PREFIX}.{bodies.DROP_STAGED}"
VALID = {"compose_id": "Fedora-Cloud-19-20130528.0", "label": "Beta-1.1",
         "release_version": "19", "weekly": False, "mirror_path": "alt/stage/19_Beta-1.1",
         "files": [{"path": "Cloud/x86_64/images/a.qcow2", "size": 3, "sha256": "a" * 64}],
         "checksum_files": []}


def publish(broker, body, *, schema: str | None = "base.message", raw: bytes | None = None) -> str:
    """A message as a careless or hostile publisher sends it: fedora-messaging's base schema
    (which accepts any object), or none at all."""
    mid = str(uuid.uuid4())
    headers = {"fedora_messaging_severity": 20}
    if schema:
        headers["fedora_messaging_schema"] = schema
    conn = broker.connection()
    try:
        conn.channel().basic_publish(
            "amq.topic", TOPIC, raw if raw is not None else json.dumps(body).encode(),
            pika.BasicProperties(message_id=mid, headers=headers, content_encoding="utf-8",
                                 content_type="application/json", delivery_mode=2))
    finally:
        conn.close()
    return mid


HOSTILE = [
    {k: v for k, v in VALID.items() if k != "compose_id"},  # the KeyError of old
    {**VALID, "compose_id": ""},
    {**VALID, "compose_id": 7},
    {**VALID, "mirror_path": "../../etc"},
    {**VALID, "mirror_path": "/srv/mirror"},
    {**VALID, "mirror_path": "alt/../../x"},
    {**VALID, "files": []},
    {**VALID, "files": [{"path": "x", "size": -1, "sha256": "z"}]},
    {**VALID, "label": ["Beta"]},
    {"mirror_path": "alt/x"},
    {"compose_id": "\x1b[2J" * 500},
    {},
]


def test_bodies_that_fail_their_schema_are_dead_lettered_and_the_consumer_goes_on(
        tmp_path, broker, consumers):
    argv, log = sync_command(tmp_path / "sync")
    cfg = write_config(tmp_path / "consumer.toml", sync=argv,
                       extra=f'dead_letter_queue = "{DEAD}"\n')
    consumer = Consumer(cfg, tmp_path / "store", broker.conf, tmp_path / "consumer.log")
    consumers.append(consumer.start(broker, QUEUE))
    assert broker.queue_depth(DEAD) == 0  # declared by the consumer before it subscribed

    bad = [publish(broker, body) for body in HOSTILE]
    bad.append(publish(broker, HOSTILE[0], schema=None))  # no schema header at all
    bad.append(publish(broker, None, raw=b"\xff\xfe not json"))  # fedora-messaging's own drop
    bad.append(publish(broker, [1, 2]))  # not an object
    good = publish(broker, VALID)

    wait_for(lambda: sync_runs(log), 60, "the valid message's sync")
    wait_for(lambda: broker.queue_depth(DEAD) == len(bad), 60, "every bad message dead-lettered")
    assert consumer.proc.poll() is None, consumer.text()  # still consuming
    assert sync_runs(log) == [("sync", good, VALID["mirror_path"])]
    assert broker.queue_depth(QUEUE) == 0
    text = consumer.text()
    assert "Traceback" not in text and "\x1b" not in text
    assert len(bad) == len(HOSTILE) + 3
    for mid in bad[:len(HOSTILE) + 1]:  # non-empty: HOSTILE is a non-empty list; ours: each logged with its id and the reason
        assert f"message {mid} rejected" in text, text

    import sqlite3
    db = sqlite3.connect(tmp_path / "store" / "rel-eng.db")
    claimed = {r[0]: r[1] for r in db.execute("SELECT message_id, state FROM consumed_messages")}
    db.close()
    assert claimed == {good: "done"}  # nothing claimed for a rejected message


def test_without_a_dead_letter_queue_a_bad_body_is_dropped_not_requeued(tmp_path, broker,
                                                                        consumers):
    argv, log = sync_command(tmp_path / "sync")
    cfg = write_config(tmp_path / "consumer.toml", sync=argv)
    consumer = Consumer(cfg, tmp_path / "store", broker.conf, tmp_path / "consumer.log")
    consumers.append(consumer.start(broker, QUEUE))
    bad = publish(broker, HOSTILE[0])
    good = publish(broker, VALID)
    wait_for(lambda: sync_runs(log), 60, "the valid message's sync")
    assert consumer.proc.poll() is None and broker.queue_depth(QUEUE) == 0
    assert f"message {bad} rejected" in consumer.text()
    assert consumer.text().count(f"message {bad} rejected") == 1  # not redelivered
    assert sync_runs(log) == [("sync", good, VALID["mirror_path"])]


def _one_error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr and "Unhandled error" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_broker_that_refuses_the_login_is_one_line_everywhere(tmp_path, broker):
    refused = tmp_path / "refused.toml"
    broker.write_conf(refused, 5672)
    refused.write_text(refused.read_text().replace(broker.password, "not-the-password"))
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "rel-eng.toml", sync=["true"])

    proc = rel_eng([*COMPOSE, "--config", str(cfg), "--output", str(out)], refused, check=False)
    assert proc.returncode == 0 and proc.stdout.split()[-2] == "FINISHED", proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if " WARNING " in ln or " ERROR " in ln
                or " CRITICAL " in ln]
    assert len(warnings) == 1 and "pending" in warnings[0], proc.stderr
    assert "Traceback" not in proc.stderr and "not-the-password" not in proc.stderr
    rows = json.loads(rel_eng(["messages", "--json", "--config", str(cfg), "--output", str(out)],
                              refused).stdout)
    assert rows and {r["state"] for r in rows} == {"pending"}

    proc = rel_eng(["messages", "flush", "--config", str(cfg), "--output", str(out)], refused,
                   check=False)
    assert proc.returncode != 0
    assert "pending" in _one_error_line(proc)

    proc = rel_eng(["consume", "--config", str(cfg), "--output", str(tmp_path / "c")], refused,
                   check=False, timeout=60)
    assert proc.returncode == 2
    assert "refused the login" in _one_error_line(proc)
    assert not (tmp_path / "c").exists()  # nothing written


def test_consume_against_a_port_with_no_broker_is_one_line_and_exit_2(tmp_path, broker):
    nobody = broker.write_conf(tmp_path / "nobody.toml", free_port())
    cfg = write_config(tmp_path / "rel-eng.toml", sync=["true"])
    proc = rel_eng(["consume", "--config", str(cfg), "--output", str(tmp_path / "c")], nobody,
                   check=False, timeout=60)
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert "unreachable" in line and "Connection refused" in line
    assert broker.password not in proc.stderr
    assert not (tmp_path / "c").exists()
