"""AMIs: the register/copy requests (pure builders), lookup by tag, waits and deprecation
(sharing is rel_eng.publish.ec2_sharing)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from typing import Any

import botocore.exceptions

from rel_eng.publish import ec2_tags
from rel_eng.publish.aws_clients import Ec2Error, describe_failure, waiter_config, waiter_failure
from rel_eng.config.ami_attributes import AmiAttributes
from rel_eng.config.ec2 import Ec2Config

log = logging.getLogger(__name__)

# Fedora arch -> EC2 Architecture. Always sent: botocore defaults a missing one to i386.
EC2_ARCH = {"x86_64": "x86_64", "i686": "i386"}
ROOT_DEVICE = "/dev/sda1"
USABLE_STATES = ("available", "pending")
BROKEN_STATES = ("failed", "error", "invalid")
_NAME_BAD = re.compile(r"[^A-Za-z0-9()\[\] ./'@_-]")


def ami_name(nvra: str) -> str:
    """The NVRA, limited to the characters and 128-character length EC2 accepts."""
    return _NAME_BAD.sub("-", nvra)[:128]


def ami_description(image_description: str, nvra: str, compose_id: str) -> str:
    return f"{image_description} {nvra} from compose {compose_id}".strip()[:255]


def register_params(cfg: Ec2Config, *, name: str, description: str, arch: str,
                    snapshot_id: str, volume_gib: int, tags: dict[str, str],
                    attributes: AmiAttributes | None = None) -> dict[str, Any]:
    """The RegisterImage request for a Fedora arch (pure, tested directly). `attributes`: the
    release's AMI attributes (rel_eng.config.ami_attributes); None: [ec2]'s defaults."""
    ec2_arch = EC2_ARCH[arch]
    params: dict[str, Any] = {
        "Name": name,
        "Description": description,
        "Architecture": ec2_arch,
        "VirtualizationType": "hvm",
        "RootDeviceName": ROOT_DEVICE,
        "BlockDeviceMappings": [{
            "DeviceName": ROOT_DEVICE,
            "Ebs": {
                "SnapshotId": snapshot_id,
                "VolumeSize": volume_gib,
                "VolumeType": cfg.volume_type,
                "DeleteOnTermination": True,
            },
        }],
        "TagSpecifications": [{"ResourceType": "image", "Tags": ec2_tags.tag_list(tags)}],
    }
    if attributes is None:
        attributes = AmiAttributes(cfg.boot_mode, cfg.imds_support, cfg.ena_support,
                                   cfg.sriov_net_support, cfg.tpm_support)
    # No i386 instance type has ENA, so an i386 AMI never claims it.
    if ec2_arch == "i386":
        attributes = dataclasses.replace(attributes, ena_support=False)
    params.update(attributes.api())
    return params


def copy_params(*, source_region: str, source_ami: str, name: str, description: str,
                tags: dict[str, str], client_token: str) -> dict[str, Any]:
    """The CopyImage request; ClientToken makes AWS itself refuse a second copy (pure)."""
    return {
        "SourceRegion": source_region,
        "SourceImageId": source_ami,
        "Name": name,
        "Description": description,
        "ClientToken": client_token[:64],
        "TagSpecifications": [{"ResourceType": "image", "Tags": ec2_tags.tag_list(tags)}],
    }


def find_own_image(ec2: Any, tags: dict[str, str], name: str) -> dict | None:
    """The AMI of this compose/image/region, by tag, else by name (a crash may have left it untagged).

    Broken AMIs (failed copies) are deregistered so the caller makes a new one.
    """
    keys = {k: tags[k] for k in (ec2_tags.COMPOSE, ec2_tags.IMAGE, ec2_tags.REGION)}
    found = ec2.describe_images(Owners=["self"], Filters=ec2_tags.tag_filters(keys))["Images"]
    if not found:
        found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
        for image in found:
            owner = ec2_tags.tag_dict(image.get("Tags")).get(ec2_tags.COMPOSE)
            if owner and owner != tags[ec2_tags.COMPOSE]:
                raise Ec2Error(f"AMI name '{name}' is already used by {image['ImageId']} of compose {owner}",
                               hint="deregister it or publish under a new release/respin")
    usable = []
    for image in found:
        if image.get("State") in BROKEN_STATES:
            log.warning("deregistering broken AMI %s (%s)", image["ImageId"], image.get("State"))
            ec2.deregister_image(ImageId=image["ImageId"])
        elif image.get("State") in USABLE_STATES:
            usable.append(image)
    if not usable:
        return None
    usable.sort(key=lambda i: i.get("CreationDate", ""))
    if len(usable) > 1:
        log.warning("%d AMIs for %s; using the oldest, %s", len(usable), name, usable[0]["ImageId"])
    image = usable[0]
    if not _has_tags(image, tags):
        ec2.create_tags(Resources=[image["ImageId"]], Tags=ec2_tags.tag_list(tags))
    return image


def _has_tags(image: dict, tags: dict[str, str]) -> bool:
    return tags.items() <= ec2_tags.tag_dict(image.get("Tags")).items()


def register(ec2: Any, params: dict[str, Any], tags: dict[str, str]) -> str:
    """Register and tag. A duplicate name (a lost response) resolves to the existing AMI."""
    try:
        image_id = ec2.register_image(**params)["ImageId"]
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] == "InvalidAMIName.Duplicate":
            existing = find_own_image(ec2, tags, params["Name"])
            if existing:
                return existing["ImageId"]
        raise describe_failure(f"RegisterImage {params['Name']}", exc) from None
    log.info("registered %s as %s", params["Name"], image_id)
    # TagSpecifications tags atomically on AWS; create_tags also covers endpoints that drop them.
    ec2.create_tags(Resources=[image_id], Tags=ec2_tags.tag_list(tags))
    return image_id


def copy(ec2: Any, params: dict[str, Any], tags: dict[str, str], region: str) -> str:
    try:
        image_id = ec2.copy_image(**params)["ImageId"]
    except botocore.exceptions.ClientError as exc:
        raise describe_failure(f"CopyImage {params['Name']} to {region}", exc) from None
    log.info("copying %s to %s as %s", params["Name"], region, image_id)
    ec2.create_tags(Resources=[image_id], Tags=ec2_tags.tag_list(tags))
    return image_id


def wait_available(ec2: Any, cfg: Ec2Config, image_id: str, region: str) -> dict:
    """Bounded wait for the AMI; returns its description (with its snapshots)."""
    try:
        ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig=waiter_config(cfg))
    except botocore.exceptions.WaiterError as exc:
        raise waiter_failure(f"AMI {image_id} in {region}", cfg, exc) from None
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def snapshot_ids(image: dict) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("SnapshotId")]


def deprecate_at(base_image: dict, days: int) -> dt.datetime:
    """From the base AMI's creation time, so a rerun sets the same time again."""
    created = dt.datetime.fromisoformat(base_image["CreationDate"].replace("Z", "+00:00"))
    return (created + dt.timedelta(days=days)).replace(second=0, microsecond=0)


def deprecate(ec2: Any, image_id: str, when: dt.datetime) -> None:
    ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=when)
