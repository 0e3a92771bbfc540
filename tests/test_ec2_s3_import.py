"""The S3 + ImportSnapshot fallback (moto server).

moto serves S3, tags, snapshots and AMIs but not ImportSnapshot/DescribeImportSnapshotTasks
(it answers HTTP 500). Those two calls are answered by botocore `before-call` hooks that check
the uploaded S3 object and hand back a snapshot made on the moto server; everything else is real.
"""

from __future__ import annotations

import hashlib
import os
import threading

import boto3
import pytest

from ec2_helpers import (
    BASE, aws_env, config_with, ec2_config, ec2_jobs, fake_response, make_compose,  # noqa: F401
    moto_url, recording_session,
)
from rel_eng.publish import ec2_tags
from rel_eng.publish.ec2_publish import publish_ec2
from rel_eng.publish.s3_import import import_params, s3_key

BUCKET = "fedora-cloud-import"


def test_s3_import_fallback(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    s3 = boto3.client("s3", region_name=BASE)
    ec2 = boto3.client("ec2", region_name=BASE)
    s3.create_bucket(Bucket=BUCKET)
    cfg = ec2_config(upload_mode="s3-import", s3_bucket=BUCKET, regions=())
    files = {p.name: p for p in topdir.glob("work/build/ec2-*/*.raw")}

    tasks: dict[str, dict] = {}
    lock = threading.Lock()

    def import_snapshot(params, **kw):
        body = params["body"]  # the serialized (query protocol) request
        bucket, key = body["DiskContainer.UserBucket.S3Bucket"], body["DiskContainer.UserBucket.S3Key"]
        obj = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        local = files[key.rsplit("/", 1)[1]]
        assert hashlib.sha256(obj).digest() == hashlib.sha256(local.read_bytes()).digest()
        vol = ec2.create_volume(Size=1, AvailabilityZone=f"{BASE}a")
        snap = ec2.create_snapshot(VolumeId=vol["VolumeId"])["SnapshotId"]
        with lock:
            task_id = f"import-snap-{len(tasks)}"
            tasks[task_id] = {"snapshot": snap, "polls": 0, "key": key}
        return fake_response(200, b""), {"ImportTaskId": task_id}

    def describe_tasks(params, **kw):
        task_id = params["body"]["ImportTaskId.1"]
        task = tasks[task_id]
        task["polls"] += 1
        # the first task is still converting on its first poll
        done = task_id != "import-snap-0" or task["polls"] > 1
        detail = {"Status": "completed", "SnapshotId": task["snapshot"]} if done else {"Status": "active"}
        return fake_response(200, b""), {"ImportSnapshotTasks": [{"ImportTaskId": task_id, "SnapshotTaskDetail": detail}]}

    session, rec = recording_session()
    session.events.register("before-call.ec2.ImportSnapshot", import_snapshot)
    session.events.register("before-call.ec2.DescribeImportSnapshotTasks", describe_tasks)
    report = publish_ec2(topdir, config_with(cfg), session=session, out=lambda line: None)

    assert rec.ops("StartSnapshot") == [] and rec.ops("PutSnapshotBlock") == []
    assert len(tasks) == 2 and tasks["import-snap-0"]["polls"] == 2
    by_name = {j.nvra: j for j in ec2_jobs(plan)}
    registered = {q["Name"][0]: q["BlockDeviceMapping.1.Ebs.SnapshotId"][0] for q in rec.sent_query("RegisterImage")}
    sent = {p["DiskContainer"]["UserBucket"]["S3Key"]: p for p in rec.ops("ImportSnapshot")}
    for task in tasks.values():
        nvra = task["key"].rsplit("/", 1)[1].removesuffix(".raw")
        tags = ec2_tags.image_tags(plan.compose_id, nvra, plan.weekly)
        expected = import_params(cfg, s3_key(cfg, plan.compose_id, files[f"{nvra}.raw"]), tags,
                                 f"{by_name[nvra].description} {nvra} from compose {plan.compose_id}",
                                 client_token=sent[task["key"]]["ClientToken"])
        assert sent[task["key"]] == expected
        assert registered[nvra] == task["snapshot"]
        snap = ec2.describe_snapshots(SnapshotIds=[task["snapshot"]])["Snapshots"][0]
        snap_tags = ec2_tags.tag_dict(snap["Tags"])
        assert snap_tags[ec2_tags.IMAGE] == nvra and snap_tags[ec2_tags.UPLOAD] == "complete"
    # the whole file went to S3 (no sparse objects), and the object is gone afterwards
    assert len(report.images) == 2
    for r in report.images:
        assert r.upload.bytes_sent == files[f"{r.job.nvra}.raw"].stat().st_size
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_a_damaged_raw_disk_is_refused_before_anything_is_sent(aws_env, tmp_path):
    from rel_eng.digest import DigestMismatch
    from tests.oracles import block_sha256
    from rel_eng.publish.aws_clients import AwsClients
    from rel_eng.publish.s3_import import upload_s3_import

    topdir, plan = make_compose(tmp_path)
    path = next(topdir.glob("work/build/ec2-x86_64/*.raw"))
    recorded = block_sha256(path)
    with open(path, "r+b") as fh:
        fh.seek(os.lseek(fh.fileno(), 0, os.SEEK_DATA))
        fh.write(b"\x5a")
    boto3.client("s3", region_name=BASE).create_bucket(Bucket=BUCKET)
    cfg = ec2_config(upload_mode="s3-import", s3_bucket=BUCKET, regions=())
    session, rec = recording_session()
    with pytest.raises(DigestMismatch, match=recorded):
        upload_s3_import(AwsClients(cfg, session), cfg, BASE, path, 1,
                         {ec2_tags.COMPOSE: plan.compose_id}, "d", raw_sha256=recorded)
    assert rec.calls == []
    assert boto3.client("s3", region_name=BASE).list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
