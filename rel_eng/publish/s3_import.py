"""Fallback upload for accounts without EBS direct access: the raw file to S3, then ImportSnapshot.

This sends the whole file, holes included (S3 has no sparse objects), and needs the `vmimport`
service role. The S3 object is deleted once the snapshot exists. The raw disk is checked against
its manifest digest before any byte is sent.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import boto3.exceptions
import boto3.s3.transfer
import botocore.exceptions

from rel_eng.digest import check_raw
from rel_eng.publish import ec2_tags
from rel_eng.publish.aws_clients import AwsClients, Ec2Error, describe_failure, error_code
from rel_eng.publish.ebs_upload import UploadResult, mark_complete, wait_snapshot, with_retries
from rel_eng.config.ec2 import Ec2Config

log = logging.getLogger(__name__)

MIB = 1024**2
FAILED_STATES = ("deleting", "deleted")


def s3_key(cfg: Ec2Config, compose_id: str, path: Path) -> str:
    return f"{cfg.s3_prefix}{compose_id}/{path.name}"


def import_params(cfg: Ec2Config, key: str, tags: dict[str, str], description: str,
                  client_token: str) -> dict:
    """The ImportSnapshot request (pure, tested directly)."""
    return {
        "ClientToken": client_token,
        "Description": description,
        "DiskContainer": {
            "Description": description,
            "Format": "RAW",
            "UserBucket": {"S3Bucket": cfg.s3_bucket, "S3Key": key},
        },
        "RoleName": cfg.import_role,
        "TagSpecifications": [
            {"ResourceType": "import-snapshot-task", "Tags": ec2_tags.tag_list(tags)},
        ],
    }


def upload_s3_import(
    clients: AwsClients,
    cfg: Ec2Config,
    region: str,
    path: Path,
    volume_gib: int,
    tags: dict[str, str],
    description: str,
    *,
    raw_sha256: str,
) -> UploadResult:
    check_raw(path, raw_sha256, "the EC2 upload (S3 import)")
    s3 = clients.client("s3", region)
    ec2 = clients.ec2(region)
    key = s3_key(cfg, tags[ec2_tags.COMPOSE], path)
    size = path.stat().st_size
    transfer = boto3.s3.transfer.TransferConfig(
        multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB, max_concurrency=cfg.workers)
    log.info("%s: uploading %d bytes to s3://%s/%s", path.name, size, cfg.s3_bucket, key)
    try:
        s3.upload_file(str(path), cfg.s3_bucket, key, Config=transfer)
    except (boto3.exceptions.S3UploadFailedError, botocore.exceptions.ClientError) as exc:
        cause = exc.__context__ if isinstance(exc, boto3.exceptions.S3UploadFailedError) else exc
        raise describe_failure(f"upload of {path.name} to s3://{cfg.s3_bucket}", cause or exc) from None

    # one token across our retries: a lost response never starts a second import
    params = import_params(cfg, key, tags, description, client_token=str(uuid.uuid4()))
    task = with_retries(f"ImportSnapshot of {path.name}", lambda: ec2.import_snapshot(**params),
                        cfg.block_retries)
    task_id = task["ImportTaskId"]
    log.info("%s: import task %s started in %s", path.name, task_id, region)
    snapshot_id = wait_import(ec2, cfg, task_id)
    ec2.create_tags(Resources=[snapshot_id], Tags=ec2_tags.tag_list(tags))
    wait_snapshot(clients, cfg, region, snapshot_id)
    mark_complete(clients, region, snapshot_id)
    try:
        s3.delete_object(Bucket=cfg.s3_bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        log.warning("could not delete s3://%s/%s: %s", cfg.s3_bucket, key, error_code(exc))
    return UploadResult(snapshot_id, volume_gib, bytes_sent=size)


def wait_import(ec2, cfg: Ec2Config, task_id: str) -> str:
    """Poll the import task until it yields a snapshot, within wait_timeout_s."""
    polls = 1 + -(-cfg.wait_timeout_s // cfg.poll_interval_s)
    status = "unknown"
    for poll in range(polls):
        resp = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])
        detail = resp["ImportSnapshotTasks"][0]["SnapshotTaskDetail"]
        status = detail.get("Status", "unknown")
        if status == "completed":
            return detail["SnapshotId"]
        if status in FAILED_STATES:
            raise Ec2Error(f"import task {task_id} failed: {detail.get('StatusMessage', status)}",
                           hint="check the vmimport role and the S3 bucket's region")
        if poll + 1 < polls:
            time.sleep(cfg.poll_interval_s)
    raise Ec2Error(f"import task {task_id} still '{status}' after {cfg.wait_timeout_s}s",
                   hint="rerun the publish later")
