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


def test_old_qcow2_compress_key_is_refused_with_the_new_one_named(tmp_path):
    path = write(tmp_path / "rel-eng.toml", "[compose]\nqcow2_compress = true\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [
        f'{path}: compose.qcow2_compress: replaced by qcow2_compression = "zlib", "zstd" or '
        f'"none" (the default is "zlib")']


def test_compression_and_outputs_defaults_and_choices(tmp_path):
    cfg = load_config()
    assert cfg.qcow2_compression == "zlib"
    assert cfg.outputs == ("qcow2", "raw.tar.xz")
    path = write(tmp_path / "ok.toml", '[compose]\nqcow2_compression = "zstd"\n'
                                       'outputs = ["qcow2", "raw.tar.xz", "raw.xz"]\n')
    cfg = load_config(path)
    assert (cfg.qcow2_compression, cfg.outputs) == ("zstd", ("qcow2", "raw.tar.xz", "raw.xz"))
    from rel_eng.config import Config

    assert Config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("body, message", [
    ('qcow2_compression = "lz4"', "compose.qcow2_compression: unknown compression 'lz4' "
                                  "(use zlib, zstd, none)"),
    ('qcow2_compression = true', "compose.qcow2_compression: expected str, got bool True"),
    ('outputs = ["qcow2", "vmdk"]', "compose.outputs: unknown output 'vmdk' "
                                    "(use qcow2, raw.tar.xz, raw.xz)"),
    ('outputs = ["qcow2", "qcow2"]', "compose.outputs: lists an output twice"),
    ('outputs = []', 'compose.outputs: must list at least one output, e.g. "qcow2"'),
    ('outputs = "raw.xz"', "compose.outputs: expected list, got str 'raw.xz'"),
])
def test_bad_compression_or_outputs_is_one_line_with_the_key(tmp_path, body, message):
    path = write(tmp_path / "bad.toml", f"[compose]\n{body}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}: {message}"]


def test_the_replaced_keys_are_refused_naming_their_replacement(tmp_path, capsys):
    """`[ec2] messaging` and `qcow2_compress` are read for their old meaning nowhere: validate
    refuses each, one line naming what to write instead (exit 2), also inside a saved config."""
    from rel_eng import cli
    from rel_eng.config import Config

    path = write(tmp_path / "rel-eng.toml", "[compose]\nqcow2_compress = false\n"
                 "[ec2]\nmessaging = true\nenabled = false\n")
    assert cli.main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f'rel-eng: error: {path}: compose.qcow2_compress: replaced by qcow2_compression = ' \
           '"zlib", "zstd" or "none" (the default is "zlib")' in err
    assert f"rel-eng: error: {path}: ec2.messaging: replaced by [messaging] enabled = true " \
           "(every message, the AMIs' included, is sent from the compose store's outbox)" in err
    data = load_config().to_dict()
    assert "messaging" not in data["ec2"]
    with pytest.raises(TypeError, match="qcow2_compress"):  # never silently dropped
        Config.from_dict({**data, "qcow2_compress": False})
    with pytest.raises(TypeError, match="messaging"):
        Config.from_dict({**data, "ec2": {**data["ec2"], "messaging": True}})


