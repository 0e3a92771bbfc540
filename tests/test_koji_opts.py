"""The pure side of the Koji builder: hub calls and opts from a plan, and the [koji] config."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from rel_eng.builders.koji_opts import image_calls, koji_arch, planned_calls, planned_kickstarts
from rel_eng.cli import main
from rel_eng.config import Config, load_config
from rel_eng.errors import ConfigError, InputError
from rel_eng.config.koji import KojiConfig
from rel_eng.plan import plan_drop

ALPHA = dt.date(2013, 4, 5)
# Every opts key koji's CLI can send for image-build (koji_cli.commands._build_image_oz).
KOJI_CLI_OPTS = {"ksurl", "ksversion", "kickstart", "scratch", "repo", "release", "skip_tag",
                 "specfile", "distro", "format", "disk_size", "ova_option", "factory_parameter",
                 "optional_arches", "noverifyssl"}
F19_TREE = "https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/19/Fedora/$arch/os/"
F19_REPO = ("https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/19/"
            "Everything/$arch/os/")


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def test_milestone_calls_are_exactly_what_koji_cli_would_send(cfg):
    plan = plan_drop(cfg, "19", milestone="Alpha", date=ALPHA, builder="koji")
    calls = planned_calls(plan, cfg)
    assert calls == [
        {"method": "buildImageOz",
         "args": ["Fedora-Cloud-Base", "19_Alpha", ["i386", "x86_64"], "f19-candidate", F19_TREE],
         "opts": {"ksversion": "F19", "kickstart": "work/cli-image/<unique>/fedora-cloud-base.ks",
                  "repo": [F19_REPO], "release": "1.1", "distro": "Fedora-19",
                  "format": ["raw-xz"], "disk_size": 3}},
        {"method": "buildImageOz",
         "args": ["Fedora-Cloud-Base-EC2", "19_Alpha", ["i386", "x86_64"], "f19-candidate",
                  F19_TREE],
         "opts": {"ksversion": "F19",
                  "kickstart": "work/cli-image/<unique>/fedora-cloud-base-ec2.ks",
                  "repo": [F19_REPO], "release": "1.1", "distro": "Fedora-19",
                  "format": ["raw-xz"], "disk_size": 3}},
    ]
    for call in calls:
        assert set(call["opts"]) <= KOJI_CLI_OPTS
        assert "scratch" not in call["opts"]  # milestones are real builds


def test_weekly_is_scratch_and_keeps_its_nightly_release(cfg):
    plan = plan_drop(cfg, "rawhide", milestone=None, date=ALPHA, builder="koji")
    call = planned_calls(plan, cfg)[0]
    assert call["opts"]["scratch"] is True
    assert call["opts"]["release"] == "20130405.n.0"
    assert call["opts"]["ksversion"] == "F20"
    assert call["opts"]["distro"] == "Fedora-20"
    assert call["args"][1] == "Rawhide" and call["args"][3] == "rawhide"

    no_scratch = dataclasses.replace(cfg, koji=KojiConfig(scratch_weeklies=False))
    assert "scratch" not in planned_calls(plan, no_scratch)[0]["opts"]


def test_optional_arch_factory_parameters_and_scm_kickstart(cfg):
    koji_cfg = KojiConfig(factory_parameter=(("generate_icicle", "False"),),
                          ksurl="git+https://pagure.io/fedora-kickstarts.git#f19",
                          formats=("raw-xz",), target="f19-image")
    config = dataclasses.replace(cfg, optional_arches=("i686",), koji=koji_cfg)
    plan = plan_drop(config, "19", milestone="Beta", date=ALPHA, builder="koji")
    opts = planned_calls(plan, config)[0]["opts"]
    assert opts["optional_arches"] == ["i386"]  # koji's spelling of the arch allowed to fail
    assert opts["factory_parameter"] == [["generate_icicle", "False"]]
    assert opts["ksurl"] == "git+https://pagure.io/fedora-kickstarts.git#f19"
    assert opts["kickstart"] == "fedora-cloud-base.ks"  # a path in the SCM repo: no upload
    assert opts["format"] == ["raw-xz"]
    assert planned_calls(plan, config)[0]["args"][3] == "f19-image"


def test_arches_are_sent_as_koji_and_oz_spell_them(cfg):
    plan = plan_drop(cfg, "19", milestone="Alpha", date=ALPHA)
    # kojid writes the arch into the Oz TDL verbatim; Oz accepts i386, not i686.
    assert {j.arch: koji_arch(j) for j in plan.images} == {"i686": "i386", "x86_64": "x86_64"}


def test_bad_values_are_refused_before_any_call(cfg):
    plan = plan_drop(cfg, "19", milestone="Alpha", date=ALPHA)
    jobs = list(plan.images)
    ks = planned_kickstarts(jobs, cfg)
    devel = [dataclasses.replace(j, ksversion="DEVEL") for j in jobs]
    with pytest.raises(InputError, match="DEVEL"):
        image_calls(devel, cfg, weekly=False, kickstarts=ks)
    hyphen = [dataclasses.replace(j, release="1-1") for j in jobs]
    with pytest.raises(InputError, match="must not contain '-'"):
        image_calls(hyphen, cfg, weekly=False, kickstarts=ks)
    no_target = dataclasses.replace(
        cfg, releases=tuple(dataclasses.replace(r, koji_target="") for r in cfg.releases))
    with pytest.raises(InputError, match="no koji_target"):
        image_calls(jobs, no_target, weekly=False, kickstarts=ks)
    split = [dataclasses.replace(jobs[0], version="20"), *jobs[1:]]
    with pytest.raises(InputError, match="differ in version"):
        image_calls(split, cfg, weekly=False, kickstarts=ks)


def test_plan_command_prints_the_hub_calls(capsys):
    rc = main(["plan", "--release", "19", "--milestone", "Alpha", "--date", "2013-04-05",
               "--builder", "koji", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["args"][0] for c in data["builder_calls"]] == ["Fedora-Cloud-Base",
                                                             "Fedora-Cloud-Base-EC2"]
    # what the README and schedules/releases.toml say: buildImageOz, i686 spelled i386 as
    # Koji's CLI and Oz spell it, 19's Koji target
    assert {c["method"] for c in data["builder_calls"]} == {"buildImageOz"}
    assert all(c["args"][2] == ["i386", "x86_64"] and c["args"][3] == "f19-candidate"
               for c in data["builder_calls"])


def test_koji_table_parses_and_round_trips(tmp_path):
    path = tmp_path / "rel-eng.toml"
    path.write_text(
        '[koji]\nprofile = "fedora"\npoll_interval = 30\ntimeout = 7200.5\nretries = 3\n'
        'formats = ["qcow2", "raw-xz", "vagrant-libvirt"]\nscratch_weeklies = false\n'
        'factory_parameter = [["generate_icicle", "False"]]\ncancel_on_signal = false\n'
        'ksurl = "git+https://pagure.io/fedora-kickstarts.git#f19"\n')
    cfg = load_config(path)
    assert cfg.koji == KojiConfig(
        profile="fedora", poll_interval=30.0, timeout=7200.5, retries=3,
        formats=("qcow2", "raw-xz", "vagrant-libvirt"), scratch_weeklies=False,
        factory_parameter=(("generate_icicle", "False"),), cancel_on_signal=False,
        ksurl="git+https://pagure.io/fedora-kickstarts.git#f19")
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_every_koji_mistake_is_reported_at_once(tmp_path):
    path = tmp_path / "rel-eng.toml"
    path.write_text(
        '[koji]\nprofil = "x"\npoll_interval = -1\nformats = ["qcow2", "iso"]\n'
        'ksurl = "https://example.org/ks.git"\nfactory_parameter = [["only-one"]]\n'
        'retries = true\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = "\n".join(err.value.problems)
    for key in ("koji.profil", "koji.poll_interval", "koji.formats", "koji.ksurl",
                "koji.factory_parameter[0]", "koji.retries"):
        assert f"{path}: {key}:" in text
    # one key, one line: the first of its problems (the unknown format), not a second line
    formats = [line for line in err.value.problems if f"{path}: koji.formats:" in line]
    assert len(formats) == 1
    assert "unknown image format(s) iso" in formats[0]
