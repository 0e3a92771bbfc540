"""The [oz] table: parsed into OzConfig, every mistake reported with file and key, JSON round trip."""

from __future__ import annotations

import json

import pytest

from rel_eng.config import Config, load_config
from rel_eng.errors import ConfigError
from rel_eng.config.oz import OzConfig


def test_oz_table_parses_and_round_trips(tmp_path):
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text('[oz]\nlibvirt_uri = "qemu+ssh://build01/system"\nmemory_mib = 4096\n'
                   'cpus = 4\ninstall_timeout_s = 5400\nparallel = 2\n'
                   'data_dir = "/srv/oz"\nscreenshot_dir = "/srv/oz/screenshots"\n')
    config = load_config(cfg)
    assert config.oz == OzConfig(libvirt_uri="qemu+ssh://build01/system", memory_mib=4096, cpus=4,
                                 install_timeout_s=5400, parallel=2, data_dir="/srv/oz",
                                 screenshot_dir="/srv/oz/screenshots")
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_defaults_without_a_table():
    assert load_config().oz == OzConfig()


def test_every_oz_mistake_is_reported_with_file_and_key(tmp_path):
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text('[oz]\nmemory_mib = 512\ncpus = "two"\nlibvirt_uri = "system"\n'
                   'data_dir = "relative/oz"\ninstall_timeout_s = 0\nspeed = 3\n')
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    problems = [p for p in err.value.problems if ": oz." in p]
    assert problems == [
        f"{cfg}: oz.speed: unknown key (allowed: boot_timeout_s, bridge_name, cpus, data_dir, inactivity_timeout_s, "
        "install_timeout_s, kill_grace_s, libvirt_type, libvirt_uri, memory_mib, output_dir, "
        "parallel, screenshot_dir, shutdown_timeout_s)",
        f"{cfg}: oz.cpus: expected int, got str 'two'",
        f"{cfg}: oz.memory_mib: must be 2048..1048576, got 512",
        f"{cfg}: oz.install_timeout_s: must be 60..604800, got 0",
        f"{cfg}: oz.libvirt_uri: 'system' is not a libvirt URI (e.g. qemu:///system)",
        f"{cfg}: oz.data_dir: must be an absolute path (Oz requires it), got 'relative/oz'",
    ]
    assert problems == err.value.problems  # nothing else was wrong
