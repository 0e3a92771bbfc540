"""Shared fixtures for the EC2 tests: moto's standalone server on 127.0.0.1 (with the actions it
lacks answered in front of it: tests/moto_gaps.py), an AWS environment pointing at it, a compose
dir with sparse EC2 raw disks, and botocore event-hook recorders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import secrets
import threading
import urllib.parse
import urllib.request
from pathlib import Path

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # before moto loads: no bundled AMIs

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from tests.moto_gaps import GapFillingMotoServer, MotoGaps

from rel_eng.config import Config, load_config
from tests.oracles import block_sha256
from rel_eng.atomic import atomic_write
from rel_eng.manifest import Artifact, Manifest
from rel_eng.plan import DropPlan, plan_drop
from rel_eng.config.ec2 import Ec2Config

MIB = 1024**2
IMAGE_SIZE = 8 * MIB
BASE = "us-east-1"
REGIONS = ("us-west-2", "eu-west-1")
GAPS: dict[str, MotoGaps] = {}  # server URL -> what answers the EC2 actions moto lacks


@pytest.fixture(scope="module")
def moto_url():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request
    server = GapFillingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    GAPS[url] = server.gaps
    try:
        yield url
    finally:
        GAPS.pop(url, None)
        server.stop()


@pytest.fixture
def moto_gaps(aws_env, moto_url) -> MotoGaps:
    """Block Public Access states per region and the requests moto itself cannot answer."""
    return GAPS[moto_url]


@pytest.fixture
def aws_env(moto_url, monkeypatch, tmp_path):
    """Fake credentials from the environment only; all traffic to the local server. Returns the secret."""
    req = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10).close()
    GAPS[moto_url].reset()
    secret = "relengtestsecret" + secrets.token_hex(12)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIARELENGTEST00000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", BASE)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe 169.254.169.254
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return secret


def ec2_config(**overrides) -> Ec2Config:
    base = Ec2Config(enabled=True, base_region=BASE, regions=REGIONS,
                     workers=4, poll_interval_s=1, wait_timeout_s=30, max_attempts=5)
    return dataclasses.replace(base, **overrides)


def config_with(ec2: Ec2Config) -> Config:
    return dataclasses.replace(load_config(), ec2=ec2)


# Data written into each 8 MiB sparse image: (offset, bytes). Chosen to cover a block at the
# start, a run of blocks, written zeros (allocated but all zero), a short write crossing a block
# boundary, zeros inside a data run, and the file's last bytes.
def image_layout(seed: int) -> list[tuple[int, bytes]]:
    rnd = lambda n: bytes((seed * 31 + i * 7 + 1) % 251 + 1 for i in range(n))  # never zero
    return [
        (0, rnd(1536)),
        (1 * MIB, rnd(4096)),
        (2 * MIB, bytes(64 * 1024)),
        (3 * MIB + 450, rnd(100)),
        (5 * MIB, rnd(1024) + bytes(2048) + rnd(1024)),
        (IMAGE_SIZE - 700, rnd(700)),
    ]


def write_sparse(path: Path, size: int, layout: list[tuple[int, bytes]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)
        for offset, data in layout:
            fh.seek(offset)
            fh.write(data)


def nonzero_blocks(path: Path, block_size: int) -> dict[int, bytes]:
    """Every non-zero block of the file, padded, read the slow obvious way."""
    out = {}
    with open(path, "rb") as fh:
        index = 0
        while chunk := fh.read(block_size):
            if chunk.count(0) != len(chunk):
                out[index] = chunk.ljust(block_size, b"\0")
            index += 1
    return out


def make_compose(root: Path, *, weekly: bool = False, release: str = "19",
                 date: dt.date = dt.date(2013, 4, 5), size: int = IMAGE_SIZE) -> tuple[Path, DropPlan]:
    """A compose dir as the core leaves it: work/plan.json, the manifest, sparse raw disks."""
    config = load_config()
    plan = plan_drop(config, release, milestone=None if weekly else "Alpha", date=date)
    topdir = root / plan.compose_id
    (topdir / "compose" / "metadata").mkdir(parents=True)
    atomic_write(topdir / "work" / "plan.json", json.dumps(plan.to_dict(), indent=2))
    atomic_write(topdir / "work" / "config.json", json.dumps(config.to_dict(), indent=2))
    artifacts = []
    for seed, job in enumerate(plan.images):
        rel = Path("work") / "build" / job.key / f"{job.nvra}.raw"
        write_sparse(topdir / rel, size, image_layout(seed))
        artifacts.append(Artifact(job_key=job.key, image_type=job.image_type, arch=job.arch,
                                  kind="raw-disk", intent="build-output", path=str(rel), size=size,
                                  sha256=block_sha256(topdir / rel)))
    Manifest(topdir).add_artifacts(artifacts)
    return topdir, plan


def ec2_jobs(plan: DropPlan):
    return [j for j in plan.images if j.image_type == "ec2"]


class Recorder:
    """Records API calls (operation, region, params) of every client made from a session."""

    def __init__(self, session: boto3.session.Session):
        self.calls: list[tuple[str, str, dict]] = []
        self.sent: list[tuple[str, str, bytes]] = []  # (operation, region, HTTP body) per attempt
        self.responses: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        session.events.register("provide-client-params.*.*", self._params)
        session.events.register("before-send.*.*", self._send)
        session.events.register("after-call.*.*", self._after)

    def _params(self, params, model, context, **kw):
        with self._lock:
            self.calls.append((model.name, context.get("client_region"), dict(params)))

    def _send(self, request, event_name, **kw):
        op = event_name.rsplit(".", 1)[-1]
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):  # a file-like stream (S3 uploads): not kept
            body = b""
        with self._lock:
            self.sent.append((op, signing_region(request), body))

    def _after(self, http_response, parsed, model, **kw):
        with self._lock:
            self.responses.append((model.name, parsed))

    def ops(self, name: str) -> list[dict]:
        return [p for op, _, p in self.calls if op == name]

    def sent_query(self, name: str) -> list[dict[str, list[str]]]:
        """The urlencoded bodies botocore really sent for an EC2 (query protocol) operation."""
        return [urllib.parse.parse_qs(body.decode()) for op, _, body in self.sent if op == name]


def recording_session() -> tuple[boto3.session.Session, Recorder]:
    session = boto3.session.Session()
    return session, Recorder(session)


def signing_region(request) -> str:
    """The region in the SigV4 credential scope: `Credential=AKID/date/<region>/service/...`."""
    auth = request.headers.get("Authorization", b"")
    auth = auth.decode() if isinstance(auth, bytes) else auth
    scope = auth.partition("Credential=")[2].split(",")[0].split("/")
    return scope[2] if len(scope) > 2 else ""


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **kw):
        yield self.body


def fake_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> AWSResponse:
    return AWSResponse("http://127.0.0.1/", status, headers or {}, _Raw(body))


def ec2_error(code: str, status: int = 400) -> AWSResponse:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
            f"<Message>injected {code}</Message></Error></Errors><RequestID>t</RequestID></Response>")
    return fake_response(status, body.encode(), {"Content-Type": "text/xml"})


def json_error(code: str, status: int = 400) -> AWSResponse:
    body = json.dumps({"__type": code, "message": f"injected {code}"}).encode()
    return fake_response(status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": code})
