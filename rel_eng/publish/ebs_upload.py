"""Write a raw disk straight into an EBS snapshot with the EBS direct APIs, as AWS coldsnap does.

Only blocks holding data are sent: holes of the sparse file are skipped with SEEK_DATA/SEEK_HOLE
without reading them, and data blocks that are all zero (written zeros) are skipped after reading.
Each block carries base64(SHA256(block)); CompleteSnapshot carries the LINEAR aggregate, i.e.
base64(SHA256(raw block digests concatenated in block-index order)). The raw disk's manifest
digest is computed in the same pass over the blocks read (holes as zeros, not read), and the
snapshot is completed only when it matches; otherwise it is deleted and the upload fails.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import hashlib
import logging
import os
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import botocore.exceptions

from rel_eng import retry
from rel_eng.digest import BlockDigest, DigestMismatch, data_extents
from rel_eng.errors import RelEngError
from rel_eng.publish import ec2_tags
from rel_eng.publish.aws_clients import (
    AwsClients, describe_failure, error_code, is_retryable, waiter_config, waiter_failure,
)
from rel_eng.config.ec2 import Ec2Config

log = logging.getLogger(__name__)

GIB = 1024**3
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 8.0


@dataclass(frozen=True)
class UploadResult:
    snapshot_id: str
    volume_size_gib: int
    block_size: int = 0
    blocks_sent: int = 0
    bytes_sent: int = 0
    zero_blocks_skipped: int = 0  # allocated blocks read and found all zero


def volume_size_gib(image_size: int, configured_gib: int) -> int:
    """The configured size, or the image rounded up to whole GiB (EBS sizes are GiB)."""
    return configured_gib or max(1, -(-image_size // GIB))


def candidate_blocks(extents: Iterator[tuple[int, int]], block_size: int) -> Iterator[int]:
    """Block indexes touched by the extents, ascending and without repeats."""
    last = -1
    for start, end in extents:
        first = max(start // block_size, last + 1)
        stop = -(-end // block_size)
        for index in range(first, stop):
            yield index
        last = max(last, stop - 1)


def read_block(fd: int, index: int, block_size: int) -> bytes:
    """One block; the file's last partial block is padded with zeros (EBS wants full blocks)."""
    data = os.pread(fd, block_size, index * block_size)
    return data if len(data) == block_size else data.ljust(block_size, b"\0")


def block_checksum(data: bytes) -> tuple[bytes, str]:
    digest = hashlib.sha256(data).digest()
    return digest, base64.b64encode(digest).decode()


def linear_checksum(digests_in_order: list[bytes]) -> str:
    return base64.b64encode(hashlib.sha256(b"".join(digests_in_order)).digest()).decode()


def _jitter(delay: float) -> float:  # back-off ~0.25, 0.5, 1, ... s capped at 8, times 0.5..1
    return delay * random.uniform(0.5, 1.0)


AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


def with_retries(what: str, call: Callable[[], object], retries: int,
                 sleep: Callable[[float], None] = time.sleep) -> object:
    """Call, retrying transient failures (aws_clients.is_retryable) `retries` more times with
    back-off (rel_eng.retry); every AWS failure that ends it is described in one line."""
    def retrying(exc: BaseException, attempt: int, delay: float) -> None:
        log.info("%s: %s, retrying (%d/%d)", what, error_code(exc) or type(exc).__name__,
                 attempt, retries)

    try:
        return retry.call(call, retry.Policy(retries, BACKOFF_BASE_S, BACKOFF_CAP_S, jitter=_jitter),
                          transient=is_retryable, catch=AWS_ERRORS, sleep=sleep,
                          on_retry=retrying, give_up=lambda exc, _: describe_failure(what, exc))
    except AWS_ERRORS as exc:  # not transient
        raise describe_failure(what, exc) from None


