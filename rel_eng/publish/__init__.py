"""Publishers run after a drop's deliverables and metadata exist, before the README and staging.

Each publisher is a callable `(topdir: Path, config: Config) -> None` registered by name; it is
enabled by its own config section. EC2 plugs in here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # rel_eng.config imports rel_eng.publish.ec2_config: no runtime import here
    from rel_eng.config import Config

Publisher = Callable[[Path, "Config"], object]


def enabled_publishers(config: Config) -> list[tuple[str, Publisher]]:
    """The publishers the config switches on, in the order they run."""
    if config.ec2.enabled:
        from rel_eng.publish.ec2_publish import publish_ec2  # boto3 only loads when used

        return [("ec2", publish_ec2)]
    return []
