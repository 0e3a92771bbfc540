"""Publishers run after a drop's deliverables and metadata exist, before the README and staging.

Each publisher is a callable `(topdir: Path, config: Config) -> None` registered by name; it is
enabled by its own config section. EC2 plugs in here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rel_eng.config import Config

Publisher = Callable[[Path, Config], None]


def enabled_publishers(config: Config) -> list[tuple[str, Publisher]]:
    """The publishers the config switches on, in the order they run."""
    return []