def upload_ebs_direct(
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
    """Upload `path` into a new snapshot in `region`, wait until it is completed, tag it complete.

    `raw_sha256` is the raw disk's manifest digest; the bytes sent must have it."""
    if not raw_sha256:
        raise RelEngError(f"{path}: no digest recorded for this raw disk in the manifest; "
                          "the EC2 upload will not trust it", hint="rebuild the image")
    ebs = clients.client("ebs", region)
    snapshot_id, block_size = _start_snapshot(ebs, cfg, path, volume_gib, tags, description)
    log.info("%s: started snapshot %s (block size %d) in %s", path.name, snapshot_id, block_size, region)
    sent = _send_blocks(ebs, cfg, path, snapshot_id, block_size)
    if sent.raw_digest != raw_sha256:
        discard(clients, region, snapshot_id)
        raise DigestMismatch(path, raw_sha256, sent.raw_digest, what="block sha256",
                             hint=f"snapshot {snapshot_id} was not completed and is deleted; the "
                                  "raw disk changed since its builder handed it over: rebuild it")
    _complete_snapshot(ebs, cfg, snapshot_id, sent.ordered)
    wait_snapshot(clients, cfg, region, snapshot_id)
    mark_complete(clients, region, snapshot_id)
    log.info("%s: snapshot %s completed: %d blocks sent, %d zero blocks skipped",
             path.name, snapshot_id, len(sent.ordered), sent.zero_skipped)
    return UploadResult(snapshot_id, volume_gib, block_size, len(sent.ordered),
                        len(sent.ordered) * block_size, sent.zero_skipped)


def _start_snapshot(ebs, cfg: Ec2Config, path: Path, volume_gib: int, tags: dict[str, str],
                    description: str) -> tuple[str, int]:
    token = str(uuid.uuid4())  # one token across our retries: a lost response never makes two snapshots
    start = with_retries(
        f"StartSnapshot for {path.name}",
        lambda: ebs.start_snapshot(VolumeSize=volume_gib, Tags=ec2_tags.tag_list(tags),
                                   Description=description, ClientToken=token),
        cfg.block_retries,
    )
    return start["SnapshotId"], int(start["BlockSize"])  # 524288 on AWS; never assumed


@dataclass(frozen=True)
class _Sent:
    ordered: list[bytes]  # each sent block's sha256, in block order
    zero_skipped: int
    raw_digest: str  # the raw disk's block digest, over the same reads


def _send_blocks(ebs, cfg: Ec2Config, path: Path, snapshot_id: str, block_size: int) -> _Sent:
    """Every non-zero block of `path`, `cfg.workers` at a time, each with its checksum; the raw
    disk's digest is taken in the same pass."""
    digests: dict[int, bytes] = {}
    zero_skipped = 0
    zero = bytes(block_size)

    def put(index: int, data: bytes) -> bytes:
        digest, checksum = block_checksum(data)
        with_retries(
            f"PutSnapshotBlock {index} of {snapshot_id}",
            lambda: ebs.put_snapshot_block(
                SnapshotId=snapshot_id, BlockIndex=index, BlockData=data, DataLength=block_size,
                Checksum=checksum, ChecksumAlgorithm="SHA256"),
            cfg.block_retries,
        )
        return digest

    fd = os.open(path, os.O_RDONLY)
    raw = BlockDigest()  # the manifest digest, over the same reads
    try:
        size = os.fstat(fd).st_size
        with cf.ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="ebs-put") as pool:
            pending: dict[cf.Future, int] = {}
            window = cfg.workers * 2  # bounds memory: never more blocks in flight than this

            def drain(until: int) -> None:
                while len(pending) > until:
                    done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        index = pending.pop(fut)
                        digests[index] = fut.result()  # re-raises a block that failed for good

            try:
                for index in candidate_blocks(data_extents(fd, size), block_size):
                    start = index * block_size
                    data = read_block(fd, index, block_size)
                    raw.update_zeros(start - raw.size)  # the hole before this block
                    raw.update(memoryview(data)[:min(block_size, size - start)])
                    if data == zero:
                        zero_skipped += 1
                        continue
                    pending[pool.submit(put, index, data)] = index
                    drain(window)
                drain(0)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
        raw.update_zeros(size - raw.size)
    finally:
        os.close(fd)
    return _Sent([digests[i] for i in sorted(digests)], zero_skipped, raw.hexdigest())


def _complete_snapshot(ebs, cfg: Ec2Config, snapshot_id: str, ordered: list[bytes]) -> None:
    complete_args = {"SnapshotId": snapshot_id, "ChangedBlocksCount": len(ordered)}
    if ordered:
        complete_args.update(Checksum=linear_checksum(ordered), ChecksumAlgorithm="SHA256",
                             ChecksumAggregationMethod="LINEAR")
    with_retries(f"CompleteSnapshot {snapshot_id}",
                 lambda: ebs.complete_snapshot(**complete_args), cfg.block_retries)


def discard(clients: AwsClients, region: str, snapshot_id: str) -> None:
    """Delete a snapshot that must never become an AMI; a failure leaves it untagged-complete,
    so the next run deletes it."""
    try:
        clients.ec2(region).delete_snapshot(SnapshotId=snapshot_id)
    except botocore.exceptions.ClientError as exc:
        log.warning("could not delete snapshot %s: %s", snapshot_id, error_code(exc))


def wait_snapshot(clients: AwsClients, cfg: Ec2Config, region: str, snapshot_id: str) -> None:
    try:
        clients.ec2(region).get_waiter("snapshot_completed").wait(
            SnapshotIds=[snapshot_id], WaiterConfig=waiter_config(cfg))
    except botocore.exceptions.WaiterError as exc:
        raise waiter_failure(f"snapshot {snapshot_id} in {region}", cfg, exc) from None


def mark_complete(clients: AwsClients, region: str, snapshot_id: str) -> None:
    """The tag that tells a finished upload from one a crash left behind."""
    clients.ec2(region).create_tags(
        Resources=[snapshot_id], Tags=[{"Key": ec2_tags.UPLOAD, "Value": "complete"}])
