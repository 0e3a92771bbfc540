"""Retire weekly AMIs: deregister those older than N days in every configured region and delete
their snapshots. Only AMIs this pipeline tagged as weekly are ever considered. Dry run unless `yes`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import boto3
import botocore.exceptions

from rel_eng.errors import InputError
from rel_eng.publish import ami, ec2_tags
from rel_eng.publish.aws_clients import AwsClients, Ec2Error, describe_failure, error_code

if TYPE_CHECKING:
    from rel_eng.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneAction:
    region: str
    image_id: str
    name: str
    created: dt.datetime
    snapshots: tuple[str, ...]

    def describe(self, done: bool) -> str:
        verb = "deregistered" if done else "would deregister"
        snaps = ", ".join(self.snapshots) or "no snapshots"
        return (f"{verb} {self.image_id} ({self.region}, {self.name}, created "
                f"{self.created:%Y-%m-%d}) and {'deleted' if done else 'delete'} {snaps}")


def _created(image: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(image["CreationDate"].replace("Z", "+00:00"))


def find_expired(clients: AwsClients, region: str, cutoff: dt.datetime) -> list[PruneAction]:
    ec2 = clients.ec2(region)
    images = ec2.describe_images(
        Owners=["self"], Filters=ec2_tags.tag_filters({ec2_tags.DROP: "weekly"}))["Images"]
    actions = []
    for image in sorted(images, key=lambda i: i["CreationDate"]):
        created = _created(image)
        if created >= cutoff:
            continue
        snaps = set(ami.snapshot_ids(image))
        tags = ec2_tags.tag_dict(image.get("Tags"))
        if ec2_tags.SOURCE_AMI not in tags:
            # a base-region AMI: its uploaded snapshot carries the same compose/image tags
            keys = {k: tags[k] for k in (ec2_tags.COMPOSE, ec2_tags.IMAGE) if k in tags}
            if len(keys) == 2:
                found = ec2.describe_snapshots(OwnerIds=["self"], Filters=ec2_tags.tag_filters(keys))
                snaps.update(s["SnapshotId"] for s in found["Snapshots"])
        actions.append(PruneAction(region, image["ImageId"], image.get("Name", ""), created,
                                   tuple(sorted(snaps))))
    return actions


def prune(
    config: "Config",
    days: int | None = None,
    yes: bool = False,
    *,
    session: boto3.session.Session | None = None,
    now: dt.datetime | None = None,
    out: Callable[[str], None] = print,
) -> list[PruneAction]:
    """Print (and with `yes`, carry out) the removal of weekly AMIs older than `days`."""
    cfg = config.ec2
    days = cfg.retention_days if days is None else days
    if days < 1:
        raise InputError(f"--days must be at least 1, got {days}")
    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff = now - dt.timedelta(days=days)
    clients = AwsClients(cfg, session)
    clients.require_credentials()
    actions: list[PruneAction] = []
    try:
        for region in cfg.all_regions:
            actions.extend(find_expired(clients, region, cutoff))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise describe_failure("listing weekly AMIs", exc) from None
    if not actions:
        out(f"no weekly AMIs older than {days} days in {', '.join(cfg.all_regions)}")
    failures = []
    for action in actions:
        if yes:
            try:
                remove(clients.ec2(action.region), action)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                failures.append(str(describe_failure(f"pruning {action.image_id} in {action.region}", exc)))
                continue
        out(action.describe(done=yes))
    if not yes and actions:
        out(f"dry run: {len(actions)} AMI(s) would be removed; pass --yes to remove them")
    if failures:
        raise Ec2Error("; ".join(failures), hint="rerun `rel-eng ec2 prune --yes`")
    return actions


def remove(ec2, action: PruneAction) -> None:
    """Deregister first: EC2 refuses to delete a snapshot an AMI still uses."""
    try:
        ec2.deregister_image(ImageId=action.image_id)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) not in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            raise
    for snap in action.snapshots:
        try:
            ec2.delete_snapshot(SnapshotId=snap)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "InvalidSnapshot.NotFound":
                raise
    log.info("pruned %s in %s", action.image_id, action.region)
