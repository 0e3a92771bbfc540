"""The transactional outbox: enqueue inside the caller's transaction, flush in order afterwards.

`enqueue` runs in the same transaction as the state change it announces, so a message exists
exactly when its change does. `flush` sends pending messages in `seq` order under a lease (one
flusher at a time, so order holds and nothing is sent twice by two processes). It works in
batches: one transaction takes the lease and reads up to `batch` pending rows; each is sent and
confirmed by the broker in turn; then one transaction marks the confirmed ones sent, renews the
lease and reads the next batch. A crash between a confirm and its batch's mark leaves those
messages pending: the next flush resends them with the same ids, which consumers deduplicate
on. A failed send stops the flush (order) and leaves the message pending with its error.

A writer that enqueues can `claim` in its own transaction: the lease and the first batch are
taken there, so the flush after its commit starts sending at once and pays one transaction (the
settling one) instead of two. The settling transaction also counts what is left, in the
statement that gives the lease back.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from rel_eng.atomic import pid_alive
from rel_eng.messaging.bodies import Outgoing
from rel_eng.store import schema

log = logging.getLogger(__name__)

O = schema.outbox
L = schema.outbox_lease
LEASE = "outbox"
LEASE_S = 120.0  # renewed with every batch, at the latest a quarter of it after the last renewal
BATCH = 100  # messages sent between two commits

# Built once, values as parameters: SQLAlchemy then compiles each only once per process.
_NEXT = select(O).where(O.c.sent_at.is_(None)).order_by(O.c.seq).limit(bindparam("n"))
_COUNT = select(func.count()).select_from(O).where(O.c.sent_at.is_(None))
_LEASE = select(L).where(L.c.name == LEASE)
# The usual way in: the lease is free (given back, or lapsed) or already ours; one statement.
_TAKE = update(L).where(L.c.name == LEASE, or_(L.c.holder == bindparam("me"),
                                               L.c.until <= bindparam("now"))) \
    .values(holder=bindparam("me_"), until=bindparam("until_"))
_MINE = update(L).where(L.c.name == LEASE, L.c.holder == bindparam("me"))
_SET_UNTIL = _MINE.values(until=bindparam("until_"))
# Giving the lease back and counting what is still pending, in one statement.
_RELEASE = _SET_UNTIL.returning(_COUNT.scalar_subquery())
_MARK = update(O).where(O.c.seq.in_(bindparam("rows", expanding=True))).values(
    sent_at=bindparam("sent_at_"), attempts=O.c.attempts + 1, last_error="")
_FAILED = update(O).where(O.c.seq == bindparam("row")).values(
    attempts=O.c.attempts + 1, last_error=bindparam("error_"))
_INSERTS: dict[str, object] = {}


def _settle_in_one() -> object:
    """PostgreSQL settles the usual batch (nothing failed, nothing behind it) in one statement:
    its commit relaxed (see `_relaxed`), the rows marked, the lease given back and what is left
    counted. The count cannot see the marks of its own statement, so it leaves those rows out."""
    relax = select(func.set_config("synchronous_commit", "off", True).label("v")).cte("relax")
    marked = _MARK.returning(O.c.seq).cte("marked")
    released = _SET_UNTIL.returning(L.c.holder).cte("released")
    left = select(func.count()).select_from(O).where(
        O.c.sent_at.is_(None), O.c.seq.not_in(bindparam("rows", expanding=True)))
    return select(select(relax.c.v).scalar_subquery(),
                  select(func.count()).select_from(marked).scalar_subquery(),
                  select(func.count()).select_from(released).scalar_subquery(),
                  left.scalar_subquery())


_SETTLE_PG = _settle_in_one()
# ... and a writer's claim (the lease when free or ours, and the first batch) in one statement.
_TAKEN = _TAKE.returning(L.c.holder).cte("taken")
_CLAIM_PG = _NEXT.where(exists(select(_TAKEN.c.holder)))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Sender(Protocol):
    resting: bool

    def send(self, topic: str, body: dict, message_id: str) -> None: ...


def enqueue(conn: Connection, messages: Iterable[Outgoing], now: dt.datetime) -> int:
    """Insert messages not in the outbox yet (by id); returns how many are new."""
    new = 0
    stmt = _insert(conn.dialect.name)
    for m in messages:
        # Counted by what RETURNING gives back: psycopg's rowcount is -1 for this statement.
        done = conn.execute(stmt, {
            "message_id": m.message_id, "topic": m.topic, "compose_id": m.compose_id,
            "body": json.dumps(m.body, sort_keys=True), "created_at": now, "attempts": 0,
            "last_error": ""})
        new += len(done.all())
    return new


def _insert(dialect: str):
    """INSERT ... ON CONFLICT (message_id) DO NOTHING RETURNING seq, built once per dialect."""
    if dialect not in _INSERTS:
        from sqlalchemy.dialects import postgresql, sqlite

        insert = (sqlite if dialect == "sqlite" else postgresql).insert
        _INSERTS[dialect] = insert(O).on_conflict_do_nothing(
            index_elements=["message_id"]).returning(O.c.seq)
    return _INSERTS[dialect]


def count_status_changes(conn: Connection, compose_id: str) -> int:
    return conn.execute(select(func.count()).select_from(schema.status_changes)
                        .where(schema.status_changes.c.compose_id == compose_id)).scalar_one()


def listing(engine: Engine, pending_only: bool = False, topic: str | None = None,
            compose_id: str | None = None) -> list[dict]:
    q = select(O).order_by(O.c.seq)
    if pending_only:
        q = q.where(O.c.sent_at.is_(None))
    if topic:
        q = q.where(O.c.topic == topic)
    if compose_id:
        q = q.where(O.c.compose_id == compose_id)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return [{"seq": r.seq, "id": r.message_id, "topic": r.topic, "compose_id": r.compose_id,
             "body": json.loads(r.body), "state": "sent" if r.sent_at else "pending",
             "created_at": r.created_at.isoformat(),
             "sent_at": r.sent_at.isoformat() if r.sent_at else None,
             "attempts": r.attempts, "last_error": r.last_error} for r in rows]


@dataclass
class FlushResult:
    sent: int = 0
    pending: int = 0
    error: str = ""
    busy: bool = False  # another process holds the lease: it sends what is pending


@dataclass
class _Batch:
    """What one batch's sends left to record: confirmed rows, and the one that failed."""
    sent: list[int]
    failed: int | None = None


