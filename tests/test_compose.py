"""A full local compose with the synthetic builder, checked the way a release engineer would."""

import json
import stat
import subprocess

import pytest
from productmd.composeinfo import ComposeInfo
from productmd.images import Images

from rel_eng import compose as compose_mod
from rel_eng.compose import Compose, resume, run_compose

from conftest import ALPHA_DATE, private_copy, sparse_equal
from signatures import assert_overrides_match


def test_layout_and_status(alpha_drop):
    c, out = alpha_drop
    assert c.topdir == out / "Fedora-Cloud-19-20130405.0"
    assert c.read_status() == "FINISHED"
    for arch in ("i686", "x86_64"):
        names = sorted(p.name for p in c.images_dir(arch).iterdir())
        assert names == sorted([
            f"Fedora-Cloud-19_Alpha-1.1-{arch}-CHECKSUM", "README",
            f"Fedora-Cloud-Base-19_Alpha-1.1.{arch}.qcow2",
            f"Fedora-Cloud-Base-19_Alpha-1.1.{arch}.raw.tar.xz",
            f"Fedora-Cloud-Base-EC2-19_Alpha-1.1.{arch}.qcow2",
            f"Fedora-Cloud-Base-EC2-19_Alpha-1.1.{arch}.raw.tar.xz"])


def test_productmd_reads_back_images_and_composeinfo(alpha_drop):
    c, _ = alpha_drop
    images = Images()
    images.load(str(c.metadir / "images.json"))
    assert images.compose.id == "Fedora-Cloud-19-20130405.0" and images.compose.label == "Alpha-1.1"
    found = [img for arch in images.images["Cloud"].values() for img in arch]
    assert len(found) == 8
    assert {(i.subvariant, i.type, i.format) for i in found} == {
        ("Cloud_Base", "qcow2", "qcow2"), ("Cloud_Base", "raw-xz", "tar.xz"),
        ("Cloud_Base_EC2", "qcow2", "qcow2"), ("Cloud_Base_EC2", "raw-xz", "tar.xz")}
    for img in found:
        path = c.topdir / "compose" / img.path
        assert path.stat().st_size == img.size
        assert not img.bootable
    ci = ComposeInfo()
    ci.load(str(c.metadir / "composeinfo.json"))
    assert ci.compose.id == c.plan.compose_id
    assert ci.variants["Cloud"].paths.images["i686"] == "Cloud/i686/images"


def test_every_checksum_file_verifies(alpha_drop):
    c, _ = alpha_drop
    for arch in ("i686", "x86_64"):
        d = c.images_dir(arch)
        name = c.plan.checksum_name(arch)
        text = (d / name).read_text()
        assert text.splitlines()[0].startswith("# Fedora-Cloud-Base-19_Alpha-1.1.")
        assert "bytes" in text.splitlines()[0] and text.splitlines()[1].startswith("SHA256 (")
        subprocess.run(["sha256sum", "-c", "--strict", name], cwd=d, check=True, capture_output=True)


def test_qcow2_passes_qemu_img_check(alpha_drop):
    c, _ = alpha_drop
    qcow2s = sorted((c.topdir / "compose").rglob("*.qcow2"))
    assert len(qcow2s) == len(c.plan.images) == 4  # one per image: 2 types x 2 arches
    for q in qcow2s:
        subprocess.run(["qemu-img", "check", str(q)], check=True, capture_output=True)


def test_raw_member_is_the_builders_raw_byte_for_byte(alpha_drop, tmp_path):
    c, _ = alpha_drop
    raws = c.manifest.artifacts(kind="raw-disk")
    assert sorted(a.job_key for a in raws) == sorted(j.key for j in c.plan.images)
    for raw_art in raws:
        job = c.job(raw_art.job_key)
        tarball = c.images_dir(job.arch) / f"{job.nvra}.raw.tar.xz"
        listing = subprocess.run(["tar", "-tf", str(tarball)], capture_output=True, text=True,
                                 check=True).stdout.split()
        assert listing == [f"{job.nvra}.raw"]
        dest = tmp_path / job.key
        dest.mkdir()
        subprocess.run(["tar", "-xSf", str(tarball), "-C", str(dest)], check=True)
        assert sparse_equal(c.topdir / raw_art.path, dest / f"{job.nvra}.raw")


