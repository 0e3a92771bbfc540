"""Publishing against moto's standalone server through real boto3 HTTP calls."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import boto3
import pytest

from ec2_helpers import (
    BASE, REGIONS, aws_env, config_with, ec2_config, ec2_jobs, make_compose, moto_url,  # noqa: F401
    fake_response, nonzero_blocks, recording_session,
)
from rel_eng.digest import DigestMismatch
from tests.oracles import block_sha256
from rel_eng.publish import ec2_tags
from rel_eng.publish.aws_clients import Ec2Error
from rel_eng.publish.ec2_publish import publish_ec2, share_ec2
from rel_eng.publish.ebs_upload import upload_ebs_direct
from rel_eng.publish.aws_clients import AwsClients

ALL = (BASE, *REGIONS)


def own_images(region: str, **tags: str) -> list[dict]:
    ec2 = boto3.client("ec2", region_name=region)
    return ec2.describe_images(Owners=["self"], Filters=ec2_tags.tag_filters(tags))["Images"]


def test_full_publish_of_two_images_into_three_regions(aws_env, tmp_path, capsys):
    topdir, plan = make_compose(tmp_path)
    session, rec = recording_session()
    report = publish_ec2(topdir, config_with(ec2_config()), session=session)
    staged = json.loads((topdir / "compose" / "metadata" / "ec2.json").read_text())
    # a milestone candidate's AMIs stay private until it is released
    assert [i["public"] for i in staged["images"].values()] == [False, False]
    assert not any(op == "ModifyImageAttribute" for op, _, _ in rec.calls)
    capsys.readouterr()
    report = share_ec2(topdir, config_with(ec2_config()), public=True, session=session)

    jobs = ec2_jobs(plan)
    assert sorted(j.arch for j in jobs) == ["i686", "x86_64"]
    assert sorted(r.job.nvra for r in report.images) == sorted(j.nvra for j in jobs)
    assert report.skipped == {}

    for job in jobs:
        for region in ALL:
            found = own_images(region, **{ec2_tags.COMPOSE: plan.compose_id, ec2_tags.IMAGE: job.nvra})
            assert len(found) == 1, (job.nvra, region)
            image = found[0]
            assert image["Name"] == job.nvra
            assert plan.compose_id in image["Description"]
            tags = ec2_tags.tag_dict(image["Tags"])
            assert tags[ec2_tags.REGION] == region and tags[ec2_tags.DROP] == "milestone"
            # released (public=True): launch permission and snapshot permission "all"
            ec2 = boto3.client("ec2", region_name=region)
            perms = ec2.describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission")
            assert {"Group": "all"} in perms["LaunchPermissions"]
            assert len(image["BlockDeviceMappings"]) == 1
            for mapping in image["BlockDeviceMappings"]:
                snap = ec2.describe_snapshot_attribute(SnapshotId=mapping["Ebs"]["SnapshotId"],
                                                       Attribute="createVolumePermission")
                assert {"Group": "all"} in snap["CreateVolumePermissions"]

    # moto keeps only Name/Description of RegisterImage: check the request botocore sent
    sent = rec.sent_query("RegisterImage")
    assert len(sent) == 2
    by_arch = {q["Architecture"][0]: q for q in sent}
    assert set(by_arch) == {"x86_64", "i386"}
    for arch, q in by_arch.items():
        assert q["VirtualizationType"] == ["hvm"]
        assert q["RootDeviceName"] == ["/dev/sda1"]
        assert q["BlockDeviceMapping.1.DeviceName"] == ["/dev/sda1"]
        assert q["BlockDeviceMapping.1.Ebs.VolumeType"] == ["gp3"]
        assert q["BlockDeviceMapping.1.Ebs.VolumeSize"] == ["1"]
        assert q["BlockDeviceMapping.1.Ebs.DeleteOnTermination"] == ["true"]
        assert q["BlockDeviceMapping.1.Ebs.SnapshotId"][0].startswith("snap-")
        # Fedora 19 (releases.toml): no ENA (kernel 3.9), IMDSv1 allowed (cloud-init 0.7), BIOS.
        assert q["EnaSupport"] == ["false"]
        assert "SriovNetSupport" not in q
        assert q["BootMode"] == ["legacy-bios"]
        assert "ImdsSupport" not in q
        assert q["Name"][0].endswith(".x86_64" if arch == "x86_64" else ".i686")
    # each snapshot registered is one this run uploaded, tagged with compose and image
    uploaded = {r["SnapshotId"] for op, r in rec.responses if op == "StartSnapshot"}
    assert {q["BlockDeviceMapping.1.Ebs.SnapshotId"][0] for q in sent} == uploaded
    snaps = boto3.client("ec2", region_name=BASE).describe_snapshots(SnapshotIds=sorted(uploaded))["Snapshots"]
    assert len(snaps) == len(uploaded) == 2
    for snap in snaps:
        tags = ec2_tags.tag_dict(snap["Tags"])
        assert tags[ec2_tags.COMPOSE] == plan.compose_id and tags[ec2_tags.UPLOAD] == "complete"

    copies = rec.ops("CopyImage")
    assert sorted(c["SourceRegion"] for c in copies) == [BASE] * 4
    assert sorted(region for op, region, _ in rec.calls if op == "CopyImage") == sorted(REGIONS * 2)

    # nothing became public before every AMI existed and was available in every region
    order = [op for op, _, _ in rec.calls]
    first_share = min(order.index(op) for op in ("ModifyImageAttribute", "ModifySnapshotAttribute"))
    assert first_share > max(i for i, op in enumerate(order) if op in ("CopyImage", "RegisterImage"))
    last_wait = max(i for i, (op, _, p) in enumerate(rec.calls) if op == "DescribeImages" and p.get("ImageIds"))
    assert first_share > last_wait

    # results: metadata file, printed messages in the image uploader's shape
    data = json.loads((topdir / "compose" / "metadata" / "ec2.json").read_text())
    assert data["compose_id"] == plan.compose_id
    assert len(report.images) == len(data["images"]) == 2
    for r in report.images:
        entry = data["images"][r.job.nvra]
        assert entry["regions"] == r.amis and set(entry["regions"]) == set(ALL)
        assert set(entry["snapshots"]) == set(ALL) and entry["public"] is True
        assert entry["architecture"] == ("i386" if r.job.arch == "i686" else "x86_64")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(m["topic"] for m in lines) == [  # the uploader's per-image suffix
        f"fedora_image_uploader.published.v1.aws.Cloud_Base_EC2.19.{arch}"
        for arch in ("i686", "x86_64")]
    bodies = {m["body"]["image_name"]: m["body"] for m in lines}
    for r in report.images:
        assert bodies[r.job.nvra] == {
            "architecture": r.job.arch, "compose_id": plan.compose_id, "image_name": r.job.nvra,
            "regions": r.amis, "release": 19, "subvariant": "Cloud_Base_EC2",
        }


def test_only_nonzero_blocks_are_sent(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    job = next(j for j in ec2_jobs(plan) if j.arch == "x86_64")
    path = next(topdir.glob(f"work/build/{job.key}/*.raw"))
    session, rec = recording_session()
    clients = AwsClients(ec2_config(), session)
    result = upload_ebs_direct(clients, ec2_config(), BASE, path, 1, {"k": "v"}, "test upload",
                               raw_sha256=block_sha256(path))

    block_size = next(r["BlockSize"] for op, r in rec.responses if op == "StartSnapshot")
    assert result.block_size == block_size
    expected = nonzero_blocks(path, block_size)
    puts = rec.ops("PutSnapshotBlock")
    assert len(puts) == len(expected) == result.blocks_sent
    assert sorted(p["BlockIndex"] for p in puts) == sorted(expected)
    assert result.bytes_sent == len(expected) * block_size
    assert result.zero_blocks_skipped >= (64 * 1024) // block_size  # the written-zero extent
    for p in puts:
        data = expected[p["BlockIndex"]]
        assert p["BlockData"] == data and p["DataLength"] == block_size
        assert p["Checksum"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert p["ChecksumAlgorithm"] == "SHA256"
    (complete,) = rec.ops("CompleteSnapshot")
    linear = hashlib.sha256(b"".join(hashlib.sha256(expected[i]).digest() for i in sorted(expected)))
    assert complete == {"SnapshotId": result.snapshot_id, "ChangedBlocksCount": len(expected),
                        "Checksum": base64.b64encode(linear.digest()).decode(),
                        "ChecksumAlgorithm": "SHA256", "ChecksumAggregationMethod": "LINEAR"}
    # the server holds exactly those blocks, byte for byte
    ebs = boto3.client("ebs", region_name=BASE)
    listed = ebs.list_snapshot_blocks(SnapshotId=result.snapshot_id)["Blocks"]
    assert sorted(int(b["BlockIndex"]) for b in listed) == sorted(expected)
    some = sorted(expected)[len(expected) // 2]
    got = ebs.get_snapshot_block(SnapshotId=result.snapshot_id, BlockIndex=some, BlockToken="t")
    assert got["BlockData"].read() == expected[some]


def test_block_size_is_taken_from_start_snapshot(aws_env, tmp_path):
    """Rewrite StartSnapshot's BlockSize to 64 KiB: the upload follows it (moto stores any size)."""
    topdir, plan = make_compose(tmp_path)
    path = next(topdir.glob("work/build/ec2-x86_64/*.raw"))
    session, rec = recording_session()

    def bigger_blocks(parsed, **kw):
        parsed["BlockSize"] = 65536
    session.events.register("after-call.ebs.StartSnapshot", bigger_blocks)
    result = upload_ebs_direct(AwsClients(ec2_config(), session), ec2_config(), BASE, path, 1, {},
                               "d", raw_sha256=block_sha256(path))
    expected = nonzero_blocks(path, 65536)
    assert result.block_size == 65536
    assert sorted(p["BlockIndex"] for p in rec.ops("PutSnapshotBlock")) == sorted(expected)
    assert all(len(p["BlockData"]) == 65536 for p in rec.ops("PutSnapshotBlock"))


