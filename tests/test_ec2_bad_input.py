"""Bad input stops the publish with one clear line before anything is uploaded (moto server)."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest

from ec2_helpers import (
    BASE, REGIONS, aws_env, config_with, ec2_config, ec2_jobs, make_compose, moto_url,  # noqa: F401
    recording_session,
)
from rel_eng import cli
from rel_eng.errors import InputError
from rel_eng.publish.ec2_publish import publish_ec2

ALL = (BASE, *REGIONS)
GIB = 1024**3


def test_unknown_region_in_config_file_is_one_line_exit_2(aws_env, tmp_path, capsys):
    topdir, _ = make_compose(tmp_path)
    conf = tmp_path / "rel-eng.toml"
    conf.write_text('[ec2]\nenabled = true\nregions = ["us-west-2", "mars-north-1"]\n')
    assert cli.main(["ec2", "publish", str(topdir), "--config", str(conf)]) == 2
    err = capsys.readouterr().err
    assert err == (f"rel-eng: error: {conf}: ec2.regions: unknown EC2 region 'mars-north-1' "
                   "(see `aws ec2 describe-regions`)\n")


def test_unknown_region_given_on_the_command_line(aws_env, tmp_path, capsys):
    topdir, _ = make_compose(tmp_path)
    assert cli.main(["ec2", "publish", str(topdir), "--regions", "us-west-2,moon-1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["rel-eng: error: --regions: unknown EC2 region moon-1 "
                   "(see `aws ec2 describe-regions` for valid names)"]


def test_unknown_region_in_a_config_built_in_code(aws_env, tmp_path):
    topdir, _ = make_compose(tmp_path)
    session, rec = recording_session()
    with pytest.raises(InputError) as exc:
        publish_ec2(topdir, config_with(ec2_config(regions=("eu-west-1", "xx-nowhere-9"))), session=session)
    assert "ec2.regions: unknown EC2 region 'xx-nowhere-9'" in str(exc.value)
    assert rec.sent == []


def test_missing_credentials(aws_env, tmp_path, monkeypatch, capsys):
    topdir, _ = make_compose(tmp_path)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    session, rec = recording_session()
    with pytest.raises(InputError) as exc:
        publish_ec2(topdir, config_with(ec2_config()), session=session)
    assert str(exc.value).startswith("no AWS credentials found")
    assert rec.sent == []
    assert cli.main(["ec2", "publish", str(topdir)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("rel-eng: error: no AWS credentials found") and "AWS_PROFILE" in line


def test_image_larger_than_the_volume(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path, size=GIB + 4096)  # sparse: costs nothing
    session, rec = recording_session()
    with pytest.raises(InputError) as exc:
        publish_ec2(topdir, config_with(ec2_config(volume_size_gib=1)), session=session)
    message = str(exc.value)
    jobs = ec2_jobs(plan)
    assert len(jobs) == 2  # i686 and x86_64
    for job in jobs:
        assert f"{job.nvra} is {GIB + 4096} bytes, larger than ec2.volume_size_gib = 1 GiB (set it to at least 2)" in message
        assert str(topdir / "work" / "build" / job.key) in message
    assert rec.sent == []  # not even a credentials or lookup call


def test_i686_with_i386_off_is_skipped_not_failed(aws_env, tmp_path, capsys, caplog):
    topdir, plan = make_compose(tmp_path)
    i686 = next(j for j in ec2_jobs(plan) if j.arch == "i686")
    x86 = next(j for j in ec2_jobs(plan) if j.arch == "x86_64")
    session, rec = recording_session()
    report = publish_ec2(topdir, config_with(ec2_config(i386=False)), session=session)
    reason = "i386 publishing is off (set ec2.i386 = true to publish i686 images)"
    assert report.skipped == {i686.nvra: reason}
    assert [r.job.nvra for r in report.images] == [x86.nvra]
    # reported once, before the first upload
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [f"ec2: skipped {i686.nvra}: {reason}"]
    assert len(rec.ops("StartSnapshot")) == 1 and len(rec.ops("RegisterImage")) == 1
    for region in ALL:
        ec2 = boto3.client("ec2", region_name=region)
        assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [i686.nvra]}])["Images"] == []
    data = json.loads((topdir / "compose" / "metadata" / "ec2.json").read_text())
    assert data["skipped"] == {i686.nvra: reason} and list(data["images"]) == [x86.nvra]
    assert len(capsys.readouterr().out.splitlines()) == 1  # one published message


def test_not_a_compose_dir(aws_env, tmp_path):
    with pytest.raises(InputError) as exc:
        publish_ec2(tmp_path / "nope", config_with(ec2_config()))
    # The one plan.json reader (rel_eng.plan.load_plan) says it as `compose --resume` does.
    assert f"{tmp_path / 'nope'} is not a compose directory (no work/plan.json)" in str(exc.value)


def test_missing_raw_disk(aws_env, tmp_path):
    topdir, plan = make_compose(tmp_path)
    job = next(j for j in ec2_jobs(plan) if j.arch == "x86_64")
    raw = next((topdir / "work" / "build" / job.key).glob("*.raw"))
    raw.unlink()
    session, rec = recording_session()
    with pytest.raises(InputError) as exc:
        publish_ec2(topdir, config_with(dataclasses.replace(ec2_config())), session=session)
    assert str(exc.value) == f"{raw}: raw disk of {job.nvra} is missing (rebuild the image)"
    assert rec.sent == []
