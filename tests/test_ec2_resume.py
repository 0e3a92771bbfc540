"""Crash and rerun without duplicates; throttling injected and retried (moto server)."""

from __future__ import annotations

import json
import threading
from collections import Counter

import boto3
import pytest

from ec2_helpers import (
    BASE, REGIONS, aws_env, config_with, ec2_config, ec2_error, ec2_jobs, json_error,  # noqa: F401
    make_compose, moto_url, nonzero_blocks, recording_session,
)
from rel_eng.publish import ec2_tags
from rel_eng.publish.aws_clients import Ec2Error
from rel_eng.publish.ec2_publish import publish_ec2

ALL = (BASE, *REGIONS)


class Crash(BaseException):
    """Stands for the process dying: nothing in the publisher catches it."""


def images_named(region: str, name: str) -> list[dict]:
    ec2 = boto3.client("ec2", region_name=region)
    return ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]


def assert_complete_without_duplicates(topdir, plan):
    data = json.loads((topdir / "compose" / "metadata" / "ec2.json").read_text())
    for job in ec2_jobs(plan):
        for region in ALL:
            named = images_named(region, job.nvra)
            assert len(named) == 1, (job.nvra, region, named)
            tagged = ec2_tags.tag_dict(named[0]["Tags"])
            assert tagged[ec2_tags.COMPOSE] == plan.compose_id and tagged[ec2_tags.REGION] == region
            assert data["images"][job.nvra]["regions"][region] == named[0]["ImageId"]
    for region in ALL:
        own = boto3.client("ec2", region_name=region).describe_images(Owners=["self"])["Images"]
        assert len(own) == len(ec2_jobs(plan))


@pytest.mark.parametrize("crash_point", ["after-call.ec2.RegisterImage", "before-call.ec2.CopyImage"])
def test_crash_after_base_register_then_rerun_completes(aws_env, tmp_path, crash_point):
    topdir, plan = make_compose(tmp_path)
    session, first = recording_session()
    fired = threading.Event()

    def crash(**kw):
        if not fired.is_set():
            fired.set()
            raise Crash(crash_point)
    session.events.register(crash_point, crash)
    with pytest.raises(Crash):
        publish_ec2(topdir, config_with(ec2_config()), session=session)
    assert len(first.ops("RegisterImage")) == 1  # the base AMI of the first image exists
    assert not (topdir / "compose" / "metadata" / "ec2.json").exists()

    session, rerun = recording_session()
    publish_ec2(topdir, config_with(ec2_config()), session=session)
    # the first image is not uploaded or registered again; only the second one is new
    assert len(rerun.ops("StartSnapshot")) == 1
    assert len(rerun.ops("RegisterImage")) == 1
    assert len(rerun.ops("PutSnapshotBlock")) < len(first.ops("PutSnapshotBlock")) * 2
    assert_complete_without_duplicates(topdir, plan)


def test_crash_during_upload_rerun_replaces_the_unfinished_snapshot(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    session, first = recording_session()
    calls = Counter()

    def crash(**kw):
        calls["put"] += 1
        if calls["put"] == 3:
            raise Crash("mid-upload")
    session.events.register("before-call.ebs.PutSnapshotBlock", crash)
    with pytest.raises(Crash):
        publish_ec2(topdir, config_with(ec2_config(workers=1)), session=session)
    (stale,) = [r["SnapshotId"] for op, r in first.responses if op == "StartSnapshot"]

    session, rerun = recording_session()
    publish_ec2(topdir, config_with(ec2_config()), session=session)
    assert rerun.ops("DeleteSnapshot") == [{"SnapshotId": stale}]
    registered = {q["BlockDeviceMapping.1.Ebs.SnapshotId"][0] for q in rerun.sent_query("RegisterImage")}
    assert stale not in registered and len(registered) == 2
    assert_complete_without_duplicates(topdir, plan)


def inject(session, plan: dict[str, tuple[int, callable]]) -> Counter:
    """Answer the first n HTTP attempts of each operation with a throttling error."""
    seen = Counter()
    lock = threading.Lock()

    def handler(request, event_name, **kw):
        op = event_name.rsplit(".", 1)[-1]
        if op not in plan:
            return None
        limit, make = plan[op]
        with lock:
            if seen[op] >= limit:
                return None
            seen[op] += 1
        return make()
    session.events.register("before-send", handler)
    return seen


def test_throttling_is_retried_by_botocore(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    session, rec = recording_session()
    wanted = {
        "StartSnapshot": (1, lambda: json_error("ThrottlingException")),
        "PutSnapshotBlock": (2, lambda: json_error("ThrottlingException")),
        "RegisterImage": (1, lambda: ec2_error("RequestLimitExceeded", 503)),
        "CopyImage": (1, lambda: ec2_error("RequestLimitExceeded", 503)),
    }
    seen = inject(session, wanted)
    publish_ec2(topdir, config_with(ec2_config()), session=session)
    assert seen == Counter({op: n for op, (n, _) in wanted.items()})
    # one API call each, more than one HTTP attempt: botocore's standard retries did it
    retried = Counter(op for op, parsed in rec.responses if parsed["ResponseMetadata"]["RetryAttempts"])
    assert set(retried) == set(wanted)
    assert len(rec.ops("RegisterImage")) == 2 and len(rec.ops("CopyImage")) == 4
    assert_complete_without_duplicates(topdir, plan)


def test_block_retries_when_botocore_gives_up(aws_env, tmp_path):
    """max_attempts = 1 turns botocore's retries off: the per-block retry with back-off takes over."""
    topdir, plan = make_compose(tmp_path)
    session, rec = recording_session()
    seen = inject(session, {"PutSnapshotBlock": (3, lambda: json_error("ThrottlingException")),
                            "StartSnapshot": (1, lambda: json_error("ServiceUnavailableException", 503))})
    publish_ec2(topdir, config_with(ec2_config(max_attempts=1, block_retries=4)), session=session)
    assert seen["PutSnapshotBlock"] == 3 and seen["StartSnapshot"] == 1
    blocks = sum(len(nonzero_blocks(p, 512)) for p in topdir.glob("work/build/ec2-*/*.raw"))
    assert len(rec.ops("PutSnapshotBlock")) == blocks + 3  # each throttled block was sent again
    assert len(rec.ops("StartSnapshot")) == 3
    assert_complete_without_duplicates(topdir, plan)


def test_block_that_keeps_failing_fails_the_publish_without_sharing(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    session, rec = recording_session()
    inject(session, {"PutSnapshotBlock": (10_000, lambda: json_error("ThrottlingException"))})
    with pytest.raises(Ec2Error) as exc:
        publish_ec2(topdir, config_with(ec2_config(max_attempts=1, block_retries=1)), session=session)
    assert "PutSnapshotBlock" in str(exc.value) and "ThrottlingException" in str(exc.value)
    assert rec.ops("RegisterImage") == [] and rec.ops("ModifyImageAttribute") == []
    assert not (topdir / "compose" / "metadata" / "ec2.json").exists()
