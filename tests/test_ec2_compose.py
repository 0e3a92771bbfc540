"""EC2 publishing as a step of `rel-eng compose`, and a later `rel-eng ec2 publish` of the same
drop: AMI ids reach ec2.json, the README's AMI table, the staged copy in the mirror and the
compose store."""

from __future__ import annotations

import dataclasses
import json

from ec2_helpers import BASE, REGIONS, aws_env, moto_url  # noqa: F401
from rel_eng.cli import main
from rel_eng.compose import run_compose
from rel_eng.config.ec2 import Ec2Config
from rel_eng.store.engine import open_engine
from rel_eng.store.queries import compose_detail
from rel_eng.store.recorder import recorder_for

from conftest import ALPHA_DATE
from web_support import amis_in, check_links, launch_target, links


def test_compose_publishes_then_a_late_publish_updates_the_staged_readme(aws_env, tmp_path, config, capsys):
    cfg = dataclasses.replace(config, ec2=Ec2Config(
        enabled=True, base_region=BASE, regions=(REGIONS[0],), poll_interval_s=1, wait_timeout_s=60))
    recorder = recorder_for(cfg, tmp_path)
    try:
        c = run_compose(cfg, tmp_path, "19", "Alpha", ALPHA_DATE, recorder=recorder)
    finally:
        recorder.close()
    amis = json.loads((c.metadir / "ec2.json").read_text())
    nvra = "Fedora-Cloud-Base-EC2-19_Alpha-1.1.x86_64"
    # The default publishes both EC2 images, i686 as an i386 AMI, in every configured region.
    assert amis["skipped"] == {}
    assert {n: set(i["regions"]) for n, i in amis["images"].items()} == {
        f"Fedora-Cloud-Base-EC2-19_Alpha-1.1.{arch}": {BASE, REGIONS[0]}
        for arch in ("i686", "x86_64")}
    staged = tmp_path / "mirror" / "alt" / "stage" / "19_Alpha-1.1"
    readme = (staged / "Cloud" / "x86_64" / "images" / "README").read_text()
    assert amis["images"][nvra]["regions"][BASE] in readme
    assert "No AMIs have been published" not in readme
    # Fedora 19's attributes; the synthetic disk cannot boot, so no boot verified them
    assert ("attributes: BootMode=legacy-bios ImdsSupport=unset EnaSupport=False "
            "SriovNetSupport=unset TpmSupport=unset (not verified by a boot (skipped: not bootable))"
            ) in readme
    page = (staged / "index.html").read_text()
    assert "AMI attributes: BootMode=legacy-bios ImdsSupport=unset EnaSupport=False" in page
    assert "(not verified by a boot (skipped: not bootable))" in page
    readme32 = (staged / "Cloud" / "i686" / "images" / "README").read_text()
    i686 = "Fedora-Cloud-Base-EC2-19_Alpha-1.1.i686"
    assert amis["images"][i686]["regions"][REGIONS[0]] in readme32
    assert "i386 AMIs" in readme32 and "t1, m1, c1, c3, t2" in readme32
    assert json.loads((staged / "metadata" / "ec2.json").read_text()) == amis

    conf = tmp_path / "rel-eng.toml"
    conf.write_text(f'[ec2]\nbase_region = "{BASE}"\nregions = ["{REGIONS[0]}"]\n'
                    'poll_interval_s = 1\nwait_timeout_s = 60\n')
    assert main(["ec2", "publish", str(c.topdir), "--regions", REGIONS[1], "--config", str(conf)]) == 0
    later = json.loads((staged / "metadata" / "ec2.json").read_text())
    new_ami = later["images"][nvra]["regions"][REGIONS[1]]
    assert new_ami in (staged / "Cloud" / "x86_64" / "images" / "README").read_text()
    assert later["images"][nvra]["regions"][BASE] == amis["images"][nvra]["regions"][BASE]
    # The download page has a launch link for every AMI, the late region's included.
    check_links(staged / "index.html", staged, later)
    page = (staged / "index.html").read_bytes()
    assert {launch_target(h) for h in links(page) if h.startswith("https://")} == amis_in(later)
    assert (REGIONS[1], new_ami) in amis_in(later)

    # The compose store has every AMI, the late region included.
    engine = open_engine(cfg.store.url_for(tmp_path))
    try:
        stored = compose_detail(engine, c.plan.compose_id)["amis"]
    finally:
        engine.dispose()
    assert {(a["nvra"], a["region"], a["ami_id"]) for a in stored} == {
        (n, region, ami) for n, info in later["images"].items()
        for region, ami in info["regions"].items()}
    assert {a["region"] for a in stored if a["nvra"] == nvra} == {BASE, *REGIONS}
    assert {a["nvra"] for a in stored} == {nvra, i686}
