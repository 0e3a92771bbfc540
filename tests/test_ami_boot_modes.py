"""The AMI attributes as the gate reads and judges them, without a boot: the ESP in a partition
table (MBR and GPT, built by sfdisk), the ena driver of the appliance's kernel read offline
(and its no-ena variant), the OVMF command line, uefi-preferred's two verdicts as one, and what a
verdict's checks verify. The boots themselves are in tests/test_boot_test_vm.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rel_eng.boottest import boot_modes, engine, fixture, offline, qemu
from rel_eng.boottest import checks as ck
from rel_eng.boottest.accel import Accel
from rel_eng.boottest.platform import Platform
from rel_eng.compose.boot_gate import verified_attributes
from rel_eng.config.ami_attributes import AmiAttributes

ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


def _disk(tmp_path: Path, table: str) -> bytes:
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as fh:
        fh.truncate(64 * 1024**2)
    subprocess.run(["sfdisk", "--quiet", str(raw)], input=table.encode(), check=True)
    return raw.read_bytes()[:offline.HEAD_BYTES]


@pytest.mark.parametrize("table, found", [
    ("label: dos\nstart=2048, size=8192, type=ef\nstart=10240, type=83\n", (2048, 8192)),
    ("label: dos\nstart=2048, type=83, bootable\n", None),
    (f"label: gpt\nstart=2048, size=8192, type={ESP_GUID}\nstart=10240, size=4096, type=L\n", (2048, 8192)),
    ("label: gpt\nstart=2048, size=8192, type=L\n", None),
])
def test_the_esp_is_found_in_mbr_and_gpt_tables(tmp_path, table, found):
    assert offline.esp_partition(_disk(tmp_path, table)) == found


def test_the_appliance_esp_holds_the_loader_and_no_esp_has_none(appliance_images, tmp_path):
    good = appliance_images["amd64"]
    esp = offline.read_esp(good.path, good.fmt, tmp_path)
    assert esp.bootable and "holds /EFI/BOOT/BOOTX64.EFI" in esp.evidence
    bad = fixture.derive(good, "no-esp")
    esp = offline.read_esp(bad.path, bad.fmt, tmp_path)
    assert not esp.bootable and "no EFI system partition in the partition table" in esp.evidence


def test_ena_driver_is_read_offline_and_missing_in_the_no_ena_variant(appliance_images):
    """The appliance keeps ena.ko; its no-ena variant fails ena-driver from the offline read
    (whatever the guest would say), naming its kernel."""
    good = appliance_images["amd64"]
    raw = fixture.derive(good, "ec2")
    facts = offline.read(raw.path, ena=True)
    kernel = facts.kernels[0]
    assert facts.ena == {kernel: "kernel/drivers/net/ethernet/amazon/ena/ena.ko"}
    bare = offline.read(fixture.derive(good, "ec2+no-ena").path, ena=True)
    assert bare.kernels == [kernel] and bare.ena == {}
    section = {"firmware": f"firmware=uefi\nkernel={kernel}", "ena": "x\nrc=0"}
    result = ck.ena_driver(section, Platform("ec2", ena=True), bare)
    assert result.status == "fail"
    assert result.message == (f"the booted kernel {kernel} has no ena driver: no ena.ko* under its "
                              "modules dir and no ena in modules.builtin")
    assert ck.ena_driver(section, Platform("ec2"), bare).status == "skipped"  # no EnaSupport declared


def test_ena_in_modules_builtin_counts():
    found = offline.ena_module({"6.9": ([], "kernel/drivers/net/ethernet/amazon/ena/ena.ko\n"),
                                "3.9": ([], "kernel/fs/ext4/ext4.ko\n")})
    assert found == {"6.9": "built in (modules.builtin)"}


def test_qemu_argv_boots_through_ovmf_with_its_own_vars(tmp_path):
    spec = qemu.VmSpec("x86_64", "tcg", tmp_path / "o.qcow2", None, tmp_path / "c.log",
                       "52:54:00:00:00:01", 2222, uefi_vars=tmp_path / "VARS.fd")
    argv = qemu.argv(spec)
    code = f"if=pflash,format=raw,unit=0,readonly=on,file={qemu.OVMF_CODE}"
    assert argv[argv.index(code) - 1] == "-drive"
    assert f"if=pflash,format=raw,unit=1,file={tmp_path / 'VARS.fd'}" in argv
    assert qemu.OVMF_CODE.is_file() and qemu.OVMF_VARS.is_file()  # Debian's ovmf (Makefile)
    assert not [a for a in qemu.argv(qemu.VmSpec("x86_64", "tcg", tmp_path / "o.qcow2", None,
                                                  tmp_path / "c.log", "52:54:00:00:00:01", 2222))
                if "pflash" in a]


def _verdict(mode: str, status: str, uefi: str, legacy: str, seconds: float) -> engine.Verdict:
    checks = [ck.CheckResult("console", "pass", "kernel"),
              ck.CheckResult("boot-mode:legacy-bios", legacy, "", "" if legacy != "fail" else "bad"),
              ck.CheckResult("boot-mode:uefi", uefi, "", "" if uefi != "fail" else "no ESP")]
    v = engine.Verdict("d.raw", "x86_64", "tcg", "forced", status, checks,
                       reason="" if status == "pass" else "boot-mode:uefi: no ESP",
                       platform=Platform("ec2", boot_mode=mode).as_dict())
    v.seconds = {"verdict": seconds}
    return v


def test_uefi_preferred_boots_twice_in_one_call_and_is_one_verdict():
    """Both firmwares' boots go to one `boot` call (side by side under its bound); each check is
    taken from the boot that tested it, a failure in either wins."""
    calls = []

    def boot(imgs, opts, parallel, plats):
        calls.append([p.boot_mode for p in plats])
        return [_verdict(p.boot_mode, "pass" if p.boot_mode == "legacy-bios" else "fail",
                         "skipped" if p.boot_mode == "legacy-bios" else "fail",
                         "pass" if p.boot_mode == "legacy-bios" else "skipped", 50.0 + len(calls))
                for p in plats]

    opts = engine.BootOptions(accel=Accel("tcg", "forced"))
    [v] = boot_modes.run_many(["img"], opts, 2, [Platform("ec2")], ["uefi-preferred"], boot=boot)
    assert calls == [["legacy-bios", "uefi"]]
    assert {c.name: c.status for c in v.checks} == {"console": "pass", "boot-mode:legacy-bios": "pass",
                                                   "boot-mode:uefi": "fail"}
    assert v.status == "fail" and v.reason == "uefi boot: boot-mode:uefi: no ESP"
    assert v.platform["boot_mode"] == "uefi-preferred" and "uefi:verdict" in v.seconds
    with pytest.raises(ValueError, match="unknown boot mode 'bios'"):
        boot_modes.firmwares("bios")


def _checks(**status):
    names = {"console": "pass", "ssh": "pass", **{k.replace("_", "-").replace("boot-mode-", "boot-mode:"): v
                                                  for k, v in status.items()}}
    return [{"name": n, "status": s} for n, s in names.items()]


def test_a_verdict_verifies_only_what_its_checks_proved():
    full = AmiAttributes("uefi-preferred", "v2.0", True, "simple", "")
    proved = verified_attributes(_checks(boot_mode_legacy_bios="pass", boot_mode_uefi="pass",
                                         imds_tokens="pass", ena_driver="pass"), full)
    # the Intel VF driver cannot be shown under qemu: SriovNetSupport=simple is never verified
    assert proved == {"BootMode": "uefi-preferred", "ImdsSupport": "v2.0", "EnaSupport": True,
                      "TpmSupport": ""}
    half = verified_attributes(_checks(boot_mode_legacy_bios="pass", boot_mode_uefi="fail",
                                       imds_tokens="fail", ena_driver="fail"), full)
    assert half == {"TpmSupport": ""}
    f19 = AmiAttributes("legacy-bios", "", False, "", "")
    assert verified_attributes(_checks(boot_mode_legacy_bios="pass"), f19) == f19.full()
