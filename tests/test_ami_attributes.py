"""What each release's AMI declares (releases.toml ec2_*, [ec2] defaults), the combinations AWS
and EC2 refuse, and `rel-eng plan` printing them per image."""

import json

import pytest

from rel_eng import cli
from rel_eng.config import ami_attributes, load_config

from conftest import write

# The releases the shipped streams name, without ec2_* keys, and one more, last, to add keys to.
RELEASE = """
[releases.19]
version = "19"
fedora_version = 19
install_tree = "https://example.org/19/$arch/os/"

[releases.rawhide]
version = "Rawhide"
fedora_version = 41
install_tree = "https://example.org/rawhide/$arch/os/"

[releases.40]
version = "40"
fedora_version = 40
install_tree = "https://example.org/40/$arch/os/"
"""


def test_shipped_releases_declare_what_their_images_can_do():
    """Fedora 19 (kernel 3.9, cloud-init 0.7): legacy BIOS, IMDSv1 allowed, no ENA."""
    config = load_config()
    for key in ("19", "rawhide"):  # non-empty: the shipped releases
        rel = config.release(key)
        for arch in ("x86_64", "i686"):  # non-empty: both AMI arches
            assert ami_attributes.for_image(config.ec2, rel, arch).api() == {
                "BootMode": "legacy-bios", "EnaSupport": False}


def test_a_release_without_ec2_keys_takes_the_ec2_defaults(tmp_path):
    rel = write(tmp_path / "releases.toml", RELEASE)
    cfg = write(tmp_path / "rel-eng.toml", '[ec2]\nboot_mode = "uefi"\ni386 = false\n'
                'sriov_net_support = "simple"\ntpm_support = "v2.0"\n')
    config = load_config(cfg, rel)
    assert ami_attributes.for_image(config.ec2, config.release("40"), "x86_64").api() == {
        "BootMode": "uefi", "EnaSupport": True, "ImdsSupport": "v2.0", "SriovNetSupport": "simple",
        "TpmSupport": "v2.0"}
    assert ami_attributes.for_image(config.ec2, config.release("40"), "i686").ena_support is False
    # The config round-trips through JSON (Celery) with the release's attributes.
    from rel_eng.config import Config
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("body, line", [
    ('ec2_boot_mode = "bios"', "releases.40.ec2_boot_mode: 'bios' is not a value the AMI API accepts "
                               "(use 'legacy-bios' | 'uefi' | 'uefi-preferred')"),
    ('ec2_imds = "v1"', "releases.40.ec2_imds: 'v1' is not a value the AMI API accepts "
                        "(use 'v2.0' | '')"),
    ('ec2_ena = "yes"', "releases.40.ec2_ena: expected bool, got str 'yes'"),
    ('ec2_boot_mode = "uefi"', "releases.40.ec2_boot_mode: 'uefi' for release 40: EC2 boots i386 "
                               "AMIs only in legacy BIOS"),
    ('ec2_boot_mode = "uefi-preferred"', "releases.40.ec2_boot_mode: 'uefi-preferred' for release "
                                         "40: EC2 boots i386 AMIs only in legacy BIOS"),
])
def test_a_value_the_ami_api_or_ec2_refuses_is_one_line_and_exit_2(tmp_path, capsys, body, line):
    rel = write(tmp_path / "releases.toml", RELEASE + body + "\n")
    out = tmp_path / "out"
    assert cli.main(["validate", "--releases", str(rel), "--output", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"rel-eng: error: {rel}: {line}")
    assert cli.main(["compose", "--release", "40", "--weekly", "--releases", str(rel),
                     "--output", str(out)]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert not out.exists()  # nothing written: refused before any upload or build


def test_tpm_support_needs_boot_mode_uefi_not_uefi_preferred(tmp_path, capsys):
    rel = write(tmp_path / "releases.toml", RELEASE + 'ec2_boot_mode = "uefi-preferred"\n')
    cfg = write(tmp_path / "rel-eng.toml", '[ec2]\ni386 = false\ntpm_support = "v2.0"\n'
                'boot_mode = "uefi"\n')
    assert cli.main(["validate", "--config", str(cfg), "--releases", str(rel),
                     "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"rel-eng: error: {rel}: releases.40.ec2_boot_mode: 'uefi-preferred' for release "
                   "40: ec2.tpm_support needs BootMode \"uefi\" (AWS refuses TpmSupport with "
                   "legacy-bios or uefi-preferred)"]
    uefi = write(tmp_path / "uefi.toml", RELEASE + 'ec2_boot_mode = "uefi"\n')
    assert ami_attributes.for_image(load_config(cfg, uefi).ec2, load_config(cfg, uefi).release("40"),
                                    "x86_64").tpm_support == "v2.0"


def test_plan_prints_the_ami_attributes_per_ec2_image(capsys):
    assert cli.main(["plan", "--release", "19", "--milestone", "Alpha", "--date", "2013-04-05"]) == 0
    out = capsys.readouterr().out.splitlines()
    ami_lines = [line.strip() for line in out if line.strip().startswith("ami:")]
    assert ami_lines == ["ami: BootMode=legacy-bios EnaSupport=False"] * 2
    assert cli.main(["plan", "--release", "19", "--milestone", "Alpha", "--date", "2013-04-05",
                     "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ami_attributes"] == {
        "ec2-i686": {"BootMode": "legacy-bios", "EnaSupport": False},
        "ec2-x86_64": {"BootMode": "legacy-bios", "EnaSupport": False}}
