"""`prune`: weekly AMIs older than N days go, with their snapshots; milestones stay (moto server)."""

from __future__ import annotations

import datetime as dt

import boto3
import botocore.exceptions
import pytest

from ec2_helpers import (
    BASE, REGIONS, aws_env, config_with, ec2_config, make_compose, moto_url,  # noqa: F401
    recording_session,
)
from rel_eng.publish import ec2_tags
from rel_eng.publish.ec2_prune import prune
from rel_eng.publish.ec2_publish import publish_ec2

ALL = (BASE, *REGIONS)


def own(region: str, drop: str) -> list[dict]:
    ec2 = boto3.client("ec2", region_name=region)
    return ec2.describe_images(Owners=["self"], Filters=ec2_tags.tag_filters({ec2_tags.DROP: drop}))["Images"]


def snapshot_exists(region: str, snap: str) -> bool:
    try:
        boto3.client("ec2", region_name=region).describe_snapshots(SnapshotIds=[snap])
    except botocore.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "InvalidSnapshot.NotFound"
        return False
    return True


@pytest.fixture
def published(aws_env, tmp_path):
    cfg = config_with(ec2_config(deprecate_days=0))
    weekly, _ = make_compose(tmp_path / "w", weekly=True, release="rawhide")
    milestone, _ = make_compose(tmp_path / "m")
    publish_ec2(weekly, cfg, session=recording_session()[0], out=lambda line: None)
    publish_ec2(milestone, cfg, session=recording_session()[0], out=lambda line: None)
    return cfg


def test_prune_leaves_young_weeklies_and_dry_run_changes_nothing(published):
    lines: list[str] = []
    assert prune(published, days=14, yes=True, out=lines.append) == []
    assert lines == [f"no weekly AMIs older than 14 days in {', '.join(ALL)}"]

    lines.clear()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    actions = prune(published, days=14, yes=False, now=later, out=lines.append)
    assert len(actions) == 2 * len(ALL)
    assert {a.region for a in actions} == set(ALL)
    assert sum(line.startswith("would deregister ami-") for line in lines) == len(actions)
    assert lines[-1] == f"dry run: {len(actions)} AMI(s) would be removed; pass --yes to remove them"
    for region in ALL:
        assert len(own(region, "weekly")) == 2
    for a in actions:
        assert all(snapshot_exists(a.region, s) for s in a.snapshots)


def test_prune_removes_old_weeklies_and_their_snapshots(published):
    lines: list[str] = []
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    session, rec = recording_session()
    actions = prune(published, days=14, yes=True, now=later, out=lines.append, session=session)
    assert len(actions) == 2 * len(ALL)
    assert sum(line.startswith("deregistered ami-") for line in lines) == len(actions)
    for region in ALL:
        assert own(region, "weekly") == []
        assert len(own(region, "milestone")) == 2  # milestones are never pruned
    for a in actions:
        assert a.snapshots and not any(snapshot_exists(a.region, s) for s in a.snapshots)
    # the base-region uploads (tagged with compose and image) are among the deleted snapshots
    base_deleted = {p["SnapshotId"] for op, region, p in rec.calls if op == "DeleteSnapshot" and region == BASE}
    tagged = boto3.client("ec2", region_name=BASE).describe_snapshots(
        OwnerIds=["self"], Filters=ec2_tags.tag_filters({ec2_tags.DROP: "weekly"}))["Snapshots"]
    assert tagged == []
    assert len(base_deleted) >= 4  # 2 AMI snapshots + 2 uploaded ones (moto keeps them apart)
