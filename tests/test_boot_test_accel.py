"""`rel-eng boot-test --accel`: tcg runs the guest under TCG; kvm is refused in one line (exit 2,
nothing booted) on a host where KVM is not usable, and boots under KVM where it is.

Whether this host has usable KVM is read here from the kernel alone (a hardware KVM module,
kvm_intel or kvm_amd, loaded and /dev/kvm usable), not from rel-eng's own choice. A host with only
a software nested KVM (kvm_pvm) counts as unusable, as the README says its probe finds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rel_eng.boottest import fixture
from tests.qemu_procs import qemu_pids_under

RELENG = [sys.executable, "-m", "rel_eng"]
DEV_KVM = Path("/dev/kvm")
HARDWARE_KVM = any(Path("/sys/module", m).is_dir() for m in ("kvm_intel", "kvm_amd")) \
    and DEV_KVM.exists() and os.access(DEV_KVM, os.R_OK | os.W_OK)


def _env(tmp_path: Path) -> dict:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "REL_ENG_ACCEL"}
    return {**env, "TMPDIR": str(tmp)}


def test_accel_kvm_is_refused_where_kvm_is_not_usable(tmp_path):
    if HARDWARE_KVM:
        pytest.skip("this host has hardware KVM: --accel kvm is allowed here")
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    env = _env(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    proc = subprocess.run([*RELENG, "boot-test", "--accel", "kvm", "--logs", str(tmp_path / "logs"),
                           str(disk)], capture_output=True, text=True, env=env, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("rel-eng: error: accel kvm") and "KVM is not usable" in lines[0]
    assert "--accel tcg" in lines[0]
    assert proc.stdout == ""
    # no logs dir, no key, seed or overlay in TMPDIR: nothing booted
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert qemu_pids_under(disk) == []


def test_accel_kvm_boots_where_kvm_is_usable(appliance_images, tmp_path):
    if not HARDWARE_KVM:
        pytest.skip("this host has no hardware KVM module loaded, so KVM is not usable")
    good = appliance_images["amd64"]
    proc = subprocess.run([*RELENG, "boot-test", "--json", "--accel", "kvm", str(good.path)],
                          capture_output=True, text=True, env=_env(tmp_path), timeout=1800)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    [v] = json.loads(proc.stdout)
    assert v["accel"] == "kvm" and v["status"] == "pass"


def test_accel_tcg_runs_the_guest_under_tcg(appliance_images, tmp_path):
    """The no-boot variant (GRUB stops at its prompt) with only the console check and a short
    console bound: qemu really runs the image's own BIOS boot under TCG, and the verdict says so,
    at the cost of the bound rather than of a full boot (which test_boot_test_vm.py has)."""
    no_boot = fixture.derive(appliance_images["amd64"], "no-boot")
    cfg = tmp_path / "config.toml"
    cfg.write_text("[boot_test]\nconsole_timeout_s = 20\n")
    logs = tmp_path / "logs"
    proc = subprocess.run([*RELENG, "boot-test", "--json", "--accel", "tcg", "--checks", "console",
                           "--config", str(cfg), "--logs", str(logs), str(no_boot.path)],
                          capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    [v] = json.loads(proc.stdout)
    assert v["accel"] == "tcg" and "forced" in v["accel_reason"]
    [console] = [c for c in v["checks"] if c["name"] == "console"]
    assert console["status"] == "fail"
    log = Path(v["console_log"])
    assert log.is_file() and log.parent == logs
    text = log.read_text(errors="replace")
    assert "grub" in text.lower()  # the image's own boot loader ran, under TCG
    assert qemu_pids_under(no_boot.path) == []
