"""The release's message on a real RabbitMQ: it waits in the outbox while the broker is down,
is sent valid against its schema once it is up, and the mirror sync consumer syncs the released
tree once, as it syncs a staged drop."""

from __future__ import annotations

import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

from messaging_support import (PREFIX, amqp_user, broker, free_port, rel_eng,  # noqa: E402,F401
                               sync_command, sync_runs, wait_for)
from test_messages_bus import (QUEUE, _consumer, compose, consumers, flush,  # noqa: E402,F401
                               outbox, write_config)

from rel_eng.messaging import bodies  # noqa: E402


def test_release_message_waits_for_the_broker_then_is_sent_and_synced_once(tmp_path, broker,
                                                                            consumers):
    out = tmp_path / "out"
    off = write_config(tmp_path / "off.toml", enabled=False)
    c = compose(off, out, broker.conf)
    cfg = write_config(tmp_path / "rel-eng.toml")
    assert flush(cfg, out, broker.conf)["sent"] > 0  # the compose's own messages, out of the way
    tap = broker.tap()

    down = broker.write_conf(tmp_path / "down.toml", free_port())  # nothing listens there
    proc = rel_eng(["release", c.plan.compose_id, "--allow-unverified", "--by", "bob",
                    "--config", str(cfg), "--output", str(out)], down)
    assert proc.stdout.startswith(f"{c.plan.label} ({c.plan.compose_id}) released into ")
    pending = [r for r in outbox(out, broker.conf, cfg) if r["state"] == "pending"]
    assert [r["topic"] for r in pending] == [bodies.RELEASE_PUBLISHED]
    assert tap.drain() == []

    argv, log = sync_command(tmp_path / "sync")
    consumers.append(_consumer(tmp_path, broker, argv).start(broker, QUEUE))
    assert flush(cfg, out, broker.conf)["sent"] == 1
    got = tap.drain()  # validated against ReleasePublishedV1 by fedora-messaging
    assert [(m.topic, m.id) for m in got] == [(f"{PREFIX}.{bodies.RELEASE_PUBLISHED}",
                                               pending[0]["id"])]
    body = got[0].body
    assert (body["label"], body["released_by"], body["mirror_path"]) == \
        (c.plan.label, "bob", "fedora/linux/releases/test/19_Beta/Cloud")
    assert got[0].agent_name == "bob"
    wait_for(lambda: sync_runs(log), 60, "the mirror sync of the release")
    assert sync_runs(log) == [("sync", pending[0]["id"], body["mirror_path"])]
