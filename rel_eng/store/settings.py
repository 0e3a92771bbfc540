"""The `[store]` table of the pipeline config. Imports nothing from rel_eng (config.py imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKENDS = ("sqlite", "postgresql")
DEFAULT_FILE = "rel-eng.db"  # in the output dir, beside the composes


@dataclass(frozen=True)
class StoreConfig:
    enabled: bool = True
    url: str = ""  # "" = sqlite:///<output>/rel-eng.db

    def url_for(self, output: Path) -> str:
        return self.url or f"sqlite:///{Path(output).resolve() / DEFAULT_FILE}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StoreConfig":
        return cls(**data)


def parse_store(table: Any, problems, base_dir: Path, where: str = "store.") -> StoreConfig:
    """`[store]` -> StoreConfig; mistakes go to `problems` (rel_eng.config._Problems)."""
    if not isinstance(table, dict):
        problems.add(where.rstrip("."), "expected a table")
        return StoreConfig()
    problems.unknown(table, {"enabled", "url"}, where)
    enabled = problems.take(table, "enabled", bool, True, where)
    url = problems.take(table, "url", str, "", where)
    if url:
        url = _check_url(url, problems, base_dir, f"{where}url")
    return StoreConfig(enabled=enabled, url=url)


def _check_url(text: str, problems, base_dir: Path, key: str) -> str:
    from sqlalchemy.engine import make_url  # late: only configs that name a URL pay for it
    from sqlalchemy.exc import ArgumentError

    from rel_eng.redact import password_problem, redact

    secret = password_problem(text, "put the password in ~/.pgpass or PGPASSWORD instead")
    if secret:
        problems.add(key, secret)
        return ""
    try:
        url = make_url(text)
    except ArgumentError:
        problems.add(key, f"'{redact(text)}' is not a database URL (e.g. sqlite:////srv/rel-eng.db or "
                          "postgresql://rel-eng@db.example.org/releng)")
        return ""
    if url.get_backend_name() not in BACKENDS:
        problems.add(key, f"unsupported database '{url.get_backend_name()}' (use {' or '.join(BACKENDS)})")
        return ""
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            problems.add(key, "needs a file: an in-memory SQLite store forgets everything at exit")
            return ""
        if not Path(url.database).is_absolute():
            url = url.set(database=str((base_dir / url.database).resolve()))
    return url.render_as_string(hide_password=False)
