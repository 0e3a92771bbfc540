import dataclasses
import datetime as dt
import json

import pytest

from rel_eng.config import Config
from rel_eng.errors import InputError
from rel_eng.plan import DropPlan, plan_drop

DATE = dt.date(2013, 4, 5)


def test_alpha_plan_has_four_images_with_pungi_names(config):
    plan = plan_drop(config, "19", milestone="Alpha", date=DATE)
    assert plan.compose_id == "Fedora-Cloud-19-20130405.0"
    assert plan.label == "Alpha-1.1"
    assert plan.mirror_path == "alt/stage/19_Alpha-1.1"
    assert sorted(j.key for j in plan.images) == ["ec2-i686", "ec2-x86_64", "generic-i686", "generic-x86_64"]
    job = next(j for j in plan.images if j.key == "ec2-i686")
    assert (job.name, job.version, job.release, job.arch, job.oz_arch) == (
        "Fedora-Cloud-Base-EC2", "19_Alpha", "1.1", "i686", "i386")
    assert job.subvariant == "Cloud_Base_EC2"
    assert job.kickstart == "fedora-cloud-base-ec2.ks" and job.ksversion == "F19"
    assert [o.filename for o in job.outputs] == [
        "Fedora-Cloud-Base-EC2-19_Alpha-1.1.i686.qcow2", "Fedora-Cloud-Base-EC2-19_Alpha-1.1.i686.raw.tar.xz"]
    assert job.relpath == "Cloud/i686/images"
    assert "$arch" not in job.install_tree and "/i386/" in job.install_tree


def test_final_ships_from_rc_with_plain_version(config):
    plan = plan_drop(config, "19", milestone="Final", date=DATE, label_minor=3)
    assert plan.label == "RC-1.3"
    assert {j.version for j in plan.images} == {"19"}
    assert plan.mirror_path == "alt/stage/19_RC-1.3"


def test_weekly_is_nightly_with_date_respin_release(config):
    plan = plan_drop(config, "rawhide", date=DATE, respin=2)
    assert plan.compose_id == "Fedora-Cloud-Rawhide-20130405.n.2"
    assert plan.label is None and plan.compose_type == "nightly"
    assert {(j.version, j.release) for j in plan.images} == {("Rawhide", "20130405.n.2")}
    assert plan.mirror_path == "alt/cloud/weekly/Rawhide/Fedora-Cloud-Rawhide-20130405.n.2"
    assert {j.ksversion for j in plan.images} == {"F20"}


def test_plan_round_trips_through_json(config):
    plan = plan_drop(config, "19", milestone="Beta", date=DATE)
    assert DropPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_config_round_trips_through_json(config):
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_optional_arch_is_marked(config):
    cfg = dataclasses.replace(config, optional_arches=("i686",))
    plan = plan_drop(cfg, "19", milestone="Alpha", date=DATE)
    assert {j.arch for j in plan.images if j.optional} == {"i686"}


def test_milestone_for_release_without_schedule_is_refused(config):
    with pytest.raises(InputError, match="no milestones"):
        plan_drop(config, "rawhide", milestone="Alpha", date=DATE)


def test_outputs_follow_the_config_and_carry_productmd_values(config):
    from productmd.images import SUPPORTED_IMAGE_FORMATS, SUPPORTED_IMAGE_TYPES

    cfg = dataclasses.replace(config, outputs=("raw.xz", "qcow2"))
    plan = plan_drop(cfg, "19", milestone="Alpha", date=DATE)
    for job in plan.images:
        assert [o.suffix for o in job.outputs] == ["qcow2", "raw.xz"]
        assert [(o.type, o.format) for o in job.outputs] == [("qcow2", "qcow2"), ("raw-xz", "raw.xz")]
        for o in job.outputs:
            assert o.type in SUPPORTED_IMAGE_TYPES and o.format in SUPPORTED_IMAGE_FORMATS
            assert o.filename == f"{job.nvra}.{o.suffix}"
