"""`rel-eng ec2 publish|prune` as a user runs them: a real process, the moto server, and a search
of everything the run printed, logged and wrote for the secret access key."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3

from ec2_helpers import BASE, REGIONS, aws_env, ec2_jobs, make_compose, moto_gaps, moto_url  # noqa: F401
from rel_eng import runner

REPO = Path(__file__).resolve().parent.parent


def rel_eng(args: list[str], cwd: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return runner.run([sys.executable, "-m", "rel_eng", *args], cwd=cwd, env=env, timeout=120)


def test_publish_and_prune_never_reveal_the_secret_key(aws_env, moto_gaps, tmp_path):
    secret = aws_env
    moto_gaps.image_bpa[REGIONS[1]] = "block-new-sharing"  # that region's AMIs stay private
    # A public weekly (a milestone's AMIs stay private until `rel-eng release`).
    topdir, plan = make_compose(tmp_path / "out", weekly=True)
    conf = tmp_path / "rel-eng.toml"
    conf.write_text(f"""
[ec2]
enabled = true
weekly_public = true
base_region = "{BASE}"
regions = {json.dumps(list(REGIONS))}
workers = 4
poll_interval_s = 1
wait_timeout_s = 60
""")
    # --debug: botocore's DEBUG logging of every request and response is part of the output
    publish = rel_eng(["--debug", "ec2", "publish", str(topdir), "--config", str(conf)], tmp_path)
    prune = rel_eng(["--debug", "ec2", "prune", "--days", "1", "--config", str(conf)], tmp_path)

    messages = [json.loads(line) for line in publish.stdout.decode().splitlines()]
    assert sorted(m["body"]["image_name"] for m in messages) == sorted(j.nvra for j in ec2_jobs(plan))
    assert all(set(m["body"]["regions"]) == {BASE, REGIONS[0]} for m in messages)
    log = publish.stderr.decode()
    assert (f"blocked: {REGIONS[1]}: image block public access is block-new-sharing, the AMIs stay "
            f"private there (lift it with `aws ec2 disable-image-block-public-access --region "
            f"{REGIONS[1]}`; then share again)") in log
    assert "Authorization" in log and "Found credentials in environment variables" in log
    assert f"wrote {topdir / 'compose' / 'metadata' / 'ec2.json'}" in log
    assert prune.stdout.decode().startswith("no weekly AMIs older than 1 days")
    ec2 = boto3.client("ec2", region_name=BASE)
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 2

    outputs = [publish.stdout, publish.stderr, prune.stdout, prune.stderr]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size < 64 * 1024 * 1024]
    assert any(p.name == "ec2.json" for p in files)
    needle = secret.encode()
    assert not any(needle in blob for blob in outputs)
    leaked = [p for p in files if needle in p.read_bytes()]
    assert leaked == []


def test_debug_logs_carry_no_session_token_signature_or_secret(aws_env, tmp_path, monkeypatch):
    """botocore's DEBUG log writes every request's headers (Authorization, X-Amz-Security-Token),
    its canonical request and signature: --debug shows that they were sent, never their values."""
    import re

    token = "FwoGZXIvYXdzEJr" + os.urandom(24).hex() + "/+="
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    conf = tmp_path / "rel-eng.toml"
    conf.write_text(f'[ec2]\nenabled = true\nbase_region = "{BASE}"\n'
                    f"regions = {json.dumps(list(REGIONS))}\n")
    prune = rel_eng(["--debug", "ec2", "prune", "--days", "1", "--config", str(conf)], tmp_path)
    text = (prune.stdout + prune.stderr).decode()
    assert text.count("X-Amz-Security-Token") >= 2 and "Authorization" in text  # logged...
    assert "x-amz-security-token:***" in text  # ... in the canonical request too, masked
    from urllib.parse import quote
    for needle in (token, quote(token, safe=""), token[:32], aws_env):
        assert needle not in text
    assert not re.search(r"Signature=[0-9a-f]{64}", text)
    assert not re.search(r"Signature:\s*[0-9a-f]{64}", text)
