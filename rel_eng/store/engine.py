"""Opening the store: one engine per URL, tables created on first use, and a portable upsert.

SQLite runs in WAL mode (`rel-eng status` reads while a compose writes) with a busy timeout, and
every transaction begins IMMEDIATE so two writers queue instead of failing on a lock upgrade.
SQLite needs a local disk; composes shared between hosts use PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Callable

from sqlalchemy import create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError, ProgrammingError

from rel_eng import retry
from rel_eng.errors import InputError, RelEngError
from rel_eng.store.schema import metadata

BUSY_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10
CREATE_ATTEMPTS = 5  # two processes creating the tables at once: the loser retries
CREATE_RETRY = retry.Policy(CREATE_ATTEMPTS - 1, 0.2, 0.8)


class StoreUnavailable(RelEngError):
    """The store's database cannot be reached or opened."""


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    return Path(u.database) if u.get_backend_name() == "sqlite" and u.database else None


def open_engine(url: str, *, must_exist: bool = False, readonly: bool = False,
                sleep: Callable[[float], None] = time.sleep) -> Engine:
    """An engine with the tables in place. `must_exist`: a missing SQLite file is an input error.
    `readonly` (the dashboard): SQLite transactions begin DEFERRED, so readers never queue
    behind, or hold up, the composes writing. `sleep` waits between tries when another process
    creates the tables at the same moment."""
    path = sqlite_path(url)
    if path is not None:
        if must_exist and not path.is_file():
            raise InputError(f"no compose store at {path}",
                             hint="pass the --output the composes went to, or [store] url")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {path.parent} for the compose store: "
                                   f"{exc.strerror}", hint="check [store] url or --output") from None
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        _sqlite_setup(engine, immediate=not readonly)
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True,
                                   connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        except ImportError as exc:  # the URL names a driver this host lacks (psycopg2, say)
            raise StoreUnavailable(f"cannot open the compose store {redacted(url)}: its driver "
                                   f"{exc.name or exc} is not installed",
                                   hint="use postgresql+psycopg:// (the installed driver)") from None
    try:
        retry.call(lambda: metadata.create_all(engine), CREATE_RETRY, transient=_racing_create,
                   catch=(IntegrityError, ProgrammingError, OperationalError), sleep=sleep)
        return engine
    except (IntegrityError, ProgrammingError):
        engine.dispose()
        raise
    except OperationalError as exc:
        engine.dispose()
        raise StoreUnavailable(f"cannot open the compose store {redacted(url)}: "
                               f"{str(exc.orig).strip().splitlines()[0]}",
                               hint="check [store] url and that the database is running") from None
    except DatabaseError as exc:  # e.g. SQLite's "file is not a database"
        engine.dispose()
        raise StoreUnavailable(f"cannot open the compose store {redacted(url)}: "
                               f"{str(exc.orig).strip().splitlines()[0]}",
                               hint="point [store] url or --output at a compose store") from None


def _racing_create(exc: BaseException) -> bool:
    """Another process creates the same tables right now: try again."""
    if isinstance(exc, OperationalError):
        # Two processes opening a new SQLite file at once: switching it to WAL takes an
        # exclusive lock that does not wait on the busy handler. The loser tries again.
        return _sqlite_busy(exc)
    return True  # IntegrityError / ProgrammingError: a table or type created under our feet


def _sqlite_busy(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _sqlite_setup(engine: Engine, immediate: bool = True) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # the "begin" hook below issues BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL never corrupts; a power cut may lose the last commits, which the next
        # status change re-syncs from the compose dir (the truth). Saves an fsync per write.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def upsert(conn: Connection, table, values: dict, keys: tuple[str, ...],
           update: bool = True) -> None:
    """INSERT, or on a key conflict UPDATE the other columns (or do nothing when not `update`)."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(table).values(**values)
    others = {c: stmt.excluded[c] for c in values if c not in keys}
    if update and others:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=others)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt)
