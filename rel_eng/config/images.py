"""`[images.<key>]`: the image types a compose builds (generic and EC2 by default)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rel_eng.config.boot_test import PLATFORMS
from rel_eng.config.problems import Problems
from rel_eng.config.table import Section, parse_table, setting

_REQUIRED = ("name", "subvariant", "kickstart")


@dataclass(frozen=True)
class ImageType(Section):
    key: str = ""  # the table's name: "generic" / "ec2"
    name: str = setting("", "image name, e.g. Fedora-Cloud-Base")
    subvariant: str = setting("", "productmd subvariant, tells generic from EC2")
    kickstart: str = setting("", "file name inside the kickstart dir")
    description: str = setting("", "one line for the README and images.json")
    platform: str = setting("nocloud", "how the boot gate boots it: ec2 | openstack | nocloud",
                            choices=PLATFORMS)


DEFAULT_IMAGE_TYPES = (
    ImageType("generic", "Fedora-Cloud-Base", "Cloud_Base", "fedora-cloud-base.ks",
              "Generic cloud image for OpenStack, Eucalyptus and other clouds", "openstack"),
    ImageType("ec2", "Fedora-Cloud-Base-EC2", "Cloud_Base_EC2", "fedora-cloud-base-ec2.ks",
              "Amazon EC2 image", "ec2"),
)


def parse_images(table: Any, problems: Problems, where: str, base_dir: Path | None) -> tuple[ImageType, ...]:
    """`[images.<key>]` tables: a key named like a default image type starts from it."""
    defaults = {t.key: t for t in DEFAULT_IMAGE_TYPES}
    if not isinstance(table, dict):
        problems.add("images", f"expected [images.<key>] tables, got {type(table).__name__}")
        return DEFAULT_IMAGE_TYPES
    if not table:
        problems.add("images", "defines no image (add an [images.<key>] table or drop [images])")
    out = []
    for key, sub in table.items():
        problems.name(f"images.{key}", key)
        if not isinstance(sub, dict):
            problems.add(f"images.{key}", "expected a table")
            continue
        image = parse_table(ImageType, sub, problems, f"{where}{key}.", base_dir,
                            base=defaults.get(key, ImageType()))
        for name in _REQUIRED:
            if not getattr(image, name):
                problems.add(f"{where}{key}.{name}", "is required")
        out.append(dataclasses.replace(image, key=key))
    return tuple(out)
