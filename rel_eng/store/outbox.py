"""The transactional outbox: enqueue inside the caller's transaction, flush in order afterwards.

`enqueue` runs in the same transaction as the state change it announces, so a message exists
exactly when its change does. `flush` sends pending messages in `seq` order under a lease (one
flusher at a time, so order holds and nothing is sent twice by two processes), and marks each
sent right after the broker confirmed it. A crash between the send and the mark leaves the
message pending: the next flush resends it with the same id, which consumers deduplicate on.
A failed send stops the flush (order) and leaves the message pending with its error.
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

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from rel_eng.atomic import pid_alive
from rel_eng.messaging.bodies import Outgoing
from rel_eng.store import schema

log = logging.getLogger(__name__)

O = schema.outbox
L = schema.outbox_lease
LEASE = "outbox"
LEASE_S = 120.0  # renewed before every send; longer than one publish timeout

# Built once: a flush runs these for every message.
_NEXT = select(O).where(O.c.sent_at.is_(None)).order_by(O.c.seq).limit(1)
_COUNT = select(func.count()).select_from(O).where(O.c.sent_at.is_(None))
_LEASE = select(L).where(L.c.name == LEASE)
_MINE = update(L).where(L.c.name == LEASE, L.c.holder == bindparam("me"))
_MARK = update(O).where(O.c.seq == bindparam("row"))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Sender(Protocol):
    resting: bool

    def send(self, topic: str, body: dict, message_id: str) -> None: ...


def enqueue(conn: Connection, messages: Iterable[Outgoing], now: dt.datetime) -> int:
    """Insert messages not in the outbox yet (by id); returns how many are new."""
    new = 0
    for m in messages:
        done = conn.execute(_insert(conn).values(
            message_id=m.message_id, topic=m.topic, compose_id=m.compose_id,
            body=json.dumps(m.body, sort_keys=True), created_at=now, attempts=0, last_error="")
            .on_conflict_do_nothing(index_elements=["message_id"]))
        new += done.rowcount
    return new


def _insert(conn: Connection):
    from sqlalchemy.dialects import postgresql, sqlite

    return (sqlite if conn.dialect.name == "sqlite" else postgresql).insert(O)


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


class Flusher:
    def __init__(self, engine: Engine, sender: Sender, clock: Callable[[], dt.datetime] = utcnow):
        self.engine = engine
        self.sender = sender
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # --- the lease (one transaction each with the outbox reads and marks) ---

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

    def _acquire(self, conn: Connection) -> bool:
        now = self.clock()
        until = now + dt.timedelta(seconds=LEASE_S)
        row = conn.execute(_LEASE).first()
        if row is None:
            conn.execute(L.insert().values(name=LEASE, holder=self.holder, until=until))
            return True
        if row.holder != self.holder and not self._stale(row.holder, row.until, now):
            return False
        done = conn.execute(_MINE.values(holder=self.holder, until=until), {"me": row.holder})
        return done.rowcount == 1

    def _renew(self, conn: Connection) -> bool:
        until = self.clock() + dt.timedelta(seconds=LEASE_S)
        done = conn.execute(_MINE.values(until=until), {"me": self.holder})
        return done.rowcount == 1

    def _release(self, conn: Connection) -> None:
        conn.execute(_MINE.values(until=self.clock() - dt.timedelta(seconds=1)),
                     {"me": self.holder})

    @staticmethod
    def _next(conn: Connection):
        return conn.execute(_NEXT).first()

    @staticmethod
    def _count(conn: Connection) -> int:
        return conn.execute(_COUNT).scalar_one()

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return self._count(conn)

    # --- flushing ---

    def flush(self, limit: int | None = None) -> FlushResult:
        """Send pending messages in order until none is left, one fails, or `limit` were sent.
        One transaction per message: mark the last one sent, renew the lease, fetch the next."""
        result = FlushResult()
        while True:
            try:
                with self.engine.begin() as conn:
                    self._relaxed(conn)
                    row = self._next(conn) if self._acquire(conn) else False
            except IntegrityError:
                row = False  # another flusher inserted the lease row first
            if row is False:
                result.busy = True
                result.pending = self.pending()
                return result
            stop = released = False
            failed = None
            while row is not None:
                try:
                    self.sender.send(row.topic, json.loads(row.body), row.message_id)
                except Exception as exc:  # PublishFailed, or anything the library raised
                    result.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    failed, stop = row.seq, True
                    break
                with self.engine.begin() as conn:
                    self._relaxed(conn)
                    conn.execute(_MARK.values(sent_at=self.clock(), attempts=O.c.attempts + 1,
                                              last_error=""), {"row": row.seq})
                    result.sent += 1
                    if limit is not None and result.sent >= limit:
                        stop, row = True, None
                    elif not self._renew(conn):
                        result.busy = stop = True  # our lease went stale; another took over
                        row = None
                    else:
                        row = self._next(conn)
                    if row is None and not result.busy:  # done: give the lease back here
                        self._release(conn)
                        result.pending = self._count(conn)
                        released = True
            if not released:
                with self.engine.begin() as conn:
                    if failed is not None:  # stays pending, with why
                        conn.execute(update(O).where(O.c.seq == failed).values(
                            attempts=O.c.attempts + 1, last_error=result.error[:2000]))
                    self._relaxed(conn)
                    self._release(conn)
                    result.pending = self._count(conn)
            # A message committed while we held the lease, by a process that found it taken,
            # is ours to send: look again after releasing.
            if stop or not result.pending:
                return result
