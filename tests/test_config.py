import pytest

from rel_eng.config import load_config
from rel_eng.errors import ConfigError

from conftest import write


def test_defaults_need_no_file():
    cfg = load_config()
    assert cfg.builder == "synthetic" and cfg.arches == ("i686", "x86_64")
    assert {r.key for r in cfg.releases} >= {"19", "rawhide"}


def test_every_problem_reported_at_once_with_file_and_key(tmp_path):
    path = write(tmp_path / "rel-eng.toml", """
[compose]
disk_size_gib = "big"
arches = ["x86_64", "s390x"]
builder = "nope"
colour = "blue"
""")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = "\n".join(err.value.problems)
    assert f"{path}: compose.disk_size_gib: expected int" in text
    assert f"{path}: compose.arches: unknown arch 's390x'" in text
    assert f"{path}: compose.builder: unknown builder 'nope'" in text
    assert f"{path}: compose.colour: unknown key" in text
    assert len(err.value.problems) == 4


def test_bad_toml_names_the_file(tmp_path):
    path = write(tmp_path / "bad.toml", "[compose\n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(path)


def test_release_definitions_are_checked(tmp_path):
    rel = write(tmp_path / "releases.toml", """
[releases.20]
version = "20-x"
fedora_version = 20
install_tree = "ftp://example.org/"
milestones = { Beta = 2013-09-01, Alpha = 2013-10-01, Gamma = 2013-11-01 }
""")
    with pytest.raises(ConfigError) as err:
        load_config(None, rel)
    text = "\n".join(err.value.problems)
    assert "releases.20.version: is required and must not contain '-'" in text
    assert "releases.20.install_tree: must be an http(s) URL" in text
    assert "releases.20.milestones.Gamma: unknown milestone" in text
    assert "releases.20.milestones.Alpha: 2013-10-01 is not after Beta" not in text  # order is checked below
    assert "releases.20.milestones: must be in order Alpha, Beta, Final" in text


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    write(tmp_path / "ks" / "a.ks", "text\n")
    path = write(tmp_path / "c.toml", """
[compose]
kickstart_dir = "ks"

[images.generic]
name = "Fedora-Cloud-Base"
subvariant = "Cloud_Base"
kickstart = "a.ks"
""")
    cfg = load_config(path)
    assert cfg.kickstart_dir == str(tmp_path / "ks")
    assert [t.key for t in cfg.image_types] == ["generic"]
