"""The `store_url` fixture: every store test runs against a SQLite file and a real PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 (trust auth, user postgres); each test gets a database of its
own, dropped afterwards. If PostgreSQL is not running the test fails and says so: a silent
skip would hide that half of the backends went untested.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'rel-eng.db'}"
        return
    name = f"releng_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is needed for the store tests: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_URL.format(name=name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def store_toml(url: str) -> str:
    return f'[store]\nurl = "{url}"\n'
