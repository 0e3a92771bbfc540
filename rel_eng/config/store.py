"""`[store]`: the compose store's database (rel_eng.store)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rel_eng.config.problems import Problems
from rel_eng.config.table import NOTHING, Section, setting

BACKENDS = ("sqlite", "postgresql")
DEFAULT_FILE = "rel-eng.db"  # in the output dir, beside the composes


def _url(text: Any, problems: Problems, key: str, base_dir: Path | None) -> Any:
    """A database URL, a relative SQLite file resolved against the config's dir."""
    if not isinstance(text, str):
        problems.add(key, f"expected str, got {type(text).__name__} {text!r}")
        return NOTHING
    if not text:
        return ""
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
            url = url.set(database=str((Path(base_dir or ".") / url.database).resolve()))
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class StoreConfig(Section):
    enabled: bool = setting(True, "record composes, builds, artifacts and messages")
    url: str = setting("", '"" = sqlite:///<output>/rel-eng.db', convert=_url)

    def url_for(self, output: Path) -> str:
        return self.url or f"sqlite:///{Path(output).resolve() / DEFAULT_FILE}"