def test_synthetic_disk_is_a_real_partitioned_ext4_image(alpha_drop):
    c, _ = alpha_drop
    raw = c.topdir / c.manifest.artifacts(kind="raw-disk", job_key="ec2-x86_64")[0].path
    assert raw.stat().st_size == 3 * 1024**3
    assert raw.stat().st_blocks * 512 < 64 << 20  # sparse
    table = json.loads(subprocess.run(["sfdisk", "--json", str(raw)], capture_output=True,
                                      text=True, check=True).stdout)
    part = table["partitiontable"]["partitions"][0]
    assert part["start"] == 2048 and part["type"] == "83"
    # debugfs reads the filesystem at the partition offset without mounting.
    def cat(path):
        return subprocess.run(["debugfs", "-R", f"cat {path}", f"{raw}?offset=1048576"],
                              capture_output=True, text=True, check=True).stdout
    assert "NOT BOOTABLE" in cat("/etc/os-release")
    assert "cloud-init" in cat("/root/anaconda-ks.cfg")
    assert "<template>" in cat("/root/Fedora-Cloud-Base-EC2-19_Alpha-1.1.x86_64.tdl")
    manifest = json.loads(cat("/etc/rel-eng/manifest.json"))
    assert manifest["bootable"] is False and manifest["compose_id"] == c.plan.compose_id


def test_readme_says_what_a_user_needs(alpha_drop):
    c, _ = alpha_drop
    text = (c.images_dir("x86_64") / "README").read_text()
    for needle in ("Fedora-Cloud-Base-19_Alpha-1.1.x86_64.qcow2", "sha256sum -c",
                   "Log in as 'fedora'", "openstack image create", "euca-install-image",
                   "Booting in EC2", "No AMIs have been published", "NOT BOOTABLE"):
        assert needle in text, needle


def test_mirror_tree_is_staged_world_readable(alpha_drop):
    c, out = alpha_drop
    drop = out / "mirror" / "alt" / "stage" / "19_Alpha-1.1"
    assert (drop / "Cloud" / "x86_64" / "images" / "README").is_file()
    assert (drop / "metadata" / "images.json").is_file()
    everything = [drop, *drop.rglob("*")]
    assert len(everything) > 20, everything  # the drop, its dirs, images, CHECKSUMs, metadata
    for p in everything:
        mode = p.stat().st_mode
        assert mode & stat.S_IROTH, p
        if p.is_dir():
            assert mode & stat.S_IXOTH, p
    staged = {p.relative_to(drop) for p in drop.rglob("*") if p.is_file()}
    images = [p for p in staged if p.parts[0] == "Cloud" and p.suffix in (".qcow2", ".xz")]
    assert len(images) == 2 * len(c.plan.images), sorted(staged)  # qcow2 and raw.tar.xz each
    for p in staged:  # non-empty: holds the images counted above
        if p.parts[0] == "Cloud":
            assert (c.topdir / "compose" / p).read_bytes() == (drop / p).read_bytes()
    assert not [p for p in drop.parent.iterdir() if p.name.startswith(".")]


def test_rerun_does_nothing_twice(alpha_drop, tmp_path):
    c, shared = alpha_drop
    out = private_copy(shared, tmp_path / "alpha")  # resume writes (log, status): not on the shared one
    topdir = out / c.topdir.name
    before = {p: p.stat().st_mtime_ns for p in (topdir / "compose").rglob("*.*") if p.is_file()
              and p.suffix in (".qcow2", ".xz")}
    assert len(before) == 2 * len(c.plan.images)
    resume(Compose.load(topdir), out / "mirror")
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after


def test_respins_count_up_and_weekly_keeps_latest_and_retention(tmp_path, config):
    import dataclasses

    cfg = dataclasses.replace(config, weekly_retention=2)
    a2 = run_compose(cfg, tmp_path, "19", "Alpha", ALPHA_DATE)
    b2 = run_compose(cfg, tmp_path, "19", "Alpha", ALPHA_DATE)
    assert (a2.plan.label, b2.plan.label) == ("Alpha-1.1", "Alpha-1.2")
    assert b2.plan.compose_id == "Fedora-Cloud-19-20130405.1"
    ids = [run_compose(cfg, tmp_path, "rawhide", None, ALPHA_DATE).plan.compose_id for _ in range(3)]
    weekly = tmp_path / "mirror" / "alt" / "cloud" / "weekly" / "Rawhide"
    stream_files = ["index.html", "drops.atom", "releases.json"]  # the stream's pages
    assert sorted(p.name for p in weekly.iterdir()) == sorted(ids[1:] + ["latest"] + stream_files)
    assert (weekly / "latest").resolve().name == ids[-1]


