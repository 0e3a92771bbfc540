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


SECRET = "root:$6$do-not-echo-this-line:19000:0:99999:7:::"


@pytest.mark.parametrize("include", [
    "{outside}",  # absolute path outside the kickstart dir
    "../outside/secret.ks",  # relative climb
    "sub/../../outside/secret.ks",
    "link.ks",  # a symlink inside that points outside
    "/etc/shadow",
    "http://127.0.0.1:9/x.ks",  # pykickstart would fetch a URL
])
def test_include_outside_the_kickstart_dir_is_refused_without_quoting_it(tmp_path, include):
    secret = write(tmp_path / "outside" / "secret.ks", f"{SECRET}\n")
    ks_dir = tmp_path / "ks"
    (ks_dir / "sub").mkdir(parents=True)
    (ks_dir / "link.ks").symlink_to(secret)
    top = write(ks_dir / "top.ks", f"text\n%include {include.format(outside=secret)}\n")
    with pytest.raises(InputError) as err:
        flatten(top, "F19", ks_dir)
    message = str(err.value)
    assert f"{top}: %include " in message and "outside the kickstart dir" in message
    assert "do-not-echo" not in message and "root:" not in message


def test_include_inside_a_section_is_checked_too(tmp_path):
    secret = write(tmp_path / "secret.txt", f"{SECRET}\n")
    ks_dir = tmp_path / "ks"
    top = write(ks_dir / "top.ks", f"text\n%post\necho hi\n%include {secret}\n%end\n")
    with pytest.raises(InputError, match="outside the kickstart dir") as err:
        flatten(top, "F19", ks_dir)
    assert "do-not-echo" not in str(err.value)


def test_kickstart_itself_outside_the_dir_is_refused(tmp_path):
    secret = write(tmp_path / "secret.ks", f"{SECRET}\n")
    ks_dir = tmp_path / "ks"
    ks_dir.mkdir()
    with pytest.raises(InputError, match="cannot read kickstart: outside the kickstart dir") as err:
        flatten(ks_dir / ".." / "secret.ks", "F19", ks_dir)
    assert "do-not-echo" not in str(err.value)
    write(ks_dir / "d" / "x.ks", "text\n")
    with pytest.raises(InputError, match="cannot read kickstart: is a directory"):
        flatten(ks_dir / "d", "F19", ks_dir)  # a directory where a file is expected


def test_missing_include_names_it(tmp_path):
    top = write(tmp_path / "top.ks", "%include nope.ks\n")
    with pytest.raises(InputError, match="top.ks: %include nope.ks: no such file"):
        flatten(top, "F19")


def test_include_in_a_subdir_of_the_kickstart_dir_works(tmp_path):
    ks_dir = tmp_path / "ks"
    base = (paths.KICKSTART_DIR / "fedora-cloud-base.ks").read_text()
    write(ks_dir / "parts" / "base.ks", base)
    top = write(ks_dir / "top.ks", "%include parts/base.ks\n")
    assert "cloud-init" in flatten(top, "F19", ks_dir).text
