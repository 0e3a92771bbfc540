"""Who may launch an AMI, region by region: Block Public Access, public and organization
sharing, taking it back, and the SSM "latest" pointer.

Block Public Access is an account setting per region, one for AMIs and one for snapshots; new
accounts and regions have the AMI one on. Either one keeps the region's AMI private: a public
AMI whose snapshot cannot be public launches, but copies of it fail ("no permission to access
the storage"). Organizations and OUs get launch permissions only: createVolumePermission names
accounts or "all", never an organization, and AWS lets an organization's accounts launch a
shared AMI without access to its snapshots.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from rel_eng.config.ec2 import Ec2Config

log = logging.getLogger(__name__)

# What each region of an image ends as (ec2.json "visibility").
PUBLIC = "public"  # launch permission "all" (and "all" on its snapshots)
SHARED = "shared"  # launch permission for the configured organizations / OUs only
PRIVATE = "private"  # the owner account alone, as the drop's rule says
BLOCKED = "blocked"  # meant to be public, kept private by the region's Block Public Access
VISIBLE = (PUBLIC, SHARED)  # where the SSM pointer may point

UNBLOCKED = "unblocked"
BLOCKED_BY_POLICY = "declarative-policy"  # set by the organization: the account cannot lift it
LIFT = {"image": "aws ec2 disable-image-block-public-access --region {region}",
        "snapshot": "aws ec2 disable-snapshot-block-public-access --region {region}"}
REFUSED_PUBLIC = "OperationNotPermitted"  # ModifyImageAttribute's code when the setting blocks


@dataclass(frozen=True)
class Block:
    """A region whose Block Public Access keeps AMIs (or their snapshots) from being public."""

    region: str
    settings: tuple[tuple[str, str, str], ...]  # (image|snapshot, state, managed by)

    def line(self) -> str:
        parts = [f"{kind} block public access is {state}" for kind, state, _ in self.settings]
        commands = [f"`{LIFT[kind].format(region=self.region)}`"
                    for kind, _, managed_by in self.settings if managed_by != BLOCKED_BY_POLICY]
        how = [f"lift it with {' and '.join(commands)}"] if commands else []
        how += [f"the {kind} setting comes from the organization's declarative policy: change it there"
                for kind, _, managed_by in self.settings if managed_by == BLOCKED_BY_POLICY]
        return (f"{self.region}: {' and '.join(parts)}, the AMIs stay private there "
                f"({'; '.join(how)}; then share again)")


def public_block(ec2: Any, region: str) -> Block | None:
    """The region's two Block Public Access settings, read before anything is made public."""
    image = ec2.get_image_block_public_access_state()
    snapshot = ec2.get_snapshot_block_public_access_state()
    settings = []
    state = image.get("ImageBlockPublicAccessState", UNBLOCKED)
    if state != UNBLOCKED:
        settings.append(("image", state, image.get("ManagedBy", "account")))
    state = snapshot.get("State", UNBLOCKED)
    if state != UNBLOCKED:
        settings.append(("snapshot", state, snapshot.get("ManagedBy", "account")))
    return Block(region, tuple(settings)) if settings else None


def org_permissions(cfg: Ec2Config) -> list[dict[str, str]]:
    return ([{"OrganizationArn": arn} for arn in cfg.share_organizations]
            + [{"OrganizationalUnitArn": arn} for arn in cfg.share_organizational_units])


def share_orgs(ec2: Any, cfg: Ec2Config, image_id: str) -> bool:
    """Launch permissions for the configured organizations and OUs (adding one twice is a no-op)."""
    perms = org_permissions(cfg)
    if perms:
        ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": perms})
    return bool(perms)


def make_public(ec2: Any, image_id: str, snapshots: list[str]) -> bool:
    """Snapshots first, then the AMI: False when a setting refuses it (turned on after
    `public_block` read it), and the snapshots' public grant is withdrawn again."""
    try:
        for snap in snapshots:
            ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                          OperationType="add", GroupNames=["all"])
        ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]})
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != REFUSED_PUBLIC:
            raise
        for snap in snapshots:
            ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                          OperationType="remove", GroupNames=["all"])
        return False
    return True


def take_back(ec2: Any, image_id: str, snapshots: list[str]) -> None:
    """Remove every launch permission of the AMI and every createVolumePermission of its
    snapshots, as they are now (whoever added them)."""
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    granted = perms.get("LaunchPermissions", [])
    if granted:
        ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": granted})
    for snap in snapshots:
        attr = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
        granted = attr.get("CreateVolumePermissions", [])
        groups = [g["Group"] for g in granted if g.get("Group")]
        users = [u["UserId"] for u in granted if u.get("UserId")]
        if groups:
            ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                          OperationType="remove", GroupNames=groups)
        if users:
            ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                          OperationType="remove", UserIds=users)


# --- the SSM "latest" pointer -------------------------------------------------------------------

_ORDER = re.compile(r"-([0-9]{8})(?:\.[a-z])?\.([0-9]+)$")  # compose id -> (date, respin)


def pointer_name(cfg: Ec2Config, release_version: str, weekly: bool, arch: str) -> str:
    """PREFIX/<stream>/<arch>/latest; weeklies have their own stream so a milestone's pointer
    never names a weekly."""
    stream = f"{release_version}-weekly" if weekly else release_version
    return f"{cfg.ssm_prefix.rstrip('/')}/{stream}/{arch}/latest"


def compose_order(compose_id: str) -> tuple[str, int] | None:
    found = _ORDER.search(compose_id)
    return (found.group(1), int(found.group(2))) if found else None


def put_pointer(ssm: Any, name: str, image_id: str, compose_id: str) -> str:
    """Point `name` at `image_id` unless it already does, or names a newer compose's AMI (a
    rerun of an older drop never moves "latest" back). Returns what was done."""
    current = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])
    found = current.get("Parameters", [])
    if found:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
        if value == image_id:
            return "unchanged"
        theirs = compose_order(found[0].get("Description", ""))
        ours = compose_order(compose_id)
        if theirs and ours and theirs > ours:
            log.info("%s names %s of a newer compose; left as it is", name, value)
            return "newer"
    # Overwrite: the parameter outlives drops. Tags cannot be sent with Overwrite, so the compose
    # id goes in the description. DataType aws:ec2:image makes SSM check the id is an AMI.
    ssm.put_parameter(Name=name, Value=image_id, Type="String", DataType="aws:ec2:image",
                      Overwrite=True, Description=compose_id)
    return "written"


def drop_pointer(ssm: Any, name: str, image_id: str) -> bool:
    """Delete the pointer when it names `image_id` (an AMI taken back must not stay "latest")."""
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return False
        raise
    if value != image_id:
        return False
    ssm.delete_parameter(Name=name)
    return True
