"""A candidate's AMIs stay private at staging and become public when it is released; --replace
makes the replaced candidate's private again, --withdraw the withdrawn one's (moto's server)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import boto3

from ec2_helpers import BASE, aws_env, moto_url  # noqa: F401
from rel_eng import cli
from rel_eng.compose import run_compose
from rel_eng.config.ec2 import Ec2Config
from rel_eng.publish import ami

from conftest import ALPHA_DATE

BETA = "fedora/linux/releases/test/19_Beta/Cloud"


def _public(c) -> dict[str, bool]:
    """image id -> whether group "all" may launch it and copy each of its snapshots."""
    out = {}
    doc = json.loads((c.metadir / "ec2.json").read_text())
    for info in doc["images"].values():  # non-empty: two EC2 images
        for region, image_id in info["regions"].items():
            ec2 = boto3.client("ec2", region_name=region)
            launch = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
            image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
            snaps = [ec2.describe_snapshot_attribute(SnapshotId=s, Attribute="createVolumePermission")
                     ["CreateVolumePermissions"] for s in ami.snapshot_ids(image)]
            out[image_id] = ({"Group": "all"} in launch["LaunchPermissions"]
                             and all({"Group": "all"} in s for s in snaps) and bool(snaps))
    return out


def test_amis_public_at_release_private_again_when_replaced_or_withdrawn(aws_env, tmp_path,
                                                                         config, capsys):
    ec2 = Ec2Config(enabled=True, base_region=BASE, regions=(), poll_interval_s=1,
                    wait_timeout_s=60)
    cfg = dataclasses.replace(config, ec2=ec2, disk_size_gib=1)
    out = tmp_path / "out"
    b1 = run_compose(cfg, out, "19", "Beta", ALPHA_DATE)
    b2 = run_compose(cfg, out, "19", "Beta", ALPHA_DATE)
    assert set(_public(b1).values()) == {False}  # staged: private
    conf = tmp_path / "rel-eng.toml"
    conf.write_text(f'[ec2]\nenabled = true\nbase_region = "{BASE}"\nregions = []\n'
                    'poll_interval_s = 1\nwait_timeout_s = 60\n')
    common = ["--allow-unverified", "--config", str(conf), "--output", str(out)]
    capsys.readouterr()

    assert cli.main(["release", "Beta-1.1", *common]) == 0
    assert set(_public(b1).values()) == {True} and set(_public(b2).values()) == {False}
    assert cli.main(["release", "Beta-1.2", "--replace", *common]) == 0
    assert set(_public(b1).values()) == {False} and set(_public(b2).values()) == {True}

    capsys.readouterr()
    assert cli.main(["release", "Beta-1.2", "--withdraw", "--by", "carol", *common]) == 0
    o = capsys.readouterr().out
    target = out / "mirror" / BETA
    aside = target.with_name(f".Cloud.withdrawn-{b2.plan.compose_id}")
    assert f"Beta-1.2 ({b2.plan.compose_id}) withdrawn: {target} moved to {aside}" in o
    assert not target.exists() and set(_public(b2).values()) == {False}
    assert cli.main(["release", "Beta-1.2", "--withdraw", *common]) == 0  # a rerun: no change
    capsys.readouterr()
    assert cli.main(["messages", "--output", str(out), "--json"]) == 0
    acts = [(r["body"]["action"], r["body"]["label"], r["body"]["released_by"])
            for r in json.loads(capsys.readouterr().out)
            if r["topic"] == "rel_eng.release.published.v1"]
    assert [a[:2] for a in acts] == [("published", "Beta-1.1"), ("replaced", "Beta-1.2"),
                                     ("withdrawn", "Beta-1.2")]
    assert acts[-1][2] == "carol"
    amis = json.loads((b2.metadir / "ec2.json").read_text())["images"]
    assert [i["public"] for i in amis.values()] == [False, False]
    assert Path(aside / "metadata/release.json").is_file()
