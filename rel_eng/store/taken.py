"""What the compose store says is taken: compose ids and milestone labels of every host's composes.

Hosts sharing one store see each other's composes here even when their output dirs differ.
Reads only: a store that does not exist yet holds nothing, and is not created by asking.
"""

from __future__ import annotations

from sqlalchemy import create_engine, or_, select
from sqlalchemy.exc import SQLAlchemyError

from rel_eng.errors import RelEngError
from rel_eng.store import schema
from rel_eng.store.engine import CONNECT_TIMEOUT_S, redacted, sqlite_path


class StoreUnreadable(RelEngError):
    pass


def taken_in_store(url: str, release_key: str, compose_id: str, label: str | None) -> dict:
    """{"compose_id": topdir, "label": compose id} for what another compose already claimed."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return {}
    c = schema.composes
    args = {} if path is not None else {"connect_timeout": CONNECT_TIMEOUT_S}
    engine = create_engine(url, connect_args=args)
    wanted = [c.c.compose_id == compose_id]
    if label:
        wanted.append((c.c.release_key == release_key) & (c.c.label == label))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(c.c.compose_id, c.c.label, c.c.release_key, c.c.topdir)
                                .where(or_(*wanted))).all()
    except SQLAlchemyError as exc:
        if path is not None and "no such table" in str(exc):  # an empty SQLite file
            return {}
        raise StoreUnreadable(f"compose store {redacted(url)}: {type(exc).__name__}") from None
    finally:
        engine.dispose()
    out = {}
    for row in rows:
        if row.compose_id == compose_id:
            out["compose_id"] = row.topdir
        if label and row.release_key == release_key and row.label == label:
            out["label"] = row.compose_id
    return out
