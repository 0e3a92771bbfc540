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

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from rel_eng.messaging.bodies import Outgoing
from rel_eng.store import schema
from rel_eng.store.engine import upsert

log = logging.getLogger(__name__)

O = schema.outbox
L = schema.outbox_lease
LEASE = "outbox"
LEASE_S = 120.0  # renewed before every send; longer than one publish timeout


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Sender(Protocol):
    resting: bool

    def send(self, topic: str, body: dict, message_id: str) -> None: ...


def enqueue(conn: Connection, messages: Iterable[Outgoing], now: dt.datetime) -> int:
    """Insert messages not in the outbox yet (by id); returns how many are new."""
    new = 0
    for m in messages:
        exists = conn.execute(select(O.c.seq).where(O.c.message_id == m.message_id)).first()
        if exists:
            continue
        upsert(conn, O, dict(message_id=m.message_id, topic=m.topic, compose_id=m.compose_id,
                             body=json.dumps(m.body, sort_keys=True), created_at=now,
                             attempts=0, last_error=""), ("message_id",), update=False)
        new += 1
    return new


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Flusher:
    def __init__(self, engine: Engine, sender: Sender, clock: Callable[[], dt.datetime] = utcnow):
        self.engine = engine
        self.sender = sender
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # --- the lease ---

    def _stale(self, holder: str, until: dt.datetime, now: dt.datetime) -> bool:
        if until <= now:
            return True
        host, _, rest = holder.partition(":")
        pid = rest.split(":", 1)[0]
        # A holder on this host whose process is gone (killed mid-flush) gives way at once.
        return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))

    def _acquire(self) -> bool:
        now = self.clock()
        until = now + dt.timedelta(seconds=LEASE_S)
        try:
            with self.engine.begin() as conn:
                row = conn.execute(select(L).where(L.c.name == LEASE)).first()
                if row is None:
                    conn.execute(L.insert().values(name=LEASE, holder=self.holder, until=until))
                    return True
                if row.holder != self.holder and not self._stale(row.holder, row.until, now):
                    return False
                done = conn.execute(update(L).where(L.c.name == LEASE, L.c.holder == row.holder)
                                    .values(holder=self.holder, until=until))
                return done.rowcount == 1
        except IntegrityError:
            return False  # another flusher inserted the row first

    def _renew(self, conn: Connection) -> bool:
        until = self.clock() + dt.timedelta(seconds=LEASE_S)
        done = conn.execute(update(L).where(L.c.name == LEASE, L.c.holder == self.holder)
                            .values(until=until))
        return done.rowcount == 1

    def _release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(L).where(L.c.name == LEASE, L.c.holder == self.holder)
                         .values(until=self.clock() - dt.timedelta(seconds=1)))

    # --- flushing ---

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(O)
                                .where(O.c.sent_at.is_(None))).scalar_one()

    def flush(self, limit: int | None = None) -> FlushResult:
        """Send pending messages in order until none is left, one fails, or `limit` were sent."""
        result = FlushResult()
        while True:
            if not self._acquire():
                result.busy = True
                break
            try:
                stop = self._send_pending(result, limit)
            finally:
                self._release()
            # A message committed while we held the lease, by a process that found it taken,
            # is ours to send: look again after releasing.
            if stop or not self.pending():
                break
        result.pending = self.pending()
        return result

    def _send_pending(self, result: FlushResult, limit: int | None) -> bool:
        while limit is None or result.sent < limit:
            with self.engine.begin() as conn:
                if not self._renew(conn):
                    result.busy = True
                    return True  # the lease went stale and someone else took over
                row = conn.execute(select(O).where(O.c.sent_at.is_(None))
                                   .order_by(O.c.seq).limit(1)).first()
            if row is None:
                return False
            try:
                self.sender.send(row.topic, json.loads(row.body), row.message_id)
            except Exception as exc:  # PublishFailed, or anything the library raised
                result.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                with self.engine.begin() as conn:
                    conn.execute(update(O).where(O.c.seq == row.seq).values(
                        attempts=O.c.attempts + 1, last_error=result.error[:2000]))
                return True
            with self.engine.begin() as conn:
                conn.execute(update(O).where(O.c.seq == row.seq).values(
                    sent_at=self.clock(), attempts=O.c.attempts + 1, last_error=""))
            result.sent += 1
        return True
