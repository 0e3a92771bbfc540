"""Pure parts of the EC2 publisher: block selection, checksums, request builders, results, messages."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os

import pytest

from ec2_helpers import IMAGE_SIZE, MIB, image_layout, nonzero_blocks, write_sparse
from rel_eng.publish import ami, ec2_tags, messages
from rel_eng.publish.ebs_upload import (
    block_checksum, candidate_blocks, linear_checksum, read_block, volume_size_gib,
)
from rel_eng.config.ec2 import Ec2Config
from rel_eng.digest import data_extents

from conftest import data_extents as own_extents
from rel_eng.publish.ec2_results import merge_results
from rel_eng.publish.s3_import import import_params


@pytest.fixture
def sparse(tmp_path):
    path = tmp_path / "disk.raw"
    write_sparse(path, IMAGE_SIZE, image_layout(3))
    return path


def test_holes_are_never_candidates(sparse):
    fd = os.open(sparse, os.O_RDONLY)
    try:
        extents = list(data_extents(fd, IMAGE_SIZE))
        candidates = list(candidate_blocks(iter(extents), 512))
    finally:
        os.close(fd)
    # ext4 allocates in 4 KiB pages: six small writes, the 64 KiB of zeros, nothing else;
    # counted by the test's own SEEK_DATA walk (conftest), not by the code under test
    allocated = sum(end - start for start, end in own_extents(sparse))
    assert allocated < 128 * 1024
    assert len(candidates) == len(set(candidates)) == allocated // 512
    assert candidates == sorted(candidates)
    # every non-zero block is among the candidates, and the zero-filled extent is too
    assert set(nonzero_blocks(sparse, 512)) <= set(candidates)
    assert 2 * MIB // 512 in candidates


def test_candidate_blocks_merge_extents_sharing_a_block():
    # two extents inside one 4096-byte block give that block once
    assert list(candidate_blocks(iter([(0, 100), (200, 300), (5000, 9000)]), 4096)) == [0, 1, 2]


def test_last_partial_block_is_padded(tmp_path):
    path = tmp_path / "odd.raw"
    path.write_bytes(b"\x01" * 1000)
    fd = os.open(path, os.O_RDONLY)
    try:
        block = read_block(fd, 1, 512)
    finally:
        os.close(fd)
    assert block == b"\x01" * 488 + bytes(24)


def test_checksums_follow_the_ebs_direct_rules():
    blocks = [b"a" * 512, b"b" * 512]
    digests = [hashlib.sha256(b).digest() for b in blocks]
    assert block_checksum(blocks[0]) == (digests[0], base64.b64encode(digests[0]).decode())
    # LINEAR: sha256 over the raw per-block digests in index order, base64
    expected = base64.b64encode(hashlib.sha256(digests[0] + digests[1]).digest()).decode()
    assert linear_checksum(digests) == expected
    assert linear_checksum(digests[::-1]) != expected


def test_volume_size_rounds_up_to_whole_gib():
    gib = 1024**3
    assert volume_size_gib(8 * MIB, 0) == 1
    assert volume_size_gib(gib, 0) == 1
    assert volume_size_gib(gib + 1, 0) == 2
    assert volume_size_gib(gib + 1, 10) == 10


def test_register_params_x86_64():
    cfg = Ec2Config(sriov_net_support="simple")
    tags = {"Name": "n", ec2_tags.COMPOSE: "c"}
    params = ami.register_params(cfg, name="Fedora-Cloud-Base-EC2-19_Alpha-1.1.x86_64", description="d",
                                 arch="x86_64", snapshot_id="snap-1", volume_gib=3, tags=tags)
    assert params == {
        "Name": "Fedora-Cloud-Base-EC2-19_Alpha-1.1.x86_64",
        "Description": "d",
        "Architecture": "x86_64",
        "VirtualizationType": "hvm",
        "RootDeviceName": "/dev/sda1",
        "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {
            "SnapshotId": "snap-1", "VolumeSize": 3, "VolumeType": "gp3", "DeleteOnTermination": True}}],
        "EnaSupport": True,
        "SriovNetSupport": "simple",
        "BootMode": "legacy-bios",
        "ImdsSupport": "v2.0",
        "TagSpecifications": [{"ResourceType": "image", "Tags": [
            {"Key": "Name", "Value": "n"}, {"Key": ec2_tags.COMPOSE, "Value": "c"}]}],
    }


def test_register_params_i686_is_i386_and_optional_fields_drop():
    cfg = Ec2Config(i386=True, imds_support="", sriov_net_support="", volume_type="gp2")
    params = ami.register_params(cfg, name="x.i686", description="d", arch="i686",
                                 snapshot_id="snap-2", volume_gib=1, tags={})
    assert params["Architecture"] == "i386"
    assert params["EnaSupport"] is False  # no i386 instance type has ENA
    assert "ImdsSupport" not in params and "SriovNetSupport" not in params
    assert params["BlockDeviceMappings"][0]["Ebs"]["VolumeType"] == "gp2"


def test_register_params_take_the_release_attributes_over_the_defaults():
    """Fedora 19's AMI: legacy BIOS, IMDSv1 allowed, no ENA, whatever [ec2] says."""
    from rel_eng.config import ami_attributes, load_config

    config = load_config()
    attrs = ami_attributes.for_image(config.ec2, config.release("19"), "x86_64")
    params = ami.register_params(config.ec2, name="n", description="d", arch="x86_64",
                                 snapshot_id="snap-3", volume_gib=2, tags={}, attributes=attrs)
    assert {k: params.get(k) for k in ("BootMode", "EnaSupport", "ImdsSupport", "SriovNetSupport",
                                       "TpmSupport")} == {
        "BootMode": "legacy-bios", "EnaSupport": False, "ImdsSupport": None,
        "SriovNetSupport": None, "TpmSupport": None}
    uefi = ami_attributes.AmiAttributes("uefi", "v2.0", True, "", "v2.0")
    params = ami.register_params(config.ec2, name="n", description="d", arch="x86_64",
                                 snapshot_id="snap-3", volume_gib=2, tags={}, attributes=uefi)
    assert (params["BootMode"], params["ImdsSupport"], params["EnaSupport"], params["TpmSupport"]) == \
        ("uefi", "v2.0", True, "v2.0")


