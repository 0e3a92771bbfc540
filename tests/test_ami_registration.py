"""Registration takes the AMI attributes the boot gate verified for that very disk, nothing else
(moto's server, real boto3 calls; the RegisterImage request as sent, since moto keeps only its
name and description). The verdicts here are what the gate records in work/boottest/<key>.json
(tests/test_boot_test_vm.py boots the appliance for the checks behind them)."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest

from ec2_helpers import (BASE, aws_env, config_with, ec2_config, make_compose, moto_url,  # noqa: F401
                         recording_session)
from rel_eng.compose.boot_gate import verified_attributes
from rel_eng.config import ami_attributes
from rel_eng.config.boot_test import BootTestConfig
from rel_eng.manifest import Manifest
from rel_eng.publish import ec2_tags
from rel_eng.publish.aws_clients import Ec2Error
from rel_eng.publish.ec2_publish import publish_ec2

PASSED = ("console", "ssh", "boot-mode:legacy-bios", "boot-mode:uefi", "imds-tokens", "ena-driver")


def _config(release_changes: dict, **boot_test):
    config = config_with(ec2_config(regions=()))
    rel = dataclasses.replace(config.release("19"), **release_changes)
    return dataclasses.replace(config, releases=(rel, *[r for r in config.releases if r.key != "19"]),
                               boot_test=dataclasses.replace(BootTestConfig(), **boot_test))


def _record_verdicts(topdir, plan, config, failing=()):
    """What the gate writes for each EC2 image: the checks, the attributes they verified, the
    raw disk's digest, and the manifest's boottest step."""
    manifest = Manifest(topdir)
    for job in plan.images:
        if job.image_type != "ec2":
            continue
        attrs = ami_attributes.for_image(config.ec2, config.release("19"), job.arch)
        checks = [{"name": n, "status": "fail" if n in failing else "pass"} for n in PASSED]
        raw = manifest.artifacts(job_key=job.key, kind="raw-disk")[0]
        verdict = {"nvra": job.nvra, "status": "fail" if failing else "pass", "checks": checks,
                   "ami_attributes": verified_attributes(checks, attrs), "raw_sha256": raw.sha256}
        path = topdir / "work" / "boottest" / f"{job.key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(verdict))
        manifest.set_step(f"boottest:{job.key}", "k", "done" if not failing else "failed", "")


def _snapshots():
    return boto3.client("ec2", region_name=BASE).describe_snapshots(OwnerIds=["self"])["Snapshots"]


def test_an_attribute_the_boot_did_not_verify_is_refused_before_any_upload(aws_env, tmp_path):
    """A config edit after the gate (ENA declared, the ena-driver check failed): one line naming
    the attribute, and no snapshot or AMI left behind."""
    topdir, plan = make_compose(tmp_path)
    booted = _config({"ec2_ena": True})
    _record_verdicts(topdir, plan, booted, failing=("ena-driver",))
    with pytest.raises(Ec2Error) as err:
        publish_ec2(topdir, booted)
    assert str(err.value).startswith("Fedora-Cloud-Base-EC2-19_Alpha-1.1.x86_64: refusing to register "
                                     "with EnaSupport=True: its boot test did not verify EnaSupport")
    assert "\n" not in str(err.value)
    assert _snapshots() == []
    # edited after the boot: IMDSv2-only was never booted
    _record_verdicts(topdir, plan, _config({}))
    with pytest.raises(Ec2Error, match="refusing to register with ImdsSupport='v2.0': its boot test "
                                       "verified ImdsSupport=''"):
        publish_ec2(topdir, _config({"ec2_imds": "v2.0"}))
    assert _snapshots() == []


def test_a_verdict_for_another_disk_is_refused(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    config = _config({})
    _record_verdicts(topdir, plan, config)
    path = topdir / "work" / "boottest" / "ec2-i686.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "raw_sha256": "0" * 64}))
    with pytest.raises(Ec2Error, match="i686: the boot verdict is for another disk"):
        publish_ec2(topdir, config)
    assert _snapshots() == []


def test_verified_attributes_are_registered_and_recorded(aws_env, tmp_path):
    """Fedora 19 as shipped: legacy BIOS, IMDSv1 allowed, no ENA, verified by its boot."""
    topdir, plan = make_compose(tmp_path)
    config = _config({})
    _record_verdicts(topdir, plan, config)
    session, rec = recording_session()
    publish_ec2(topdir, config, session=session, share=False)
    sent = rec.sent_query("RegisterImage")
    assert len(sent) == 2
    for q in sent:  # non-empty: two AMIs
        assert (q["BootMode"], q["EnaSupport"]) == (["legacy-bios"], ["false"])
        assert "ImdsSupport" not in q
    images = json.loads((topdir / "compose" / "metadata" / "ec2.json").read_text())["images"]
    x86 = images["Fedora-Cloud-Base-EC2-19_Alpha-1.1.x86_64"]
    assert x86["ami_attributes"] == {"BootMode": "legacy-bios", "ImdsSupport": "", "EnaSupport": False,
                                     "SriovNetSupport": "", "TpmSupport": ""}
    assert x86["ami_attributes_verified"] == "verified by a boot (boot-mode:legacy-bios)"


@pytest.mark.parametrize("boot_test", [{"enabled": False}, {"gate": "none"}])
def test_with_the_gate_off_the_config_is_registered_not_verified_by_a_boot(aws_env, tmp_path, boot_test):
    topdir, plan = make_compose(tmp_path)
    config = _config({"ec2_ena": True, "ec2_imds": "v2.0"}, **boot_test)
    session, rec = recording_session()
    publish_ec2(topdir, config, session=session, share=False)
    q = [q for q in rec.sent_query("RegisterImage") if q["Architecture"] == ["x86_64"]][0]
    assert (q["EnaSupport"], q["ImdsSupport"]) == (["true"], ["v2.0"])
    images = json.loads((topdir / "compose" / "metadata" / "ec2.json").read_text())["images"]
    for entry in images.values():  # non-empty: two AMIs
        assert entry["ami_attributes_verified"] == "not verified by a boot (the boot gate is off)"
    found = boto3.client("ec2", region_name=BASE).describe_images(
        Owners=["self"], Filters=ec2_tags.tag_filters({ec2_tags.COMPOSE: plan.compose_id}))["Images"]
    assert len(found) == 2
