"""A mirror path a compose has been allocated, reserved in the mirror until it is staged.

Two output dirs that share one mirror each hold their own composes; only the mirror can tell
one that the other took Beta-1.1 a minute ago and has not staged it yet. So allocation, under
the mirror's lock, counts these reservations as taken and writes its own: one small file per
reserved path in the mirror root's hidden `.rel-eng-reserved/` (mirror syncs skip dot
entries), removed once the drop is staged. A reservation of a compose that never stages keeps
its name taken, as its compose dir does in its output dir: a respin is never reused.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, unquote

from rel_eng.atomic import atomic_write, this_host

DIR = ".rel-eng-reserved"


def _path(mirror_root: Path, mirror_path: str) -> Path:
    return mirror_root / DIR / quote(mirror_path, safe="")


def reserve(mirror_root: Path, mirror_path: str, compose_id: str, topdir: Path) -> None:
    """Call under the mirror's lock (locks.mirror_lock)."""
    record = {"mirror_path": mirror_path, "compose_id": compose_id,
              "topdir": str(topdir.resolve()), "host": this_host()}
    atomic_write(_path(mirror_root, mirror_path), json.dumps(record, sort_keys=True) + "\n")


def reservations(mirror_root: Path) -> dict[str, dict]:
    """mirror path -> its record, for every reservation in the mirror."""
    folder = mirror_root / DIR
    out = {}
    if not folder.is_dir():
        return out
    for p in folder.iterdir():
        if p.name.startswith("."):
            continue
        try:
            record = json.loads(p.read_text())
        except (OSError, ValueError):
            record = {}
        out[unquote(p.name)] = record if isinstance(record, dict) else {}
    return out


def release(mirror_root: Path, mirror_path: str) -> None:
    """The drop is staged: the mirror itself holds its name now."""
    _path(mirror_root, mirror_path).unlink(missing_ok=True)