def test_names_and_descriptions():
    assert ami.ami_name("Fedora-Cloud-Base-EC2-19_Alpha-1.1.x86_64") == "Fedora-Cloud-Base-EC2-19_Alpha-1.1.x86_64"
    assert ami.ami_name("a+b~c" + "x" * 200) == "a-b-c" + "x" * 123
    desc = ami.ami_description("Amazon EC2 image", "N-1-1.x86_64", "Fedora-Cloud-19-20130405.0")
    assert desc == "Amazon EC2 image N-1-1.x86_64 from compose Fedora-Cloud-19-20130405.0"


def test_copy_params_carry_an_idempotency_token():
    params = ami.copy_params(source_region="us-east-1", source_ami="ami-1", name="n", description="d",
                             tags={"k": "v"}, client_token="t" * 80)
    assert params["ClientToken"] == "t" * 64
    assert params["SourceRegion"] == "us-east-1" and params["SourceImageId"] == "ami-1"
    assert params["TagSpecifications"] == [{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]}]


def test_deprecation_time_comes_from_the_base_ami():
    when = ami.deprecate_at({"CreationDate": "2013-04-05T10:11:12.000Z"}, 28)
    assert when == dt.datetime(2013, 5, 3, 10, 11, tzinfo=dt.timezone.utc)


def test_import_params():
    cfg = Ec2Config(upload_mode="s3-import", s3_bucket="bkt")
    params = import_params(cfg, "rel-eng/c/x.raw", {"a": "b"}, "desc", client_token="tok")
    assert params["ClientToken"] == "tok"
    assert params["DiskContainer"] == {"Description": "desc", "Format": "RAW",
                                       "UserBucket": {"S3Bucket": "bkt", "S3Key": "rel-eng/c/x.raw"}}
    assert params["RoleName"] == "vmimport"
    assert params["TagSpecifications"][0]["ResourceType"] == "import-snapshot-task"


def test_results_merge_keeps_regions_of_earlier_runs():
    old = {"compose_id": "C", "base_region": "us-east-1", "skipped": {"i": "off"},
           "images": {"N": {"regions": {"us-east-1": "ami-1", "eu-west-1": "ami-2"},
                            "snapshots": {"us-east-1": ["snap-1"]}, "public": False}}}
    new = {"compose_id": "C", "base_region": "us-east-1", "skipped": {},
           "images": {"N": {"regions": {"us-east-1": "ami-1", "ap-south-1": "ami-3"},
                            "snapshots": {"ap-south-1": ["snap-3"]}, "public": True}}}
    merged = merge_results(old, new)
    assert merged["images"]["N"]["regions"] == {"us-east-1": "ami-1", "eu-west-1": "ami-2", "ap-south-1": "ami-3"}
    assert merged["images"]["N"]["snapshots"] == {"us-east-1": ["snap-1"], "ap-south-1": ["snap-3"]}
    assert merged["images"]["N"]["public"] is True
    assert merged["skipped"] == {"i": "off"}
    assert merge_results(old, {**new, "compose_id": "D"})["images"]["N"]["regions"] == new["images"]["N"]["regions"]


def test_published_message_printed_in_fedoras_shape(monkeypatch, tmp_path):
    monkeypatch.setenv("FEDORA_MESSAGING_CONF", str(tmp_path / "absent.toml"))
    body = messages.published_body(arch="x86_64", compose_id="C", image_name="N",
                                   regions={"us-west-2": "ami-2", "us-east-1": "ami-1"},
                                   release="19", subvariant="Cloud_Base_EC2")
    printed: list[str] = []
    # asked to send, but fedora-messaging is not configured here: printed instead
    messages.emit([body], True, printed.append)
    assert json.loads(printed[0]) == {
        "topic": "fedora_image_uploader.published.v1.aws.Cloud_Base_EC2.19.x86_64",
        "body": {"architecture": "x86_64", "compose_id": "C", "image_name": "N",
                 "regions": {"us-east-1": "ami-1", "us-west-2": "ami-2"}, "release": 19,
                 "subvariant": "Cloud_Base_EC2"},
    }
