#!/usr/bin/env python3
"""EBS direct upload benchmark against a local moto server (nothing leaves 127.0.0.1).

Measures, side by side in one run:
  1. bytes sent to EBS (counted at the HTTP layer) against the image's non-zero data, next to
     what a SEEK_DATA-only uploader and a whole-file upload (S3 + ImportSnapshot) would send;
  2. upload wall time with 1 worker against N workers.

The image: a sparse file of --size-gib holding --data-mib of random data in 8 contiguous runs at
1 MiB-aligned offsets (as a filesystem on a 1 MiB-aligned partition lays out large files), four
4 KiB metadata writes scattered over the disk, and 64 MiB of written zeros (allocated, all zero).

moto reports BlockSize 512; AWS reports 524288. The server runs in its own process (so it does
not share the client's GIL) with its block size set to --block-size (default: AWS's), because
half a GiB in 512-byte blocks would be a million requests. The uploader itself reads the block
size from StartSnapshot's response as always.

    python3 bench/ec2_upload.py                 # 4 GiB image, 512 MiB data
    python3 bench/ec2_upload.py --data-mib 64   # quicker
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

MIB = 1024**2
GIB = 1024**3
AWS_BLOCK_SIZE = 524288


def serve(port: int, block_size: int) -> None:
    """Child process: moto's server with EBS snapshots reporting `block_size`."""
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per block
    import moto.ebs.models as ebs_models
    from moto.server import main

    original = ebs_models.EBSSnapshot.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.block_size = block_size

    ebs_models.EBSSnapshot.__init__ = init
    main(["-H", "127.0.0.1", "-p", str(port)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"moto server on port {port} did not start within {timeout}s")


def make_image(path: Path, size: int, data: int) -> int:
    """Write the sparse test image; returns its number of non-zero bytes."""
    runs = 8
    run_len = data // runs
    stride = size // runs
    if 64 * MIB + run_len > stride // 2:
        raise SystemExit(f"--data-mib {data // MIB} does not fit a {size // GIB} GiB image")
    nonzero = 0
    with open(path, "wb") as fh:
        fh.truncate(size)
        for i in range(runs):
            offset = (i * stride + 64 * MIB) // MIB * MIB
            fh.seek(offset)
            left = run_len
            while left:
                chunk = os.urandom(min(8 * MIB, left)).replace(b"\0", b"\1")
                fh.write(chunk)
                left -= len(chunk)
            nonzero += run_len
        for i in range(4):  # scattered metadata, e.g. superblock backups
            fh.seek(size // 4 * i + 32 * MIB + 12 * 1024)
            fh.write(os.urandom(4096).replace(b"\0", b"\1"))
            nonzero += 4096
        fh.seek(4 * stride + stride // 2)  # preallocated, zero-filled space between two runs
        for _ in range(64):
            fh.write(bytes(MIB))
    return nonzero


def upload(path: Path, workers: int, volume_gib: int):
    import boto3

    from rel_eng.digest import raw_digest
    from rel_eng.publish.aws_clients import AwsClients
    from rel_eng.publish.ebs_upload import upload_ebs_direct
    from rel_eng.config.ec2 import Ec2Config

    sent = {"bytes": 0, "requests": 0}

    def count(request, **kw):
        body = request.body
        sent["bytes"] += len(body) if isinstance(body, (bytes, bytearray)) else 0
        sent["requests"] += 1

    session = boto3.session.Session()
    session.events.register("before-send.ebs.PutSnapshotBlock", count)
    cfg = Ec2Config(workers=workers, poll_interval_s=1, wait_timeout_s=300)
    digest = raw_digest(path)  # recorded by the builder in a compose; not part of the timing
    start = time.monotonic()
    result = upload_ebs_direct(AwsClients(cfg, session), cfg, "us-east-1", path, volume_gib,
                               {"bench": "ec2_upload"}, "rel-eng upload benchmark",
                               raw_sha256=digest)
    return time.monotonic() - start, result, sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=int, default=4)
    parser.add_argument("--data-mib", type=int, default=512)
    parser.add_argument("--workers", type=int, default=16, help="N for the parallel run")
    parser.add_argument("--block-size", type=int, default=AWS_BLOCK_SIZE)
    parser.add_argument("--serve", nargs=2, type=int, metavar=("PORT", "BLOCK_SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from rel_eng import runner
    from rel_eng.digest import data_extents
    from rel_eng.publish.ebs_upload import candidate_blocks

    port = free_port()
    server = runner.start([sys.executable, str(Path(__file__).resolve()), "--serve", str(port),
                           str(args.block_size)], stdout=None)
    try:
        wait_listening(port)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_EC2_METADATA_DISABLED="true")
        with tempfile.TemporaryDirectory(prefix="ec2-bench-") as tmp:
            path = Path(tmp) / "bench.raw"
            size = args.size_gib * GIB
            nonzero = make_image(path, size, args.data_mib * MIB)
            fd = os.open(path, os.O_RDONLY)
            try:
                seek_only = sum(1 for _ in candidate_blocks(data_extents(fd, size), args.block_size))
            finally:
                os.close(fd)

            times = {}
            for workers in (1, args.workers):
                reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
                urllib.request.urlopen(reset, timeout=30).close()  # frees the previous run's blocks
                times[workers], result, sent = upload(path, workers, args.size_gib)

        ratio = sent["bytes"] / nonzero
        print(f"image: {size / GIB:.2f} GiB sparse, {nonzero / MIB:.2f} MiB non-zero data "
              f"(+64 MiB written zeros), block size {result.block_size} (from StartSnapshot)")
        print(f"bytes sent, EBS direct:          {sent['bytes'] / MIB:10.2f} MiB  "
              f"{ratio:7.4f}x non-zero data  ({sent['requests']} PutSnapshotBlock, "
              f"{result.zero_blocks_skipped} zero blocks skipped)  goal <= 1.01x: "
              f"{'met' if ratio <= 1.01 else 'NOT met'}")
        print(f"bytes sent, SEEK_DATA only:      {seek_only * args.block_size / MIB:10.2f} MiB  "
              f"{seek_only * args.block_size / nonzero:7.4f}x  (no all-zero check)")
        print(f"bytes sent, whole-file upload:   {size / MIB:10.2f} MiB  {size / nonzero:7.4f}x  "
              f"(S3 PutObject of the raw file, as s3-import does; computed, not sent)")
        t1, tn = times[1], times[args.workers]
        mb = nonzero / MIB
        print(f"upload wall time, 1 worker:      {t1:8.2f} s  ({mb / t1:7.1f} MiB/s)")
        print(f"upload wall time, {args.workers} workers:    {tn:8.2f} s  ({mb / tn:7.1f} MiB/s)  "
              f"speed-up {t1 / tn:.2f}x")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except Exception:
            server.kill()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
