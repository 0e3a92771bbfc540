"""The outbox's flush in batches, on SQLite and PostgreSQL: one lease per flush, each message
marked sent only after the broker confirmed it, one commit per batch, the lease renewed before
it could lapse, and a crash between confirm and mark resending the same ids.

The sender is injected (the broker is exercised in test_messages_bus.py); transactions and
statements are counted with SQLAlchemy's events, and the lease's clock is injected.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import event, select

from rel_eng.messaging import bodies
from rel_eng.messaging.publisher import PublishFailed
from rel_eng.store import outbox
from rel_eng.store.engine import open_engine
from store_support import store_url  # noqa: F401  (fixture)

CRASH = Path(__file__).resolve().parent / "outbox_crash.py"
NOW = dt.datetime(2013, 5, 28, 12, 0, tzinfo=dt.timezone.utc)
CID = "Fedora-Cloud-19-20130528.0"


def _messages(n: int, run: str = "m"):
    return [bodies.outgoing(CID, bodies.IMAGE_BUILT, f"{run}:{i}", {"n": i}) for i in range(n)]


@pytest.fixture
def engine(store_url):  # noqa: F811
    engine = open_engine(store_url)
    yield engine
    engine.dispose()


def _fill(engine, n: int, run: str = "m") -> list[str]:
    msgs = _messages(n, run)
    with engine.begin() as conn:
        assert outbox.enqueue(conn, msgs, NOW) == n
    return [m.message_id for m in msgs]


class Recording:
    """Confirms every send; on each, checks the message is still pending (never marked sent
    before its confirm); fails on the n-th send when asked to."""

    resting = False

    def __init__(self, engine=None, fail_at: int | None = None, on_send=None):
        self.engine = engine
        self.fail_at = fail_at
        self.on_send = on_send
        self.sent: list[str] = []
        self.marked_early: list[str] = []

    def send(self, topic, body, message_id):
        if self.fail_at is not None and len(self.sent) == self.fail_at:
            raise PublishFailed("sending failed: PublishTimeout: no broker")
        if self.engine is not None:
            state = {r["id"]: r["state"] for r in outbox.listing(self.engine)}
            if state[message_id] != "pending":
                self.marked_early.append(message_id)
        if self.on_send:
            self.on_send(self, message_id)
        self.sent.append(message_id)


class Counter:
    """Commits, and statements by what they touch, on one engine."""

    def __init__(self, engine):
        self.commits = 0
        self.statements: list[str] = []
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "before_cursor_execute", self._stmt)
        self.engine = engine

    def _commit(self, conn):
        self.commits += 1

    def _stmt(self, conn, cursor, statement, *args):
        self.statements.append(" ".join(statement.split()).lower())

    def count(self, prefix: str) -> int:
        """Statements that are, or hold (PostgreSQL settles a batch in one WITH statement), one
        starting with `prefix`."""
        return sum(1 for s in self.statements
                   if s.startswith(prefix) or f"as ({prefix}" in s)

    def stop(self):
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "before_cursor_execute", self._stmt)


@pytest.mark.parametrize("n, batch", [(10, 4), (8, 4), (1, 100), (250, 100)])
def test_one_lease_and_one_commit_per_batch_marks_after_confirm(engine, n, batch):
    assert outbox.Flusher(engine, Recording()).flush().sent == 0  # the lease row exists now
    ids = _fill(engine, n)
    sender = Recording(engine if n <= 10 else None)
    counter = Counter(engine)
    try:
        result = outbox.Flusher(engine, sender, batch=batch).flush()
    finally:
        counter.stop()
    assert (result.sent, result.pending, result.error, result.busy) == (n, 0, "", False)
    assert sender.sent == ids and sender.marked_early == []  # in order, marked after confirm
    batches = -(-n // batch)
    assert counter.commits == 1 + batches  # the lease, then one per batch
    # The lease is taken once per flush, in one statement when it is free.
    assert counter.count("update outbox_lease set holder") == 1
    assert counter.count("select outbox_lease") == counter.count("insert into outbox_lease") == 0
    assert counter.count("update outbox set sent_at") == batches
    assert all(r["state"] == "sent" and r["attempts"] == 1 for r in outbox.listing(engine))
    # The lease was given back: another flusher gets it at once and finds nothing to send.
    assert outbox.Flusher(engine, Recording()).flush() == outbox.FlushResult()


def test_a_flush_with_nothing_to_send_gives_the_lease_back(engine):
    for _ in range(3):  # each finds the lease free: nothing pending, nothing sent, not busy
        assert outbox.Flusher(engine, Recording()).flush() == outbox.FlushResult()
    ids = _fill(engine, 3)
    sender = Recording()
    assert outbox.Flusher(engine, sender).flush().sent == 3 and sender.sent == ids


def test_a_failure_mid_batch_marks_what_was_confirmed_and_keeps_the_rest_pending(engine):
    ids = _fill(engine, 10)
    failing = Recording(fail_at=6)
    result = outbox.Flusher(engine, failing, batch=4).flush()
    assert (result.sent, result.pending, result.busy) == (6, 4, False)
    assert "PublishTimeout" in result.error
    rows = outbox.listing(engine)
    assert [r["state"] for r in rows] == ["sent"] * 6 + ["pending"] * 4
    assert rows[6]["attempts"] == 1 and "PublishTimeout" in rows[6]["last_error"]
    assert [r["attempts"] for r in rows[7:]] == [0, 0, 0]
    ok = Recording()
    assert outbox.Flusher(engine, ok, batch=4).flush().sent == 4
    assert failing.sent + ok.sent == ids  # each once, in order
    assert outbox.listing(engine)[6]["last_error"] == ""


def test_a_limit_stops_across_batches_and_gives_the_lease_back(engine):
    ids = _fill(engine, 10)
    first = Recording()
    result = outbox.Flusher(engine, first, batch=4).flush(limit=5)
    assert (result.sent, result.pending, result.busy) == (5, 5, False)
    rest = Recording()
    assert outbox.Flusher(engine, rest, batch=4).flush().sent == 5
    assert first.sent + rest.sent == ids


def test_a_slow_broker_gets_the_lease_renewed_before_it_could_lapse(engine):
    """Each send takes 20 s of the injected clock: a batch is settled (lease renewed) once a
    quarter of the lease has gone, whatever the batch size, so the lease never lapses."""
    ids = _fill(engine, 7)
    now = [NOW]
    lapsed = []

    def slow(sender, message_id):
        with engine.connect() as conn:
            until = conn.execute(outbox._LEASE).one().until
        if until <= now[0]:
            lapsed.append(message_id)
        now[0] += dt.timedelta(seconds=20)

    sender = Recording(on_send=slow)
    counter = Counter(engine)
    try:
        result = outbox.Flusher(engine, sender, clock=lambda: now[0], batch=100).flush()
    finally:
        counter.stop()
    assert result.sent == 7 and sender.sent == ids and lapsed == []
    # 30 s of a 120 s lease per batch: sends at +0 and +20 s, then a renewal; 7 -> 4 batches.
    assert counter.count("update outbox set sent_at") == 4
    assert counter.commits == 5


def test_a_lease_taken_over_mid_flush_stops_it_after_marking_what_was_confirmed(engine):
    """A flusher whose lease went stale (another took it over) marks its confirmed batch and
    sends nothing more: the new holder sends the rest, in order."""
    ids = _fill(engine, 10)

    def steal(sender, message_id):
        if len(sender.sent) == 3:  # the last send of the first batch
            with engine.begin() as conn:
                conn.execute(outbox.L.update().values(
                    holder=f"{socket.gethostname()}:{os.getpid()}:other",
                    until=outbox.utcnow() + dt.timedelta(days=1)))

    first = Recording(on_send=steal)
    result = outbox.Flusher(engine, first, batch=4).flush()
    assert (result.sent, result.pending, result.busy) == (4, 6, True)
    assert [r["state"] for r in outbox.listing(engine)] == ["sent"] * 4 + ["pending"] * 6
    other = Recording()
    assert outbox.Flusher(engine, other).flush().busy and other.sent == []  # still held
    with engine.begin() as conn:  # the other holder finishes and gives the lease back
        conn.execute(outbox.L.update().values(until=outbox.utcnow() - dt.timedelta(seconds=1)))
    assert outbox.Flusher(engine, other, batch=4).flush().sent == 6
    assert first.sent + other.sent == ids


@pytest.mark.parametrize("kill_after", [6, 8])
def test_sigkill_between_confirm_and_mark_resends_the_same_ids(engine, store_url, tmp_path,  # noqa: F811
                                                               kill_after):
    """Killed after the broker confirmed the n-th message (batches of 4): the batches settled
    before are sent and never resent; the confirmed, unmarked ones of the batch in flight are
    resent by the next flush with the same ids, then the rest, in order."""
    ids = _fill(engine, 10)
    log = tmp_path / "confirmed.log"
    crash = subprocess.run([sys.executable, str(CRASH), store_url, "4", str(kill_after), str(log)],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert crash.returncode == -9, crash.stderr
    confirmed = log.read_text().split()
    assert confirmed == ids[:kill_after]
    settled = kill_after // 4 * 4 if kill_after % 4 else kill_after - 4
    rows = outbox.listing(engine)
    assert [r["state"] for r in rows] == ["sent"] * settled + ["pending"] * (10 - settled)
    # The dead flusher's lease gives way at once (its process is gone).
    again = Recording()
    result = outbox.Flusher(engine, again, batch=4).flush()
    assert (result.sent, result.pending, result.busy) == (10 - settled, 0, False)
    assert again.sent == ids[settled:]
    resent = set(confirmed) & set(again.sent)
    assert resent == set(ids[settled:kill_after])  # the same ids, nothing else twice
    assert set(confirmed) | set(again.sent) == set(ids)


def _write_and_claim(engine, flusher, run: str, n: int = 1):
    """What the compose's recorder does: enqueue and claim in one transaction, then flush on the
    same connection after the commit."""
    msgs = _messages(n, run)
    with engine.connect() as conn:
        with conn.begin():
            outbox.enqueue(conn, msgs, NOW)
            claimed = flusher.claim(conn)
        return claimed, flusher.flush(conn=conn, claimed=claimed), [m.message_id for m in msgs]


def test_a_write_that_claims_pays_one_commit_beyond_its_own(engine):
    """The lease and the first batch are taken in the writer's transaction: the flush after it
    commits once (marks, lease back, count) and takes no lease of its own."""
    assert outbox.Flusher(engine, Recording()).flush().sent == 0  # the lease row exists now
    older = _fill(engine, 2, "older")  # left pending by an earlier flush: sent first, in order
    sender = Recording()
    counter = Counter(engine)
    try:
        claimed, result, ids = _write_and_claim(engine, outbox.Flusher(engine, sender), "w", 2)
    finally:
        counter.stop()
    assert [r.message_id for r in claimed] == older + ids
    assert (result.sent, result.pending, result.error, result.busy) == (4, 0, "", False)
    assert sender.sent == older + ids
    assert counter.commits == 2  # the writer's own, then the batch's
    assert counter.count("update outbox_lease set holder") == 1
    assert counter.count("update outbox set sent_at") == 1
    assert counter.count("select outbox_lease") == counter.count("insert into outbox_lease") == 0
    assert outbox.Flusher(engine, Recording()).flush() == outbox.FlushResult()  # lease given back


def test_a_claim_never_takes_a_live_lease_nor_inserts_one(engine):
    """No lease row yet: the claim takes nothing and inserts nothing (a racing insert would fail
    the writer's transaction), and the flush takes the lease its usual way. A live holder: the
    writer's messages stay for it, and the writer's transaction still commits."""
    sender = Recording()
    claimed, result, ids = _write_and_claim(engine, outbox.Flusher(engine, sender), "first")
    assert claimed is None and result.sent == 1 and sender.sent == ids
    with engine.begin() as conn:
        conn.execute(outbox.L.update().values(holder="elsewhere:1:live",
                                              until=outbox.utcnow() + dt.timedelta(days=1)))
    held = Recording()
    claimed, result, ids = _write_and_claim(engine, outbox.Flusher(engine, held), "held")
    assert claimed is None and (result.sent, result.busy, result.pending) == (0, True, 1)
    assert held.sent == []
    with engine.connect() as conn:  # committed, pending for the holder
        assert conn.execute(select(outbox.O.c.message_id).where(
            outbox.O.c.sent_at.is_(None))).scalars().all() == ids


def test_a_claim_of_a_dead_holders_lease_on_this_host_takes_it_over(engine):
    assert outbox.Flusher(engine, Recording()).flush().sent == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with engine.begin() as conn:
        conn.execute(outbox.L.update().values(holder=f"{socket.gethostname()}:{dead}:gone",
                                              until=outbox.utcnow() + dt.timedelta(days=1)))
    sender = Recording()
    claimed, result, ids = _write_and_claim(engine, outbox.Flusher(engine, sender), "taken")
    assert [r.message_id for r in claimed] == ids
    assert (result.sent, result.busy) == (1, False) and sender.sent == ids
