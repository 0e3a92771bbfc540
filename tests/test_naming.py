import pytest

from rel_eng import naming


def test_compose_ids_follow_productmd():
    assert naming.compose_id("Fedora-Cloud", "19", "20130405", "production", 0) == "Fedora-Cloud-19-20130405.0"
    assert naming.compose_id("Fedora-Cloud", "Rawhide", "20130405", "nightly", 2) == "Fedora-Cloud-Rawhide-20130405.n.2"


@pytest.mark.parametrize("milestone,minor,label", [
    ("Alpha", 1, "Alpha-1.1"), ("Beta", 2, "Beta-1.2"), ("Final", 3, "RC-1.3")])
def test_labels(milestone, minor, label):
    assert naming.label(milestone, minor) == label


def test_labelled_versions_and_release():
    assert naming.image_version_release("19", "Alpha-1.1", "20130405", "production", 0) == ("19_Alpha", "1.1")
    assert naming.image_version_release("19", "RC-1.3", "20130405", "production", 0) == ("19", "1.3")
    assert naming.image_version_release("Rawhide", None, "20130405", "nightly", 1) == ("Rawhide", "20130405.n.1")


def test_nvra_stage_dir_and_checksum_names():
    assert naming.nvra("Fedora-Cloud-Base", "19_Beta", "1.2", "x86_64") == "Fedora-Cloud-Base-19_Beta-1.2.x86_64"
    assert naming.stage_dir("19", "Alpha-1.1") == "19_Alpha-1.1"
    assert naming.checksum_file("Fedora-Cloud", "19", "Beta-1.2", "1.2", "x86_64") == "Fedora-Cloud-19_Beta-1.2-x86_64-CHECKSUM"
    assert naming.checksum_file("Fedora-Cloud", "19", "RC-1.1", "1.1", "i686") == "Fedora-Cloud-19-1.1-i686-CHECKSUM"
    assert naming.checksum_file("Fedora-Cloud", "Rawhide", None, "20130405.n.0", "i686") == "Fedora-Cloud-Rawhide-20130405.n.0-i686-CHECKSUM"
