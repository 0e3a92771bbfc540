"""The scheduler's ledger of firings: an atomic claim per (kind, subject, slot).

A claim is a plain INSERT against a unique constraint, so it is atomic in SQLite and PostgreSQL
alike: of two beats (or a restarted one) ticking at once, exactly one inserts the row and fires.
"""

from __future__ import annotations

import datetime as dt
import os
import socket

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from rel_eng.store import schema
from rel_eng.store.queries import as_dict

F = schema.firings


def claimant() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class FiringLedger:
    def __init__(self, engine: Engine):
        self.engine = engine

    def _where(self, kind: str, subject: str, slot: str):
        return (F.c.kind == kind) & (F.c.subject == subject) & (F.c.slot == slot)

    def claim(self, kind: str, subject: str, slot: str, due: dt.datetime,
              now: dt.datetime) -> bool:
        """True for the one caller that gets to fire this slot; False when it was claimed before."""
        try:
            with self.engine.begin() as conn:
                conn.execute(F.insert().values(kind=kind, subject=subject, slot=slot, due=due,
                                               claimed_at=now, claimed_by=claimant()))
        except IntegrityError:
            return False
        return True

    def settle(self, kind: str, subject: str, slot: str, compose_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(F).where(self._where(kind, subject, slot))
                         .values(compose_id=compose_id))

    def release(self, kind: str, subject: str, slot: str) -> None:
        """Give a claim back when queueing failed, so the next tick tries again."""
        with self.engine.begin() as conn:
            conn.execute(delete(F).where(self._where(kind, subject, slot)))

    def all(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [as_dict(r) for r in conn.execute(select(F).order_by(F.c.due, F.c.id))]
