"""The boot gate as a compose step, with real boots of the Debian test appliance (TCG forced).

The generic image is booted as OpenStack boots it (its default platform): Nova's DMI and a
config drive, which the appliance variant built for OpenStack ([ ConfigDrive, OpenStack, None ])
finds. A milestone compose whose required x86_64 image boots and whose optional i686 image has
no sshd ends FINISHED_INCOMPLETE: the i686 image is neither staged nor left for EC2, the verdicts are in
rel-eng.json, the compose store (`rel-eng status`), the README, logs/, and the x86_64 package
list is a checksummed deliverable. A required image that never boots dooms the compose.
A rerun reuses the recorded verdicts without booting again. These boots are the suite's only
boots of the OpenStack amd64 appliance and of its no-sshd (here i386) and no-boot variants, so their
verdicts are checked in detail here (tests/test_boot_test_vm.py boots the others).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from rel_eng.boottest import fixture
from rel_eng.builders import BUILDERS
from rel_eng.compose import run_compose
from rel_eng.compose.model import DOOMED, INCOMPLETE, ComposeDoomed
from rel_eng.config import load_config
from rel_eng.manifest import Manifest
from rel_eng.store.recorder import recorder_for

from tests.appliance_builder import APPLIANCES, ApplianceBuilder

DATE = dt.date(2013, 4, 5)
# Bounds for a shared CI host (see tests/test_boot_test_vm.py); they only cap a hang. The ssh
# bound is when the last login attempt may start after the host keys are printed: sshd is up
# before cloud-init's final stage prints them, so the good image's first attempt connects, and
# the no-sshd image's verdict waits no longer than this.
GENEROUS = "console_timeout_s = 1200\nboot_timeout_s = 3000\nssh_timeout_s = 15\nguest_script_timeout_s = 1200\n"
NO_BOOT_CONSOLE_S = 600
CHECKS = ["console", "cloud-init", "datasource", "ssh", "metadata", "user-data", "sealed",
          "root-grown", "no-hardcoded-mac", "firewall-off", "root-locked", "sudo-nopasswd",
          "system-health"]


@pytest.fixture()
def appliance_builder_registered(monkeypatch):
    monkeypatch.setitem(BUILDERS, ApplianceBuilder.name, ApplianceBuilder)
    monkeypatch.setenv("REL_ENG_ACCEL", "tcg")
    APPLIANCES.clear()
    yield
    APPLIANCES.clear()


def _config(tmp_path, arches, optional, extra=""):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"[compose]\nbuilder = \"appliance\"\narches = {json.dumps(arches)}\n"
        f"optional_arches = {json.dumps(optional)}\n"
        # The gate boots the image whatever its deliverables: one uncompressed qcow2 is enough
        # here (the formats have their own tests), and saves compressing 2 GiB disks.
        "outputs = [\"qcow2\"]\nqcow2_compression = \"none\"\n"
        "[images.generic]\nname = \"Fedora-Cloud-Base\"\nsubvariant = \"Cloud_Base\"\n"
        "kickstart = \"fedora-cloud-base.ks\"\n"
        f"[boot_test]\nparallel = 2\nchecks = {json.dumps(CHECKS)}\n{extra or GENEROUS}")
    return load_config(cfg)


def test_gated_compose_optional_failure_is_incomplete_and_kept_out(
        appliance_builder_registered, appliance_images, tmp_path, capfd):
    APPLIANCES["generic-x86_64"] = fixture.derive(appliance_images["amd64"], "openstack").path
    APPLIANCES["generic-i686"] = fixture.derive(appliance_images["i386"], "openstack+no-sshd").path
    config = _config(tmp_path, ["x86_64", "i686"], ["i686"])
    out = tmp_path / "out"
    rec = recorder_for(config, out)
    try:
        c = run_compose(config, out, "19", "Alpha", DATE, recorder=rec)
    finally:
        if rec is not None:
            rec.close()
    assert c.read_status() == INCOMPLETE
    meta = json.loads((c.metadir / "rel-eng.json").read_text())
    bt = meta["boot_test"]
    assert bt["gate"] == "milestones" and bt["gated"] is True
    good, no_sshd = bt["images"]["generic-x86_64"], bt["images"]["generic-i686"]
    assert good["status"] == "pass" and good["accel_reason"] == "forced by REL_ENG_ACCEL=tcg"
    assert {ch["name"]: ch["status"] for ch in good["checks"]} == {name: "pass" for name in CHECKS}
    # booted as the generic image's platform: Nova's config drive, found by cloud-init itself
    assert good["platform"] == {"name": "openstack", "label": "openstack (config drive)",
                                "openstack": "config-drive"}
    ds = {ch["name"]: ch for ch in good["checks"]}["datasource"]
    assert "cloud-init ran from ConfigDrive" in ds["evidence"]
    assert no_sshd["status"] == "fail"
    s = {ch["name"]: ch["status"] for ch in no_sshd["checks"]}
    assert s["console"] == "pass" and s["ssh"] == "fail"
    assert "ssh never answered" in no_sshd["reason"] and "no sshd" in no_sshd["reason"]
    assert "last console line:" in no_sshd["reason"]
    assert "generic-i686" in meta["failed_images"]
    # the failed image is out of the drop: not in the manifest, not staged, not in CHECKSUM
    m = Manifest(c.topdir)
    assert m.artifacts(job_key="generic-i686", kind="raw-disk") == []
    assert "generic-i686" in m.read()["rejected"]
    staged = out / "mirror" / c.plan.mirror_path
    names = {p.name for p in staged.rglob("*") if p.is_file()}
    x86 = c.plan.images[[j.key for j in c.plan.images].index("generic-x86_64")]
    i686 = c.plan.images[[j.key for j in c.plan.images].index("generic-i686")]
    assert f"{x86.nvra}.qcow2" in names and f"{x86.nvra}-packages.txt" in names
    assert not any(i686.nvra in n for n in names)
    checksum = (c.images_dir("x86_64") / c.plan.checksum_name("x86_64")).read_text()
    assert f"{x86.nvra}-packages.txt" in checksum
    assert "cloud-init " in (c.images_dir("x86_64") / f"{x86.nvra}-packages.txt").read_text()
    readme = (c.images_dir("x86_64") / "README").read_text()
    assert "Boot test" in readme
    assert f"{x86.nvra}: PASS under tcg, booted as openstack (config drive)" in readme
    assert (c.logdir / "boottest" / f"{x86.nvra}.console.log").is_file()
    # nothing of the test (key, seed, overlay) anywhere in the compose
    leftovers = [p for p in c.topdir.rglob("*") if p.name in ("id_ed25519", "seed.iso", "overlay.qcow2",
                                                              "known_hosts", "offline.raw")]
    assert leftovers == []
    # the store shows the verdicts
    status = subprocess.run([sys.executable, "-m", "rel_eng", "status", c.plan.compose_id,
                             "--output", str(out), "--json"], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    detail = json.loads(status.stdout)
    images = {i["job_key"]: i for i in detail["images"]}
    assert images["generic-x86_64"]["steps"]["boottest"]["state"] == "done"
    assert images["generic-x86_64"]["boot"] == {"platform": "openstack (config drive)",
                                                "accel": "tcg"}
    assert images["generic-i686"]["steps"]["boottest"]["state"] == "failed"
    assert images["generic-i686"]["steps"]["build"]["state"] == "failed"
    # the rejected image's disks are not in the store's artifacts as if shippable
    kinds = {(a["job_key"], a["kind"]) for a in detail["artifacts"]}
    assert not {k for k in kinds if k[0] == "generic-i686" and k[1] != "log"}
    assert ("generic-x86_64", "qcow2") in kinds and ("generic-x86_64", "packages-list") in kinds
    # a rerun reuses the verdicts: no VM starts
    calls = []
    from rel_eng.compose import boot_gate
    verdicts = boot_gate.run_gate(c, ["generic-x86_64"], boot=lambda *a: calls.append(a) or [])
    assert calls == [] and verdicts["generic-x86_64"]["status"] == "pass"


def test_gated_required_failure_dooms_the_compose(appliance_builder_registered, appliance_images,
                                                  tmp_path):
    APPLIANCES["generic-x86_64"] = fixture.derive(appliance_images["amd64"], "no-boot").path
    config = _config(tmp_path, ["x86_64"], [], f"console_timeout_s = {NO_BOOT_CONSOLE_S}\n")
    out = tmp_path / "out"
    with pytest.raises(ComposeDoomed, match="boot test failed: GRUB stopped at its prompt"):
        run_compose(config, out, "19", "Alpha", DATE)
    topdir = next(p for p in out.iterdir() if p.is_dir() and (p / "STATUS").exists())
    assert (topdir / "STATUS").read_text().strip() == DOOMED
    assert not (out / "mirror").exists() or not any((out / "mirror").rglob("*.qcow2"))
    # a kernel that never loads: GRUB's prompt on the console settles it, with no wait for the
    # console bound (NO_BOOT_CONSOLE_S only caps a hang)
    v = json.loads((topdir / "compose" / "metadata" / "rel-eng.json").read_text())["boot_test"]["images"][
        "generic-x86_64"]
    s = {ch["name"]: ch["status"] for ch in v["checks"]}
    assert s.pop("console") == "fail" and v["status"] == "fail"
    assert "GRUB stopped at its prompt (it could not load a kernel)" in v["reason"]
    assert "kernel" not in v["seconds"]
    assert "last console line:" in v["reason"]
    assert "GRUB" in (topdir / v["console_log"]).read_text(errors="replace")
    assert set(s.values()) == {"not-run"}


def test_synthetic_images_are_skipped_never_passed(alpha_drop):
    c, out = alpha_drop
    bt = json.loads((c.metadir / "rel-eng.json").read_text())["boot_test"]
    assert bt["images"] and all(v["status"] == "skipped" and v["reason"] == "skipped: not bootable"
                                for v in bt["images"].values())
    readme = (c.images_dir("x86_64") / "README").read_text()
    assert "skipped: not bootable (not booted; this is not a pass)" in readme
    assert "PASS" not in readme.split("Boot test", 1)[1]
