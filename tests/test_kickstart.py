import pytest

from rel_eng import paths
from rel_eng.errors import InputError
from rel_eng.kickstart import flatten

from conftest import write


@pytest.mark.parametrize("ks", ["fedora-cloud-base.ks", "fedora-cloud-base-ec2.ks"])
@pytest.mark.parametrize("version", ["F19", "F20", "F40"])
def test_shipped_kickstarts_flatten_for_target_versions(ks, version):
    flat = flatten(paths.KICKSTART_DIR / ks, version)
    assert f"#version={version}" in flat.text
    assert "%include" not in flat.text
    assert "cloud-init" in flat.text and "console=ttyS0" in flat.text


def test_ec2_variant_includes_the_base():
    flat = flatten(paths.KICKSTART_DIR / "fedora-cloud-base-ec2.ks", "F19")
    assert "cloud-utils-growpart" in flat.text  # from the base
    assert "chrony" in flat.text and "Ec2" in flat.text  # from the variant


def test_error_in_included_file_names_that_file_and_line(tmp_path):
    inc = write(tmp_path / "inc.ks", "text\nbogus-command --x\n")
    top = write(tmp_path / "top.ks", f"%include {inc}\n")
    with pytest.raises(InputError) as err:
        flatten(top, "F19")
    assert str(err.value).startswith(f"{inc}:2: invalid kickstart for F19: Unknown command: bogus-command")


def test_option_removed_in_newer_fedora_is_reported(tmp_path):
    ks = write(tmp_path / "old.ks", "auth --useshadow\n")
    with pytest.raises(InputError, match=r"old.ks:1: invalid kickstart for F40: auth has been removed"):
        flatten(ks, "F40")


def test_unknown_ksversion(tmp_path):
    with pytest.raises(InputError, match="kickstart version 'F99' is not known"):
        flatten(paths.KICKSTART_DIR / "fedora-cloud-base.ks", "F99")


def test_missing_cloud_essentials_are_listed(tmp_path):
    ks = write(tmp_path / "bare.ks", "text\nrootpw secret\n%packages\n@core\n%end\n")
    with pytest.raises(InputError) as err:
        flatten(ks, "F19")
    msg = str(err.value)
    for need in ("cloud-init", "cloud-utils-growpart", "console=ttyS0", "rootpw must be --lock"):
        assert need in msg


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.ks: cannot read kickstart"):
        flatten(tmp_path / "nope.ks", "F19")
