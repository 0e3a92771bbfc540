"""A throw-away PostgreSQL database for a benchmark run: created empty, dropped afterwards
(forcibly: a server still connected is not left holding it).

The admin connection is to the local server (127.0.0.1:5432, user postgres, as `make services`
sets it up); REL_ENG_BENCH_PG_ADMIN overrides its libpq connection string.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@contextlib.contextmanager
def throwaway_database(prefix: str = "releng_bench") -> Iterator[str]:
    """Yields the SQLAlchemy URL of a new, empty database; drops it on the way out."""
    import psycopg

    admin_dsn = os.environ.get("REL_ENG_BENCH_PG_ADMIN", ADMIN)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise SystemExit(f"PostgreSQL is needed for this benchmark's PostgreSQL run "
                         f"({admin_dsn}): {str(exc).strip().splitlines()[0]}; start it with "
                         "`make services`, or set REL_ENG_BENCH_PG_ADMIN") from None
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield URL.format(name=name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
