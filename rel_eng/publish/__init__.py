"""Publishers run after a drop's deliverables and metadata exist, before the README and staging.

Each publisher is a callable `(topdir: Path, config: Config, share: bool = True)` registered by
name; it is enabled by its own config section. EC2 plugs in here. `rel-eng compose` publishes
with share=False (registered, private), stages the drop, and only then runs the publisher's
sharer from `enabled_sharers` (made public, announced): a failure at staging leaves nothing public.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # types only: publishers import config, never the other way round
    from rel_eng.config import Config

Publisher = Callable[[Path, "Config"], object]


def enabled_publishers(config: Config) -> list[tuple[str, Publisher]]:
    """The publishers the config switches on, in the order they run."""
    if config.ec2.enabled:
        from rel_eng.publish.ec2_publish import publish_ec2  # boto3 only loads when used

        return [("ec2", publish_ec2)]
    return []


def enabled_sharers(config: Config) -> list[tuple[str, Publisher]]:
    """The second half of each enabled publisher: make public and announce, after staging."""
    if config.ec2.enabled:
        from rel_eng.publish.ec2_publish import share_ec2

        return [("ec2", share_ec2)]
    return []
