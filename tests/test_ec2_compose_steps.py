"""The finalize steps of a compose with EC2 publishing, against moto's server: every step is keyed
in the manifest, so a rerun and a --resume write no file and call no publisher again; and the
order of effects keeps everything private until the drop is staged."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import boto3
import pytest

from ec2_helpers import BASE, REGIONS, aws_env, moto_url  # noqa: F401
from rel_eng import stage
from rel_eng.cli import main
from rel_eng.compose import Compose, resume, run_compose
from rel_eng.publish import ec2_publish
from rel_eng.config.ec2 import Ec2Config

from conftest import ALPHA_DATE

TOPIC = "fedora_image_uploader.published"


def ec2_compose_config(config):
    return dataclasses.replace(config, ec2=Ec2Config(
        enabled=True, base_region=BASE, regions=(REGIONS[0],), poll_interval_s=1,
        wait_timeout_s=60, public_milestones=True))


def spy(monkeypatch, module, name: str) -> list:
    """Count the calls of module.name, which still runs."""
    calls = []
    real = getattr(module, name, None)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted, raising=False)
    return calls


def files_state(*roots: Path) -> dict[Path, tuple[int, int]]:
    """(inode, mtime) of every file and link: a rewrite, even of the same bytes, changes it."""
    state = {}
    for root in roots:
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                state[p] = (st.st_ino, st.st_mtime_ns)
    return state


def launch_permissions() -> dict[str, list]:
    """Every AMI and snapshot in the regions in play -> who may launch or copy it."""
    perms = {}
    for region in (BASE, REGIONS[0]):
        ec2 = boto3.client("ec2", region_name=region)
        for image in ec2.describe_images(Owners=["self"])["Images"]:
            perms[image["ImageId"]] = ec2.describe_image_attribute(
                ImageId=image["ImageId"], Attribute="launchPermission")["LaunchPermissions"]
            for bdm in image.get("BlockDeviceMappings", []):
                snap = bdm.get("Ebs", {}).get("SnapshotId")
                if snap:
                    perms[snap] = ec2.describe_snapshot_attribute(
                        SnapshotId=snap, Attribute="createVolumePermission")["CreateVolumePermissions"]
    return perms


def test_a_rerun_and_a_resume_redo_no_finalize_step(aws_env, tmp_path, config, monkeypatch, capsys):
    cfg = ec2_compose_config(config)
    published = spy(monkeypatch, ec2_publish, "publish_ec2")
    shared = spy(monkeypatch, ec2_publish, "share_ec2")
    c = run_compose(cfg, tmp_path, "19", "Alpha", ALPHA_DATE)
    assert c.read_status() == "FINISHED"
    assert capsys.readouterr().out.count(TOPIC) == 2  # two EC2 images (i686 and x86_64): two messages
    calls = (len(published), len(shared))
    mirror = tmp_path / "mirror"
    before = files_state(c.topdir / "compose", mirror)
    assert len(before) > 10

    resume(Compose.load(c.topdir), mirror)  # a rerun in-process
    assert files_state(c.topdir / "compose", mirror) == before
    (c.topdir / "STATUS").write_text("STARTED\n")  # as a crash after the last step leaves it
    assert main(["compose", "--resume", str(c.topdir)]) == 0
    assert files_state(c.topdir / "compose", mirror) == before
    assert (len(published), len(shared)) == calls
    assert TOPIC not in capsys.readouterr().out  # nothing announced twice
    assert c.read_status() == "FINISHED"


def test_a_failure_at_staging_leaves_nothing_public(aws_env, tmp_path, config, monkeypatch, capsys):
    cfg = ec2_compose_config(config)

    real_stage, disk = stage.stage, {"full": True}

    def full_disk(*args, **kwargs):
        if disk["full"]:
            raise stage.StagingError("mirror: No space left on device")
        return real_stage(*args, **kwargs)

    monkeypatch.setattr(stage, "stage", full_disk)
    with pytest.raises(stage.StagingError):
        run_compose(cfg, tmp_path, "19", "Alpha", ALPHA_DATE)
    perms = launch_permissions()
    assert len(perms) >= 4  # an AMI and its snapshot in two regions
    assert all(p == [] for p in perms.values()), perms  # registered and copied, all private
    assert TOPIC not in capsys.readouterr().out
    topdir = tmp_path / "Fedora-Cloud-19-20130405.0"
    recorded = json.loads((topdir / "compose" / "metadata" / "ec2.json").read_text())
    assert not any(i["public"] for i in recorded["images"].values())

    disk["full"] = False  # space freed: the resume stages, then announces
    assert main(["compose", "--resume", str(topdir)]) == 0
    assert (topdir / "STATUS").read_text().strip() == "FINISHED"
    perms = launch_permissions()
    images = [k for k in perms if k.startswith("ami-")]
    # a milestone candidate's AMIs stay private once staged too: `rel-eng release` shares them
    assert images and all(perms[k] == [] for k in images)
    assert capsys.readouterr().out.count(TOPIC) == 2  # i686 and x86_64
    staged = tmp_path / "mirror" / "alt" / "stage" / "19_Alpha-1.1" / "metadata" / "ec2.json"
    assert [i["public"] for i in json.loads(staged.read_text())["images"].values()] == [False] * 2
