"""The "published" message of Fedora's image uploader, one per image.

Printed as one JSON line per image. Sending is the compose store's outbox's job: the AMIs and
their messages are recorded together (rel_eng.store.recorder), then published when
[messaging] enabled is on, so a message is neither lost nor sent twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from rel_eng.messaging.bodies import ami_topic

log = logging.getLogger(__name__)

TOPIC = "fedora_image_uploader.published.v1.aws"


def published_body(*, arch: str, compose_id: str, image_name: str, regions: dict[str, str],
                   release: int, subvariant: str) -> dict[str, Any]:
    return {
        "architecture": arch,
        "compose_id": compose_id,
        "image_name": image_name,
        "regions": dict(sorted(regions.items())),
        "release": int(release),
        "subvariant": subvariant,
    }


def emit(bodies: list[dict[str, Any]], send: bool, out: Callable[[str], None] = print) -> None:
    """Print each body; `send` only says so (the outbox sends)."""
    for body in bodies:
        out(json.dumps({"topic": ami_topic(body), "body": body}, sort_keys=True))
    if send:
        log.info("%d %s message(s) queued in the compose store's outbox", len(bodies), TOPIC)