class Flusher:
    def __init__(self, engine: Engine, sender: Sender, clock: Callable[[], dt.datetime] = utcnow,
                 batch: int = BATCH):
        self.engine = engine
        self.sender = sender
        self.clock = clock
        self.batch = batch
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renewed = clock()

    # --- the lease ---

    def _stale(self, holder: str, until: dt.datetime, now: dt.datetime) -> bool:
        if until <= now:
            return True
        host, _, rest = holder.partition(":")
        pid = rest.split(":", 1)[0]
        # A holder on this host whose process is gone (killed mid-flush) gives way at once.
        return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))

    def _relaxed(self, conn: Connection) -> None:
        """Lease and "sent" marks need not wait for the disk: losing one in a crash only means
        the message is sent again with the same id, which consumers deduplicate. Messages
        themselves are enqueued in the caller's (fully durable) transaction."""
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")

    def _acquire(self, conn: Connection, may_insert: bool = True) -> bool:
        now = self.clock()
        until = now + dt.timedelta(seconds=LEASE_S)
        if conn.execute(_TAKE, {"me": self.holder, "now": now, "me_": self.holder,
                                "until_": until}).rowcount == 1:
            self._renewed = now
            return True
        # Missing, or held: by a live process, or by one on this host that is gone.
        row = conn.execute(_LEASE).first()
        if row is None:
            if not may_insert:
                return False
            conn.execute(L.insert().values(name=LEASE, holder=self.holder, until=until))
        elif row.holder != self.holder and not self._stale(row.holder, row.until, now):
            return False
        elif conn.execute(_MINE.values(holder=self.holder, until=until),
                          {"me": row.holder}).rowcount != 1:  # rare: not worth a prepared one
            return False
        self._renewed = now
        return True

    def _renew(self, conn: Connection) -> bool:
        now = self.clock()
        done = conn.execute(_SET_UNTIL, {"me": self.holder,
                                         "until_": now + dt.timedelta(seconds=LEASE_S)})
        self._renewed = now
        return done.rowcount == 1

    def _release(self, conn: Connection) -> int | None:
        """Give the lease back; returns how many messages are pending (None: it was not ours)."""
        left = conn.execute(_RELEASE, {"me": self.holder,
                                       "until_": self.clock() - dt.timedelta(seconds=1)}).first()
        return None if left is None else left[0]

    def _rows(self, conn: Connection) -> list:
        return conn.execute(_NEXT, {"n": self.batch}).all()

    @staticmethod
    def _count(conn: Connection) -> int:
        return conn.execute(_COUNT).scalar_one()

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return self._count(conn)

    # --- flushing: take the lease, then send a batch and settle it until done ---

    def claim(self, conn: Connection) -> list | None:
        """Inside the caller's open transaction (the one that enqueued): take the lease and read
        the first batch, for `flush(conn=..., claimed=...)` after the commit. None when another
        live flusher holds the lease (it sends these) or no lease row exists yet (the flush then
        takes it the usual way): it never inserts, so a racing insert cannot fail the caller's
        transaction, and it never relaxes the caller's durable commit."""
        if conn.dialect.name == "postgresql":
            now = self.clock()
            rows = conn.execute(_CLAIM_PG, {
                "n": self.batch, "me": self.holder, "now": now, "me_": self.holder,
                "until_": now + dt.timedelta(seconds=LEASE_S)}).all()
            if rows:  # the lease was free or ours: taken
                self._renewed = now
                return rows
        # Held (by a live process, or a dead one on this host), missing, or nothing pending.
        if not self._acquire(conn, may_insert=False):
            return None
        rows = self._rows(conn)
        if not rows:
            self._release(conn)
        return rows or None

    def flush(self, limit: int | None = None, *, conn: Connection | None = None,
              claimed: list | None = None) -> FlushResult:
        """Send pending messages in order until none is left, one fails, or `limit` were sent.
        One connection for the whole flush (`conn`: the caller's, outside any transaction); one
        transaction to take the lease (none when `claimed` holds what `claim` took), then one
        per batch (marks, lease renewal, the next rows)."""
        if conn is None:
            with self.engine.connect() as own:
                return self._flush(own, limit, claimed)
        return self._flush(conn, limit, claimed)

    def _flush(self, conn: Connection, limit: int | None, claimed: list | None) -> FlushResult:
        result = FlushResult()
        while True:
            rows = claimed or self._take(conn)
            claimed = None  # a claim serves the first round only
            if rows is None:
                result.busy = True
                with conn.begin():
                    result.pending = self._count(conn)
                return result
            while rows:
                budget = None if limit is None else limit - result.sent
                done = self._send(rows, budget, result)
                rows = self._settle(conn, done, result, limit, fetched=len(rows))
            # A message committed while we held the lease, by a process that found it
            # taken, is ours to send: look again after releasing.
            if (result.busy or result.error or not result.pending
                    or (limit is not None and result.sent >= limit)):
                return result

    def _take(self, conn: Connection) -> list | None:
        """The lease and the first batch, in one transaction; None when another holds it.
        With nothing pending the lease is given back in the same transaction."""
        try:
            with conn.begin():
                self._relaxed(conn)
                if not self._acquire(conn):
                    return None
                rows = self._rows(conn)
                if not rows:
                    self._release(conn)
                return rows
        except IntegrityError:
            return None  # another flusher inserted the lease row first

    def _send(self, rows: list, budget: int | None, result: FlushResult) -> _Batch:
        """Send rows in order, each confirmed by the broker, until one fails, `budget` were
        sent, or the lease has run a quarter of its time (it is renewed when the batch is
        settled, so a slow broker never lets it lapse mid-batch)."""
        done = _Batch(sent=[])
        renew_by = self._renewed + dt.timedelta(seconds=LEASE_S / 4)
        for row in rows:
            if budget is not None and len(done.sent) >= budget:
                break
            if done.sent and self.clock() >= renew_by:
                break
            try:
                self.sender.send(row.topic, json.loads(row.body), row.message_id)
            except Exception as exc:  # PublishFailed, or anything the library raised
                result.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                done.failed = row.seq
                break
            done.sent.append(row.seq)
        result.sent += len(done.sent)
        return done

    def _settle(self, conn: Connection, done: _Batch, result: FlushResult, limit: int | None,
                fetched: int) -> list:
        """One transaction: mark the confirmed rows sent (and the failed one with why), then
        renew the lease and read the next batch, or give the lease back. Returns the next rows,
        or [] once the lease is released (or lost)."""
        finished = done.failed is not None or (limit is not None and result.sent >= limit)
        # A full batch may have more behind it; rows left unsent (the lease's time) are next.
        more = fetched == self.batch or len(done.sent) < fetched
        with conn.begin():
            if (conn.dialect.name == "postgresql" and done.failed is None
                    and (finished or not more)):
                _, _, released, left = conn.execute(_SETTLE_PG, {
                    "rows": done.sent, "sent_at_": self.clock(), "me": self.holder,
                    "until_": self.clock() - dt.timedelta(seconds=1)}).one()
                result.pending = left if released else self._count(conn)
                return []
            self._relaxed(conn)
            if done.sent:
                conn.execute(_MARK, {"rows": done.sent, "sent_at_": self.clock()})
            if done.failed is not None:  # stays pending, with why
                conn.execute(_FAILED, {"row": done.failed, "error_": result.error[:2000]})
            if not finished and more:
                if not self._renew(conn):
                    result.busy = True  # our lease went stale; another took over
                    result.pending = self._count(conn)
                    return []
                rows = self._rows(conn)
                if rows:
                    return rows
            left = self._release(conn)
            result.pending = self._count(conn) if left is None else left
            return []
