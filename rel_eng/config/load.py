"""load_config: the config file, the releases file and the streams file, parsed once.

Every problem of all three is collected with its file and key and reported together
(ConfigError, exit 2).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rel_eng.config import ami_attributes
from rel_eng.config.model import Config, check_config
from rel_eng.config.problems import Problems
from rel_eng.config.read import read_toml
from rel_eng.config.releases import load_releases
from rel_eng.config.schedule import load_streams
from rel_eng.config.table import parse_section, parse_table, sections
from rel_eng.errors import ConfigError


def load_config(path: Path | None = None, releases_file: Path | None = None) -> Config:
    """Parse the pipeline config (defaults when path is None) and the release definitions."""
    problems = Problems(str(path) if path else "(defaults)")
    doc = read_toml(path) if path is not None else {}
    cfg = parse_document(doc, problems, path.parent if path is not None else None)
    cfg = dataclasses.replace(cfg, source=problems.source)
    check_config(cfg, problems)
    rel_path = Path(releases_file) if releases_file else Path(cfg.releases_file)
    releases, rel_problems = load_releases(rel_path)
    rel_checks = Problems(str(rel_path))
    ami_attributes.check(cfg.ec2, releases, cfg.arches, rel_checks, problems)
    rel_problems = rel_problems + rel_checks.items
    schedule, sched_problems = load_streams(cfg.schedule, [r.key for r in releases])
    found = problems.items + rel_problems + sched_problems
    if found:
        raise ConfigError(found)
    return dataclasses.replace(cfg, releases=releases, releases_file=str(rel_path), schedule=schedule)


# Keys of older configs, refused with what to write instead (never read for their old meaning).
REPLACED = {
    "compose.qcow2_compress": 'replaced by qcow2_compression = "zlib", "zstd" or "none" (the '
                              'default is "zlib")',
    "ec2.messaging": "replaced by [messaging] enabled = true (every message, the AMIs' "
                     "included, is sent from the compose store's outbox)",
}


def _refuse_replaced(table: dict, problems: Problems, where: str) -> dict:
    """`table` without the replaced keys, each one reported with its replacement."""
    gone = [k for k in table if f"{where}{k}" in REPLACED]
    for key in gone:
        problems.add(f"{where}{key}", REPLACED[f"{where}{key}"])
    return {k: v for k, v in table.items() if k not in gone}


def parse_document(doc: dict, problems: Problems, base_dir: Path | None) -> Config:
    """A whole config file: `[compose]`, then every section it has (absent ones keep defaults)."""
    tables = sections(Config)
    problems.unknown(doc, {"compose", *tables}, "")
    compose = problems.table(doc, "compose")
    compose = _refuse_replaced(compose, problems, "compose.")
    if isinstance(doc.get("ec2"), dict):
        doc = {**doc, "ec2": _refuse_replaced(doc["ec2"], problems, "ec2.")}
    cfg = parse_table(Config, compose, problems, "compose.", base_dir)
    values = {f.name: parse_section(f, doc[name], problems, base_dir)
              for name, f in tables.items() if name in doc}
    return dataclasses.replace(cfg, **values)