def test_a_failed_optional_arch_finishes_incomplete(tmp_path, config):
    import dataclasses
    from rel_eng.builders.synthetic import SyntheticBuilder
    from rel_eng.builders import BuildOutcome

    class HalfBroken(SyntheticBuilder):
        def wait(self, handles, timeout=None):
            return [BuildOutcome(o.job_key, False, "oz-install: anaconda failed") if o.job_key.endswith("i686")
                    else o for o in super().wait(handles, timeout)]

    assert_overrides_match(HalfBroken)
    cfg = dataclasses.replace(config, optional_arches=("i686",))
    plan = compose_mod.allocate(cfg, tmp_path, "19", "Beta", ALPHA_DATE)
    c = compose_mod.create(cfg, plan, tmp_path, compose_mod.prepare_inputs(cfg, plan))
    compose_mod.build(c, builder_factory=HalfBroken)
    for key in ("generic-x86_64", "ec2-x86_64"):
        compose_mod.process(c, key)
    assert compose_mod.finalize(c, tmp_path / "mirror") == "FINISHED_INCOMPLETE"
    summary = json.loads((c.metadir / "rel-eng.json").read_text())
    assert set(summary["failed_images"]) == {"generic-i686", "ec2-i686"}
    staged = tmp_path / "mirror" / "alt" / "stage" / "19_Beta-1.1"
    assert not (staged / "Cloud" / "i686").exists()
    readme = (staged / "Cloud" / "x86_64" / "images" / "README").read_text()
    assert "Fedora-Cloud-Base-19_Beta-1.1.i686: oz-install: anaconda failed" in readme


def test_a_failed_required_arch_dooms_and_stages_nothing(tmp_path, config):
    from rel_eng.builders.synthetic import SyntheticBuilder
    from rel_eng.builders import BuildOutcome

    class Broken(SyntheticBuilder):
        def wait(self, handles, timeout=None):
            return [BuildOutcome(h.job_key, False, "install timed out") for h in handles]

    assert_overrides_match(Broken)
    plan = compose_mod.allocate(config, tmp_path, "19", "Beta", ALPHA_DATE)
    c = compose_mod.create(config, plan, tmp_path, compose_mod.prepare_inputs(config, plan))
    compose_mod.build(c, builder_factory=Broken)
    with pytest.raises(compose_mod.ComposeDoomed, match="DOOMED.*install timed out"):
        compose_mod.finalize(c, tmp_path / "mirror")
    assert c.read_status() == "DOOMED"
    assert not (tmp_path / "mirror").exists()


def test_the_same_job_gives_the_same_bytes(tmp_path, config):
    """Reproducible synthetic disks: UUIDs, label id and every inode time come from the job."""
    import time

    from rel_eng.builders.synthetic import build_disk

    raws = []
    for run in ("a", "b"):
        plan = compose_mod.allocate(config, tmp_path / run, "19", "Alpha", ALPHA_DATE)
        c = compose_mod.create(config, plan, tmp_path / run, compose_mod.prepare_inputs(config, plan))
        raws.append(build_disk(compose_mod.build_request(c, "generic-i686")))
        time.sleep(1.1)  # a later wall clock must not show in the image
    assert sparse_equal(*raws)


def test_demo_drop_qcow2_files_are_compressed(alpha_drop):
    c, out = alpha_drop
    staged = list((out / "mirror" / c.plan.mirror_path).rglob("*.qcow2"))
    assert len(staged) == 4
    for q in staged:
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(q)],
                                         check=True, capture_output=True, text=True).stdout)
        check = json.loads(subprocess.run(["qemu-img", "check", "--output=json", str(q)],
                                          check=True, capture_output=True, text=True).stdout)
        assert info["format-specific"]["data"]["compression-type"] == "zlib"
        assert check["compressed-clusters"] > 0 and check["check-errors"] == 0


def test_optional_raw_xz_output_reaches_images_json_checksums_and_readme(tmp_path, config):
    import dataclasses

    cfg = dataclasses.replace(config, outputs=("qcow2", "raw.tar.xz", "raw.xz"),
                              arches=("x86_64",), disk_size_gib=1,
                              image_types=config.image_types[:1])
    c = run_compose(cfg, tmp_path, "19", "Alpha", ALPHA_DATE)
    assert c.read_status() == "FINISHED"
    nvra = c.plan.images[0].nvra
    d = c.images_dir("x86_64")
    raw_xz = d / f"{nvra}.raw.xz"
    assert raw_xz.is_file()
    [raw_art] = c.manifest.artifacts(kind="raw-disk")
    unpacked = tmp_path / "unpacked.raw"
    with open(unpacked, "wb") as fh:
        subprocess.run(["xz", "-dc", str(raw_xz)], check=True, stdout=fh)
    assert sparse_equal(c.topdir / raw_art.path, unpacked)
    images = Images()
    images.load(str(c.metadir / "images.json"))
    found = {(i.type, i.format): i for i in images.images["Cloud"]["x86_64"]}
    assert set(found) == {("qcow2", "qcow2"), ("raw-xz", "tar.xz"), ("raw-xz", "raw.xz")}
    assert found[("raw-xz", "raw.xz")].path == f"Cloud/x86_64/images/{nvra}.raw.xz"
    checksum = (d / c.plan.checksum_name("x86_64")).read_text()
    assert f"SHA256 ({nvra}.raw.xz) = " in checksum
    subprocess.run(["sha256sum", "-c", "--strict", c.plan.checksum_name("x86_64")], cwd=d,
                   check=True, capture_output=True)
    readme = (d / "README").read_text()
    assert f"{nvra}.raw.xz" in readme and "compressed with xz on its own" in readme
