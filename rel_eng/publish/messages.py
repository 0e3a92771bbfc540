"""The "published" message of Fedora's image uploader, one per image.

Printed as one JSON line per image; sent with fedora-messaging instead when `ec2.messaging` is on,
the library is installed and its config file exists.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

from rel_eng.publish.aws_clients import Ec2Error

log = logging.getLogger(__name__)

TOPIC = "fedora_image_uploader.published.v1.aws"
FEDORA_MESSAGING_CONF = "/etc/fedora-messaging/config.toml"


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


def _fedora_messaging_ready() -> bool:
    conf = Path(os.environ.get("FEDORA_MESSAGING_CONF", FEDORA_MESSAGING_CONF))
    if not conf.is_file():
        log.warning("fedora-messaging config %s not found; printing messages instead", conf)
        return False
    try:
        import fedora_messaging.api  # noqa: F401
    except ImportError:
        log.warning("fedora-messaging is not installed; printing messages instead")
        return False
    return True


def emit(bodies: list[dict[str, Any]], send: bool, out: Callable[[str], None] = print) -> str:
    """Send or print each body; returns "sent" or "printed"."""
    if send and _fedora_messaging_ready():
        from fedora_messaging import api, message

        for body in bodies:
            try:
                api.publish(message.Message(topic=TOPIC, body=body))
            except Exception as exc:  # the library's own exception tree is not installed here to name
                raise Ec2Error(f"sending {TOPIC} for {body['image_name']} failed: {type(exc).__name__}",
                               hint="the AMIs are published; rerun the publish to resend") from None
            log.info("sent %s for %s", TOPIC, body["image_name"])
        return "sent"
    for body in bodies:
        out(json.dumps({"topic": TOPIC, "body": body}, sort_keys=True))
    return "printed"
