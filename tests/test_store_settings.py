"""The [store] table: where the compose store lives, every mistake reported with file and key."""

from __future__ import annotations

import json

import pytest

from rel_eng.config import Config, load_config
from rel_eng.errors import ConfigError
from rel_eng.config.store import StoreConfig


def config_with(tmp_path, store: str):
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(f"[store]\n{store}")
    return cfg


def test_urls_are_normalised_and_round_trip(tmp_path):
    cfg = config_with(tmp_path, 'url = "sqlite:///state/rel-eng.db"\n')
    config = load_config(cfg)
    assert config.store == StoreConfig(url=f"sqlite:///{tmp_path / 'state' / 'rel-eng.db'}")
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    pg = load_config(config_with(tmp_path, 'url = "postgresql://releng@db.example.org/releng"\n'))
    assert pg.store.url == "postgresql://releng@db.example.org/releng"
    assert load_config().store.url_for(tmp_path / "out") == \
        f"sqlite:///{(tmp_path / 'out').resolve()}/rel-eng.db"


@pytest.mark.parametrize("store, problem", [
    ('url = "postgresql://releng:hunter2@db/releng"\n',
     "store.url: 'postgresql://releng:***@db/releng' holds a password; config is copied into "
     "every compose, so put the password in ~/.pgpass or PGPASSWORD instead"),
    ('url = "mysql://db/releng"\n', "store.url: unsupported database 'mysql' (use sqlite or postgresql)"),
    ('url = "sqlite://"\n',
     "store.url: needs a file: an in-memory SQLite store forgets everything at exit"),
    ('url = "a store"\n', "store.url: 'a store' is not a database URL (e.g. "
                          "sqlite:////srv/rel-eng.db or postgresql://rel-eng@db.example.org/releng)"),
    ('enabled = "yes"\n', "store.enabled: expected bool, got str 'yes'"),
    ('path = "/srv"\n', "store.path: unknown key (allowed: enabled, url)"),
])
def test_store_mistakes(tmp_path, store, problem):
    cfg = config_with(tmp_path, store)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert err.value.problems == [f"{cfg}: {problem}"]
