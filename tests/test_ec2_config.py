"""The [ec2] config table: parsing, validation with file and key, JSON round trip, registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rel_eng.config import Config, load_config
from rel_eng.errors import ConfigError
from rel_eng.publish import enabled_publishers
from rel_eng.config.ec2 import Ec2Config
from rel_eng.publish.ec2_publish import publish_ec2


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rel-eng.toml"
    path.write_text(text)
    return path


def test_ec2_table_parsed_into_frozen_config(tmp_path):
    path = write(tmp_path, """
[ec2]
enabled = true
base_region = "us-east-1"
regions = ["us-west-2", "eu-west-1", "us-east-1"]
i386 = false
volume_size_gib = 5
upload_mode = "s3-import"
s3_bucket = "fedora-cloud-import"
imds_support = ""
workers = 32
""")
    cfg = load_config(path).ec2
    assert cfg.enabled and not cfg.i386
    assert cfg.regions == ("us-west-2", "eu-west-1", "us-east-1")
    assert cfg.all_regions == ("us-east-1", "us-west-2", "eu-west-1")
    assert (cfg.volume_size_gib, cfg.upload_mode, cfg.s3_bucket, cfg.workers) == (5, "s3-import", "fedora-cloud-import", 32)
    assert cfg.imds_support == ""
    assert cfg.volume_type == "gp3" and cfg.boot_mode == "legacy-bios"
    with pytest.raises(AttributeError):
        cfg.enabled = False  # type: ignore[misc]


def test_defaults_leave_ec2_off():
    cfg = load_config()
    assert cfg.ec2 == Ec2Config() and not cfg.ec2.enabled
    assert cfg.ec2.i386  # once enabled, both arches get AMIs unless i386 = false
    assert enabled_publishers(cfg) == []


def test_unknown_region_named_with_file_and_key(tmp_path):
    path = write(tmp_path, '[ec2]\nenabled = true\nregions = ["us-west-2", "mars-north-1"]\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.problems == [f"{path}: ec2.regions: unknown EC2 region 'mars-north-1' "
                                  "(see `aws ec2 describe-regions`)"]
    assert exc.value.exit_code == 2


def test_every_problem_reported_at_once(tmp_path):
    path = write(tmp_path, """
[ec2]
base_region = "atlantis-1"
upload_mode = "carrier-pigeon"
workers = 0
volume_type = "io9"
regions = "us-west-2"
colour = "blue"
enabled = "yes"
""")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    keys = sorted(p.split(": ")[1] for p in exc.value.problems)
    assert keys == ["ec2.base_region", "ec2.colour", "ec2.enabled", "ec2.regions",
                    "ec2.upload_mode", "ec2.volume_type", "ec2.workers"]
    assert all(p.startswith(f"{path}: ") for p in exc.value.problems)


def test_s3_import_needs_a_bucket(tmp_path):
    path = write(tmp_path, '[ec2]\nupload_mode = "s3-import"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.problems == [f"{path}: ec2.s3_bucket: is required when upload_mode is 's3-import'"]


def test_config_with_ec2_round_trips_through_json(tmp_path):
    path = write(tmp_path, """
[ec2]
enabled = true
regions = ["eu-central-1", "ap-southeast-2"]
weekly_public = true
deprecate_days = 14
i386 = true
""")
    cfg = load_config(path)
    assert cfg.ec2.regions == ("eu-central-1", "ap-southeast-2")
    again = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert isinstance(again.ec2, Ec2Config) and again.ec2.regions == ("eu-central-1", "ap-southeast-2")


def test_enabled_config_registers_the_ec2_publisher(tmp_path):
    cfg = load_config(write(tmp_path, "[ec2]\nenabled = true\n"))
    assert enabled_publishers(cfg) == [("ec2", publish_ec2)]
