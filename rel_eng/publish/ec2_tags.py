"""The tags that make EC2 publishing idempotent: every snapshot and AMI says which drop and image
it belongs to, so a rerun finds what exists instead of creating it again."""

from __future__ import annotations

from typing import Iterable

COMPOSE = "rel-eng:compose-id"
IMAGE = "rel-eng:image-name"  # the image NVRA
REGION = "rel-eng:region"
DROP = "rel-eng:drop"  # "weekly" or "milestone"; prune only ever touches weeklies
UPLOAD = "rel-eng:upload"  # "complete" once a snapshot holds every block
SOURCE_AMI = "rel-eng:source-ami"  # on copies: the base-region AMI


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tag_dict(tags: Iterable[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}


def tag_filters(tags: dict[str, str]) -> list[dict[str, object]]:
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]


def image_tags(compose_id: str, nvra: str, weekly: bool) -> dict[str, str]:
    """Tags shared by an image's snapshot and all its AMIs (plus REGION on AMIs)."""
    return {
        "Name": nvra,
        COMPOSE: compose_id,
        IMAGE: nvra,
        DROP: "weekly" if weekly else "milestone",
    }