def test_weekly_stays_private_and_gets_deprecated(aws_env, tmp_path):
    """moto has no EnableImageDeprecation: the hook answers it and records the request."""
    topdir, plan = make_compose(tmp_path, weekly=True, release="rawhide")
    session, rec = recording_session()

    def answer(params, **kw):
        return fake_response(200, b""), {"Return": True}  # (http, parsed) short-circuits the call
    session.events.register("before-call.ec2.EnableImageDeprecation", answer)
    report = publish_ec2(topdir, config_with(ec2_config(deprecate_days=28)), session=session)

    calls = rec.ops("EnableImageDeprecation")
    assert len(calls) == 2 * len(ALL)
    for r in report.images:
        base_created = r.images[BASE]["CreationDate"]
        expected = ami_deprecation(base_created, 28)
        got = {c["ImageId"]: c["DeprecateAt"] for c in calls}
        assert BASE in r.amis
        for region, image_id in r.amis.items():
            assert got[image_id] == expected
        assert r.public is False and r.deprecate_at == expected
    assert rec.ops("ModifyImageAttribute") == [] and rec.ops("ModifySnapshotAttribute") == []
    assert len(report.images) == 2
    for region in ALL:
        weeklies = own_images(region, **{ec2_tags.DROP: "weekly"})
        assert len(weeklies) == 2, region
        for image in weeklies:
            assert image["Public"] is False
    data = json.loads((topdir / "compose" / "metadata" / "ec2.json").read_text())
    assert all(e["deprecate_at"] and e["public"] is False for e in data["images"].values())


