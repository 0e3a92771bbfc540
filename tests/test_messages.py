"""The outbox, the schemas, the consumer's once-per-id logic and bad input, without a broker.

What crosses the network (publishing, consuming) is tested against RabbitMQ in
test_messages_bus.py; here the sender and the sync command are injected.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests import oracles

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_support import store_url  # noqa: E402,F401

import rel_eng_messages  # noqa: E402
from rel_eng import compose  # noqa: E402
from rel_eng.config import load_config  # noqa: E402
from rel_eng.errors import CommandFailed, ConfigError  # noqa: E402
from rel_eng.messaging import bodies  # noqa: E402
from rel_eng.messaging.consumer import BUSY, DONE, RUN, HandledIds, MirrorSync  # noqa: E402
from rel_eng.messaging.publisher import PublishFailed, redacted_amqp  # noqa: E402
from rel_eng.config.messaging import MessagingConfig  # noqa: E402
from rel_eng.store import outbox  # noqa: E402
from rel_eng.store.engine import open_engine  # noqa: E402
from rel_eng.store.recorder import StoreRecorder  # noqa: E402

DATE = dt.date(2013, 5, 28)
REL_ENG = [sys.executable, "-m", "rel_eng"]


class FakeSender:
    """Records sends; fails on the n-th call when asked to."""

    resting = False

    def __init__(self, fail_at: int | None = None):
        self.sent: list[tuple[str, str]] = []
        self.fail_at = fail_at

    def send(self, topic, body, message_id):
        if self.fail_at is not None and len(self.sent) == self.fail_at:
            raise PublishFailed("sending failed: PublishTimeout: no broker")
        self.sent.append((topic, message_id))


def _recorded(url: str, out: Path):
    rec = StoreRecorder(url)
    return compose.run_compose(load_config(), out, "19", "Beta", DATE, recorder=rec), rec


@pytest.fixture
def recorded(tmp_path, store_url):  # noqa: F811
    """A finished compose whose messages are in the outbox, on SQLite and on PostgreSQL."""
    c, rec = _recorded(store_url, tmp_path / "out")
    yield c, rec
    rec.close()


@pytest.fixture
def recorded_sqlite(tmp_path):
    """The same in the default store, <output>/rel-eng.db, which the CLI finds by --output."""
    out = tmp_path / "out"
    c, rec = _recorded(f"sqlite:///{out.resolve() / 'rel-eng.db'}", out)
    yield c, rec
    rec.close()


def test_a_compose_records_its_messages_with_the_changes_they_announce(recorded):
    c, rec = recorded
    rows = outbox.listing(rec.engine)
    assert [r["topic"] for r in rows] == [bodies.STATUS] + [bodies.IMAGE_BUILT] * 4 + \
        [bodies.BOOT_TEST] * 4 + [bodies.DROP_STAGED, bodies.STATUS]
    assert {r["state"] for r in rows} == {"pending"}  # messaging is off: recorded, not sent
    for r in rows:  # every body valid against its schema
        jsonschema.validate(r["body"], rel_eng_messages.BY_TOPIC[r["topic"]].body_schema)
    # Re-deriving inserts nothing: the ids are stable.
    c.set_status(compose.FINISHED, c.recorder)
    again = outbox.listing(rec.engine)
    assert len(again) == len(rows) + 1 and again[-1]["body"]["status"] == "FINISHED"
    assert [r["id"] for r in again[:-1]] == [r["id"] for r in rows]
    assert len({r["id"] for r in again}) == len(again)


def test_synthetic_images_are_announced_as_skipped_by_the_boot_test_never_passed(recorded):
    c, rec = recorded
    rows = outbox.listing(rec.engine, topic=bodies.BOOT_TEST)
    assert sorted(r["body"]["nvra"] for r in rows) == sorted(j.nvra for j in c.plan.images)
    for r in rows:
        jsonschema.validate(r["body"], rel_eng_messages.BootTestV1.body_schema)
        assert r["body"]["verdict"] == "skipped"
        assert r["body"]["reason"] == "skipped: not bootable" and r["body"]["checks"] == []
        # the disk the gate looked at: the image's qcow2, where the README's layout puts it,
        # with the sha256 sha256sum would print for it
        job = next(j for j in c.plan.images if j.nvra == r["body"]["nvra"])
        assert r["body"]["path"] == f"compose/Cloud/{job.arch}/images/{job.nvra}.qcow2"
        assert r["body"]["sha256"] == oracles.sha256(c.topdir / r["body"]["path"])
    # Recorded with the step, in the same transaction: the store's step rows say skipped too.
    with rec.engine.connect() as conn:
        from rel_eng.store import schema
        states = {row.step: row.state for row in conn.execute(
            schema.steps.select().where(schema.steps.c.step.like("boottest:%")))}
    assert states == {f"boottest:{j.key}": "skipped" for j in c.plan.images}


def _fake_verdict(c, job_key: str, state: str, reason: str, checks: list[dict],
                  platform: dict | None = None) -> None:
    """A boot verdict as the gate saves it, and its manifest step, without booting."""
    path = c.topdir / "work" / "boottest" / f"{job_key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"nvra": c.job(job_key).nvra,
                                "status": "pass" if state == "done" else "fail",
                                "reason": reason, "checks": checks, "accel": "tcg",
                                **({"platform": platform} if platform else {})}))
    compose.recorded(c, c.recorder).set_step(f"boottest:{job_key}", "d" * 16 + state, state,
                                             reason or "pass")


def test_pass_and_fail_verdicts_give_bodies_valid_against_the_schema(recorded_sqlite):
    c, rec = recorded_sqlite
    good, bad = sorted(j.key for j in c.plan.images)[:2]
    ok = [{"name": "ssh", "status": "pass", "evidence": "uname ok", "message": ""}]
    _fake_verdict(c, good, "done", "", ok, {"name": "ec2", "label": "ec2 (IMDSv2)", "imds": "v2"})
    _fake_verdict(c, bad, "failed", "cloud-init did not finish",
                  ok + [{"name": "cloud-init", "status": "fail", "evidence": "",
                         "message": "status: error"},
                        {"name": "sudo", "status": "not-run", "evidence": "", "message": "no ssh"}])
    by_key = {}
    for r in outbox.listing(rec.engine, topic=bodies.BOOT_TEST):
        jsonschema.validate(r["body"], rel_eng_messages.BootTestV1.body_schema)
        by_key.setdefault(r["body"]["nvra"], []).append(r["body"])
    passed = by_key[c.job(good).nvra][-1]
    failed = by_key[c.job(bad).nvra][-1]
    assert passed["verdict"] == "passed" and passed["reason"] == ""
    assert passed["checks"] == [{"name": "ssh", "passed": True, "detail": "uname ok"}]
    assert failed["verdict"] == "failed" and failed["reason"] == "cloud-init did not finish"
    assert [(ch["name"], ch["passed"]) for ch in failed["checks"]] == [
        ("ssh", True), ("cloud-init", False), ("sudo", False)]
    assert failed["checks"][1]["detail"] == "status: error"
    # The same verdict recorded again (a rerun reusing it) sends nothing new.
    before = len(outbox.listing(rec.engine, topic=bodies.BOOT_TEST))
    _fake_verdict(c, good, "done", "", ok)
    assert len(outbox.listing(rec.engine, topic=bodies.BOOT_TEST)) == before
    # A verdict that is neither pass, fail nor skipped (a step still running) sends nothing.
    assert bodies.boot_test(c, good, {"state": "running", "digest": "x"}, None, []) is None
    # The platform the image was booted as reaches the message, the store and `rel-eng status`.
    assert passed["platform"] == "ec2 (IMDSv2)" and "platform" not in failed
    out = c.topdir.parent
    shown = subprocess.run([sys.executable, "-m", "rel_eng", "status", c.plan.compose_id,
                            "--output", str(out), "--json"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    images = {i["job_key"]: i for i in json.loads(shown.stdout)["images"]}
    assert images[good]["boot"] == {"platform": "ec2 (IMDSv2)", "accel": "tcg"}
    assert [k for k, i in images.items() if i["boot"] is None] == sorted(set(images) - {good})
    text = subprocess.run([sys.executable, "-m", "rel_eng", "status", c.plan.compose_id,
                           "--output", str(out)], capture_output=True, text=True)
    [line] = [ln for ln in text.stdout.splitlines() if ln.strip().startswith(good + " ")]
    assert "boottest done as ec2 (IMDSv2) (pass)" in line


def test_boot_test_ids_are_keyed_by_compose_image_and_verdict(recorded_sqlite):
    c, _rec = recorded_sqlite
    key = c.plan.images[0].key
    a = bodies.boot_test(c, key, {"state": "done", "digest": "1"}, None, [])
    assert a.message_id == bodies.boot_test(c, key, {"state": "done", "digest": "1"}, None,
                                            []).message_id
    others = [bodies.boot_test(c, key, {"state": "failed", "digest": "1"}, None, []),
              bodies.boot_test(c, key, {"state": "done", "digest": "2"}, None, []),
              bodies.boot_test(c, c.plan.images[1].key, {"state": "done", "digest": "1"}, None,
                               []),
              bodies.boot_test(dataclasses.replace(c, plan=dataclasses.replace(
                  c.plan, compose_id=c.plan.compose_id + "x")), key,
                  {"state": "done", "digest": "1"}, None, [])]
    assert len({a.message_id} | {o.message_id for o in others}) == 5
    # A damaged verdict file or check list is read as no checks, never as a crash.
    body = bodies.boot_test(c, key, {"state": "failed", "digest": "1", "reason": "x"},
                            {"checks": ["junk", {"status": "pass"}, None]}, []).body
    jsonschema.validate(body, rel_eng_messages.BootTestV1.body_schema)
    assert body["checks"] == []


def test_ami_messages_keep_the_uploaders_body_and_are_recorded_once(recorded_sqlite):
    c, rec = recorded_sqlite
    job = next(j for j in c.plan.images if j.image_type == "ec2" and j.arch == "x86_64")
    ec2 = {"images": {job.nvra: {"arch": "x86_64", "subvariant": job.subvariant,
                                 "regions": {"us-east-1": "ami-1", "eu-west-1": "ami-2"},
                                 "snapshots": {}, "public": True}}}
    rec.amis(c, ec2)
    rec.amis(c, ec2)
    amis = outbox.listing(rec.engine, topic=bodies.AMI_PUBLISHED)
    assert len(amis) == 1
    assert amis[0]["body"] == {"architecture": "x86_64", "compose_id": c.plan.compose_id,
                               "image_name": job.nvra, "release": 19,
                               "regions": {"eu-west-1": "ami-2", "us-east-1": "ami-1"},
                               "subvariant": "Cloud_Base_EC2"}


def test_a_region_block_public_access_kept_private_is_neither_announced_nor_public(recorded_sqlite):
    from sqlalchemy import select

    from rel_eng.store import schema

    c, rec = recorded_sqlite
    job = next(j for j in c.plan.images if j.image_type == "ec2" and j.arch == "x86_64")
    ec2 = {"images": {job.nvra: {"arch": "x86_64", "subvariant": job.subvariant,
                                 "regions": {"us-east-1": "ami-1", "eu-west-1": "ami-2"},
                                 "visibility": {"us-east-1": "public", "eu-west-1": "blocked"},
                                 "snapshots": {}, "public": False}}}
    rec.amis(c, ec2)
    amis = outbox.listing(rec.engine, topic=bodies.AMI_PUBLISHED)
    assert [a["body"]["regions"] for a in amis] == [{"us-east-1": "ami-1"}]
    with rec.engine.connect() as conn:
        rows = conn.execute(select(schema.amis.c.region, schema.amis.c.public)).all()
    assert sorted(map(tuple, rows)) == [("eu-west-1", False), ("us-east-1", True)]


def test_ami_messages_go_out_on_the_uploaders_per_image_topic(recorded_sqlite):
    from fedora_image_uploader_messages.publish import AwsPublishedV1

    from rel_eng.messaging.publisher import build_message

    c, rec = recorded_sqlite
    ec2 = {"images": {j.nvra: {"arch": j.arch, "subvariant": j.subvariant,
                               "regions": {"us-east-1": f"ami-{j.arch}"}}
                      for j in c.plan.images if j.image_type == "ec2"}}
    rec.amis(c, ec2)
    rows = outbox.listing(rec.engine, topic=bodies.AMI_PUBLISHED)
    sent = [build_message(r["topic"], r["body"], r["id"]) for r in rows]
    assert sorted(m.topic for m in sent) == [
        f"fedora_image_uploader.published.v1.aws.Cloud_Base_EC2.19.{arch}"
        for arch in ("i686", "x86_64")]
    for m in sent:  # the uploader's own class accepts what we send, on the topic we send it
        AwsPublishedV1(body=m.body, topic=m.topic).validate()
        assert m.id in {r["id"] for r in rows}
        assert build_message(m.topic, m.body, m.id).topic == m.topic  # a full topic stays


def test_a_drop_that_differs_from_the_recorded_digests_is_not_announced(recorded_sqlite, caplog):
    c, rec = recorded_sqlite
    drop = c.topdir.parent / "mirror" / c.plan.mirror_path
    before = len(outbox.listing(rec.engine, topic=bodies.DROP_STAGED))
    image = next(drop.rglob("*.qcow2"))
    rel = str(image.relative_to(drop))
    rec.staged(dataclasses.replace(c, plan=dataclasses.replace(c.plan, mirror_path="alt/other")),
               drop, {rel: "0" * 64})
    assert len(outbox.listing(rec.engine, topic=bodies.DROP_STAGED)) == before
    assert "not announcing" in caplog.text


def test_flush_sends_in_order_and_stops_at_the_first_failure(recorded):
    c, rec = recorded
    ids = [r["id"] for r in outbox.listing(rec.engine)]
    failing = FakeSender(fail_at=2)
    result = outbox.Flusher(rec.engine, failing).flush()
    assert (result.sent, result.pending) == (2, 9) and "PublishTimeout" in result.error
    rows = outbox.listing(rec.engine)
    assert [r["state"] for r in rows] == ["sent", "sent"] + ["pending"] * 9
    assert rows[2]["attempts"] == 1 and "PublishTimeout" in rows[2]["last_error"]
    ok = FakeSender()
    assert outbox.Flusher(rec.engine, ok).flush().sent == 9
    assert [mid for _, mid in failing.sent + ok.sent] == ids  # each once, in order
    assert outbox.Flusher(rec.engine, FakeSender()).flush().sent == 0


def test_a_live_flusher_holds_the_lease_and_a_dead_one_gives_way(recorded_sqlite):
    c, rec = recorded_sqlite
    first = outbox.Flusher(rec.engine, FakeSender())
    with rec.engine.begin() as conn:
        assert first._acquire(conn)
    other = outbox.Flusher(rec.engine, FakeSender())
    assert other.flush().busy and other.sender.sent == []
    # A holder whose process is gone (killed mid-flush) is taken over at once.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    with rec.engine.begin() as conn:
        conn.execute(outbox.L.update().values(holder=f"{socket.gethostname()}:{dead}:x"))
    result = other.flush()
    assert not result.busy and result.sent == 11


def test_the_consumer_runs_its_command_once_per_id_and_nacks_a_failure(tmp_path, store_url):  # noqa: F811
    from fedora_messaging.exceptions import Drop, Nack

    engine = open_engine(store_url)
    runs: list[list[str]] = []
    waits: list[float] = []
    outcomes = iter([CommandFailed(["rsync"], 23, "rsync: connection refused"), None, None])

    def run(argv, timeout):
        runs.append(argv)
        exc = next(outcomes)
        if exc:
            raise exc

    cfg = MessagingConfig(sync_command=("rsync", "-a", "/srv/{mirror_path}/", "m::{label}"),
                          retry_delay_s=5)
    sync = MirrorSync(cfg, HandledIds(engine), run=run, sleep=waits.append)

    class Msg:
        topic = f"org.example.{bodies.DROP_STAGED}"
        id = "m-1"
        body = {"compose_id": "C", "label": "Beta-1.1", "mirror_path": "alt/stage/19_Beta-1.1",
                "files": [{"path": "a.qcow2", "size": 1, "sha256": "a" * 64}],
                "checksum_files": []}

    with pytest.raises(Nack):
        sync(Msg())  # the command failed: requeue, after the retry delay
    assert waits == [5] and HandledIds(engine).state("m-1") is None
    sync(Msg())  # redelivered: runs again, succeeds
    sync(Msg())  # delivered twice: acknowledged, not run
    assert runs == [["rsync", "-a", "/srv/alt/stage/19_Beta-1.1/", "m::Beta-1.1"]] * 2
    assert HandledIds(engine).state("m-1") == "done"

    class Hostile(Msg):
        id = "m-2"
        body = {**Msg.body, "mirror_path": "../../etc"}

    with pytest.raises(Drop):
        sync(Hostile())
    assert len(runs) == 2
    other = type("Other", (), {"topic": "x.rel_eng.compose.status.change", "id": "m-3", "body": {}})
    sync(other())  # not a drop: acknowledged and ignored
    engine.dispose()


def test_any_failure_after_the_claim_gives_it_back_and_requeues(tmp_path, store_url):  # noqa: F811
    """Not only a failing command: a broken sync_command template, a crashing runner, a store
    that fails to mark the message done. The consumer never exits on one message."""
    from fedora_messaging.exceptions import Drop, Nack

    engine = open_engine(store_url)
    body = {"compose_id": "C", "label": None, "mirror_path": "alt/x", "checksum_files": [],
            "files": [{"path": "a", "size": 1, "sha256": "a" * 64}]}
    failures = [KeyError("mirror_path"), OSError(7, "Argument list too long"),
                RuntimeError("runner bug"), None]
    waits: list[float] = []

    def run(argv, timeout):
        exc = failures.pop(0)
        if exc:
            raise exc

    cfg = MessagingConfig(sync_command=("true", "{mirror_path}"), retry_delay_s=3)
    handled = HandledIds(engine)
    sync = MirrorSync(cfg, handled, run=run, sleep=waits.append)
    msg = type("Msg", (), {"topic": f"p.{bodies.DROP_STAGED}", "id": "m-9", "body": body})()
    for _ in range(3):
        with pytest.raises(Nack):
            sync(msg)
        assert handled.state("m-9") is None  # released: the next delivery may claim it
    sync(msg)
    assert handled.state("m-9") == "done" and waits == [3, 3, 3]

    # The store failing to record "done" after the sync: released and requeued, not a crash.
    broken = HandledIds(engine)
    broken.done = lambda mid: (_ for _ in ()).throw(RuntimeError("database is locked"))
    failures.append(None)
    again = type("Again", (), {"topic": msg.topic, "id": "m-11", "body": body})()
    with pytest.raises(Nack):
        MirrorSync(cfg, broken, run=run, sleep=waits.append)(again)
    assert handled.state("m-11") is None
    # A body that fails its schema is never claimed: no claim can be left behind.
    for bad in ({**body, "compose_id": None}, "a string", None, {**body, "files": "x"}):
        hostile = type("Hostile", (), {"topic": msg.topic, "id": "m-10", "body": bad})()
        with pytest.raises(Drop):
            sync(hostile)
    assert handled.state("m-10") is None
    for bad_id in ("", None, "x" * 65, "id\nwith a newline", "\x1b[2J"):
        hostile = type("BadId", (), {"topic": msg.topic, "id": bad_id, "body": body})()
        with pytest.raises(Drop):
            sync(hostile)
    engine.dispose()


def test_a_claim_held_by_a_live_consumer_is_busy_and_a_dead_ones_is_taken_over(store_url):  # noqa: F811
    engine = open_engine(store_url)
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)]
    a = HandledIds(engine, stale_after_s=60, clock=lambda: now[0])
    b = HandledIds(engine, stale_after_s=60, clock=lambda: now[0])
    b.holder = "elsewhere.example.org:1"
    assert b.claim("m", "t") == RUN
    assert a.claim("m", "t") == BUSY  # another host, fresh: trusted
    now[0] += dt.timedelta(seconds=61)
    assert a.claim("m", "t") == RUN  # stale: taken over
    a.done("m")
    assert b.claim("m", "t") == DONE
    engine.dispose()


def test_schema_classes_render_and_refuse_bad_bodies():
    body = {"compose_id": "C", "label": None, "mirror_path": "alt/cloud/weekly/Rawhide/C",
            "files": [{"path": "Cloud/x86_64/images/a.qcow2", "size": 3, "sha256": "a" * 64}],
            "checksum_files": []}
    msg = rel_eng_messages.DropStagedV1(body=body)
    msg.validate()
    assert msg.app_name == "rel-eng" and msg.packages == [] and msg.usernames == []
    assert msg.agent_name is None
    assert "alt/cloud/weekly/Rawhide/C" in msg.summary and "a.qcow2" in str(msg)
    for bad in ({**body, "mirror_path": "/abs"}, {**body, "files": []},
                {k: v for k, v in body.items() if k != "checksum_files"},
                {**body, "files": [{"path": "x", "size": -1, "sha256": "a" * 64}]}):
        from fedora_messaging.exceptions import ValidationError
        with pytest.raises((jsonschema.ValidationError, ValidationError)):
            rel_eng_messages.DropStagedV1(body=bad).validate()
    status = rel_eng_messages.ComposeStatusChangeV1(body={
        "compose_id": "C", "status": "DOOMED", "location": "/x", "compose_date": "20130528",
        "compose_type": "production", "compose_respin": 0, "compose_label": "Beta-1.1",
        "release_short": "Fedora-Cloud", "release_version": "19", "reason": "ec2-x86_64: boom",
        "agent": "releng"})
    status.validate()
    assert status.agent_name == "releng" and status.usernames == ["releng"]
    assert "DOOMED" in status.summary and "boom" in str(status)


def test_amqp_urls_are_redacted():
    assert redacted_amqp("amqps://u:s3cret@h:5671/v") == "amqps://u:***@h:5671/v"
    assert redacted_amqp("amqp://h/v") == "amqp://h/v"


# --- bad input: one line, exit 2, nothing written ---

def cli(args, tmp_path, env=None):
    return subprocess.run([*REL_ENG, *args], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("table, key", [
    ('enabled = "yes"', "messaging.enabled"),
    ('sync_command = "rsync -a src dst"', "messaging.sync_command"),
    ('sync_command = ["rsync", "{mirror}"]', "messaging.sync_command"),
    ('sync_command = ["rsync", "{mirror_path"]', "messaging.sync_command"),
    ("publish_timeout_s = 0", "messaging.publish_timeout_s"),
    ('config_file = "absent.toml"', "messaging.config_file"),
    ('location_url = "ftp://x"', "messaging.location_url"),
    ('broker = "amqp://x"', "messaging.broker"),
])
def test_an_invalid_messaging_table_is_one_line_exit_2(tmp_path, table, key):
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(f"[messaging]\n{table}\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert len(err.value.problems) == 1 and f": {key}:" in err.value.problems[0]
    proc = cli(["compose", "--config", str(cfg), "--release", "19", "--milestone", "Beta",
                "--output", str(tmp_path / "out")], tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert key in proc.stderr and not (tmp_path / "out").exists()


def test_messaging_without_the_store_is_refused(tmp_path):
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text("[store]\nenabled = false\n[messaging]\nenabled = true\n")
    with pytest.raises(ConfigError, match="needs the compose store"):
        load_config(cfg)


def test_a_missing_fedora_messaging_config_is_one_line_exit_2(tmp_path):
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text("[messaging]\nenabled = true\n")
    env = {"FEDORA_MESSAGING_CONF": str(tmp_path / "nowhere.toml")}
    for args in (["compose", "--release", "19", "--milestone", "Beta", "--output", "out"],
                 ["compose", "--release", "19", "--milestone", "Beta", "--output", "out",
                  "--queue"],
                 ["messages", "flush", "--output", "out"], ["consume", "--output", "out"]):
        proc = cli([*args[:1], "--config", str(cfg), *args[1:]] if args[0] != "messages" else
                   ["messages", "flush", "--config", str(cfg), "--output", "out"], tmp_path, env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "nowhere.toml not found" in proc.stderr
        assert not (tmp_path / "out").exists()


def test_an_unknown_topic_is_one_line_exit_2(tmp_path):
    proc = cli(["messages", "--topic", "rel_eng.nope", "--output", "out"], tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "unknown topic 'rel_eng.nope'" in proc.stderr and bodies.DROP_STAGED in proc.stderr
    missing = cli(["messages", "--output", "out"], tmp_path)
    assert missing.returncode == 2 and "no compose store" in missing.stderr


def test_messages_lists_text_and_json(recorded_sqlite, tmp_path):
    c, rec = recorded_sqlite
    out = c.topdir.parent
    text = cli(["messages", "--pending", "--output", str(out)], tmp_path)
    assert text.returncode == 0 and len(text.stdout.splitlines()) == 11
    assert "rel-eng staged" in text.stdout and "pending" in text.stdout
    rows = json.loads(cli(["messages", "--json", "--topic", bodies.STATUS, "--output", str(out)],
                          tmp_path).stdout)
    assert [r["body"]["status"] for r in rows] == ["STARTED", "FINISHED"]


def test_the_beat_flush_never_fails_a_tick(recorded_sqlite, tmp_path, monkeypatch, caplog):
    from rel_eng.schedule.beat import flush_outbox

    c, rec = recorded_sqlite
    off = load_config()
    flush_outbox(off, rec.engine)  # messaging off: nothing sent, nothing said
    assert outbox.Flusher(rec.engine, FakeSender()).pending() == 11
    on = dataclasses.replace(off, messaging=MessagingConfig(enabled=True))
    monkeypatch.setenv("FEDORA_MESSAGING_CONF", str(tmp_path / "absent.toml"))
    flush_outbox(on, rec.engine)  # no fedora-messaging config: a warning, the tick goes on
    assert "outbox not flushed" in caplog.text and "absent.toml not found" in caplog.text
    assert outbox.Flusher(rec.engine, FakeSender()).pending() == 11