def ami_deprecation(created: str, days: int):
    import datetime as dt

    when = dt.datetime.fromisoformat(created.replace("Z", "+00:00")) + dt.timedelta(days=days)
    return when.replace(second=0, microsecond=0)


def test_regions_option_overrides_copies_and_merges_results(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    cfg = config_with(ec2_config(regions=()))
    publish_ec2(topdir, cfg, session=recording_session()[0])
    session, rec = recording_session()
    publish_ec2(topdir, cfg, ["ap-southeast-2"], session=session)
    assert rec.ops("RegisterImage") == [] and rec.ops("StartSnapshot") == []
    assert sorted(r for op, r, _ in rec.calls if op == "CopyImage") == ["ap-southeast-2"] * 2
    data = json.loads((topdir / "compose" / "metadata" / "ec2.json").read_text())
    assert len(data["images"]) == 2
    for entry in data["images"].values():
        assert set(entry["regions"]) == {BASE, "ap-southeast-2"}


def _damage(path):
    """One byte of data flipped, same size: a disk changed after its builder handed it over."""
    with open(path, "r+b") as fh:
        fd = fh.fileno()
        at = os.lseek(fd, 0, os.SEEK_DATA) + 100
        fh.seek(at)
        byte = fh.read(1)
        fh.seek(at)
        fh.write(bytes([byte[0] ^ 0x55]))


def test_a_raw_disk_changed_since_the_build_is_never_completed_as_a_snapshot(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    path = next(topdir.glob("work/build/ec2-x86_64/*.raw"))
    recorded = block_sha256(path)
    _damage(path)
    session, rec = recording_session()
    with pytest.raises(DigestMismatch) as err:
        upload_ebs_direct(AwsClients(ec2_config(), session), ec2_config(), BASE, path, 1, {}, "d",
                          raw_sha256=recorded)
    assert str(path) in str(err.value) and recorded in str(err.value)
    assert block_sha256(path) in str(err.value)
    assert rec.ops("PutSnapshotBlock")  # checked in the same pass as the upload...
    assert rec.ops("CompleteSnapshot") == []  # ...and never completed
    (start,) = [r for op, r in rec.responses if op == "StartSnapshot"]
    ec2 = boto3.client("ec2", region_name=BASE)
    left = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert start["SnapshotId"] not in [s["SnapshotId"] for s in left]


def test_publish_refuses_a_damaged_raw_disk_and_registers_nothing(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    for path in topdir.glob("work/build/ec2-*/*.raw"):
        _damage(path)
    with pytest.raises(Ec2Error, match="ec2-x86_64/.*block sha256 is .*, expected .*not completed"):
        publish_ec2(topdir, config_with(ec2_config(regions=())))
    ec2 = boto3.client("ec2", region_name=BASE)
    assert ec2.describe_images(Owners=["self"])["Images"] == []
