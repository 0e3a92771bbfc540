"""Real boots under forced TCG: the Debian-based test appliance (i386) and its amd64 variants in
three `rel-eng boot-test --json` runs side by side, one per platform; plus SIGTERM and a crash in
the check code, each proving that no qemu process and no test file is left behind.

One boot serves several assertions: each negative variant must fail exactly its own check, so the
mac-binding and no-growpart boots also prove every other check passing on amd64, with its
evidence. The EC2 variant ([ Ec2, None ]) passes every check under `--platform ec2` (IMDSv2
tokens, NVMe root) and, booted as nocloud, is judged from the console as soon as cloud-init asks
for a metadata service nocloud does not present; the OpenStack variant ([ ConfigDrive,
OpenStack, None ]) booted as nocloud is judged as soon as the login prompt shows without
cloud-init (ds-identify disabled it). Both verdicts name the image's datasource_list. The hostile variant (built for
OpenStack, with a unit that tries the host's loopback services) passes under the OpenStack
metadata service but fails system-health, its unit having reached nothing.

Every boot's user data also tries a listener this test runs on the host's 127.0.0.1: the
listener must see no connection, and each guest must record its tries as closed.

The good amd64 image (as openstack), the openstack variant through the config drive, and the
no-sshd and no-boot variants are booted by the compose tests (tests/test_boot_gate_compose.py),
which assert their verdicts; no image boots twice on one platform.

The fixtures are built once per recipe into ~/.cache/rel-eng/fixtures (a few minutes the first
time on a machine), then reused.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rel_eng.boottest import checks as ck
from rel_eng.boottest import engine, fixture, image
from rel_eng.boottest.accel import Accel
from rel_eng.boottest.platform import Platform
from tests.qemu_procs import qemu_pids_under

RELENG = [sys.executable, "-m", "rel_eng"]
NEGATIVE = ("mac-binding", "no-growpart", "ec2", "openstack", "hostile", "ec2+no-esp")


@pytest.fixture(scope="session")
def appliances(appliance_images):
    good = appliance_images["amd64"]
    images = {"good": good, "i386": appliance_images["i386"]}
    for variant in NEGATIVE:
        images[variant] = fixture.derive(good, variant)
    return images


# Bounds for a shared CI host: under TCG with other work on the same cores a boot can take many
# times its idle 40 s. They only cap a hang; a guest that is ready sooner is judged sooner. sshd
# answers within seconds of cloud-init printing the host keys, so ssh needs no longer bound.
GENEROUS = "console_timeout_s = 1200\nboot_timeout_s = 3000\nssh_timeout_s = 30\nguest_script_timeout_s = 1200\n"


class Listener(threading.Thread):
    """A TCP service on the host's 127.0.0.1, on a port of its own: a sealed guest never gets
    through to it. Counts every connection it accepts."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.stopping = threading.Event()
        self.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(addr)
            conn.close()

    def stop(self):
        self.stopping.set()
        self.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="session")
def seal_listener():
    listener = Listener()
    yield listener
    listener.stop()


# (run name, --platform arguments, images): the runs go side by side. The EC2 image boots as an
# AMI with BootMode=uefi and EnaSupport (the nocloud and openstack boots go through SeaBIOS), and
# also runs the opt-in reboot check (its run has one image: it ends before the nocloud run's
# five, so the reboot adds no time to the batch); the image without an ESP fails boot-mode:uefi
# from the offline read, with no boot.
EC2_AMI = ["--platform", "ec2", "--boot-mode", "uefi", "--ena"]
RUNS = [("nocloud", [], ["i386", "mac-binding", "no-growpart", "ec2", "openstack"]),
        ("ec2", [*EC2_AMI, "--checks", ",".join([*ck.DEFAULT_CHECKS, "reboot"])], ["ec2"]),
        ("ec2-no-esp", EC2_AMI, ["ec2+no-esp"]),
        ("openstack", ["--platform", "openstack", "--openstack", "metadata-service"], ["hostile"])]


@pytest.fixture(scope="session")
def boot_run(appliances, tmp_path_factory, seal_listener):
    """The appliances booted by the CLI, TCG forced, TMPDIR private to the run: one run per
    platform, side by side. Verdicts are keyed "<run>/<image>"."""
    base = tmp_path_factory.mktemp("boot")
    tmp, logs, pk = base / "tmp", base / "logs", base / "packages"
    tmp.mkdir()
    cfg = base / "config.toml"
    cfg.write_text(f"[boot_test]\nparallel = 2\nseal_probe_ports = [22, 6379, {seal_listener.port}]\n"
                   f"{GENEROUS}")
    env = {**os.environ, "REL_ENG_ACCEL": "tcg", "TMPDIR": str(tmp)}
    # One kickstart for amd64 and i386 appliances alike: the appliance's %packages without its
    # arch's kernel package (linux-image-amd64 / linux-image-686), which the other arch lacks.
    ks = base / "appliance.ks"
    ks.write_text("".join(line for line in fixture.kickstart_path(appliances["good"]).read_text()
                          .splitlines(keepends=True) if line.strip() not in fixture.KERNELS.values()))
    procs = {}
    for name, plat, order in RUNS:
        procs[name] = subprocess.Popen(
            [*RELENG, "boot-test", "--json", "--logs", str(logs / name), "--packages-dir", str(pk / name),
             "--kickstart", str(ks), "--config", str(cfg), *plat, *(str(appliances[k].path) for k in order)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    verdicts, codes = {}, {}
    try:
        for name, _, order in RUNS:
            out, err = procs[name].communicate(timeout=3000)
            codes[name] = (procs[name].returncode, err)
            assert out.strip(), err
            verdicts.update({f"{name}/{k}": v for k, v in zip(order, json.loads(out))})
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    return codes, verdicts, tmp, logs, pk


def _status(v):
    return {c["name"]: c["status"] for c in v["checks"]}


def test_batch_exit_code_and_nothing_left_behind(boot_run):
    codes, verdicts, tmp, logs, pk = boot_run
    assert codes["nocloud"][0] == 1 and codes["openstack"][0] == 1, codes  # negative fixtures fail
    assert codes["ec2"][0] == 0 and codes["ec2-no-esp"][0] == 1, codes
    assert qemu_pids_under(tmp) == []
    assert list(tmp.iterdir()) == []  # keys, seeds, drives, sockets and overlays are gone
    assert {p.suffix for p in logs.rglob("*") if p.is_file()} == {".log"}
    assert len([p for p in logs.rglob("*") if p.is_file()]) == 7
    assert all(p.name.endswith("-packages.txt") for p in pk.rglob("*") if p.is_file())


def test_no_guest_reached_the_hosts_listener(boot_run, seal_listener):
    """Every booted guest tried the test's own listener (through 10.0.2.2, 169.254.0.2 and its
    gateway) and recorded each try as closed; the listener saw nothing."""
    _, verdicts, *_ = boot_run
    port = seal_listener.port
    tried = 0
    for key, v in verdicts.items():  # non-empty: `tried == 5` below counts the guests
        if key in ("nocloud/ec2", "nocloud/openstack", "ec2-no-esp/ec2+no-esp"):
            continue  # no datasource found (judged from the console), or not booted at all
        sealed = {c["name"]: c for c in v["checks"]}["sealed"]
        assert sealed["status"] == "pass", (key, sealed)
        assert "reached 0" in sealed["evidence"], (key, sealed)
        tried += 1
    assert tried == 5
    assert seal_listener.accepted == []
    assert port not in (22, 6379)


def test_amd64_under_forced_tcg_passes_every_check_its_variant_leaves_alone(boot_run):
    """mac-binding breaks only no-hardcoded-mac, no-growpart only root-grown: between them every
    check passes on amd64 under forced TCG, with the evidence a user reads."""
    _, verdicts, _, logs, pk = boot_run
    mac, grow = verdicts["nocloud/mac-binding"], verdicts["nocloud/no-growpart"]
    for v in (mac, grow):
        assert (v["accel"], v["accel_reason"]) == ("tcg", "forced by REL_ENG_ACCEL=tcg")
        assert v["arch"] == "x86_64" and v["platform"] == {"name": "nocloud", "label": "nocloud"}
        by_name = {c["name"]: c for c in v["checks"]}
        assert set(by_name) == set(ck.DEFAULT_CHECKS)
        assert by_name["datasource"]["status"] == by_name["metadata"]["status"] == "pass"
        assert by_name["system-health"]["status"] == "pass"
        # what nocloud cannot show is skipped, with the reason, and does not fail the image
        assert by_name["imds-tokens"]["status"] == by_name["nvme-root"]["status"] == "skipped"
        assert "host key pinned" in by_name["ssh"]["evidence"] and "offers: publickey" in by_name["ssh"]["evidence"]
        assert by_name["ssh"]["status"] == by_name["anaconda-install"]["status"] == "pass"
        assert "Linux version" in Path(v["console_log"]).read_text(errors="replace")
        packages = Path(v["packages_file"]).read_text()
        assert "cloud-init " in packages and "openssh-server " in packages
        assert v["guest_uptime"] and v["peak_rss_mib"] > 0
        assert v["seconds"]["verdict"] >= v["seconds"]["guest_script"] >= v["seconds"]["host_keys"]
        assert {"part:key", "part:seed", "part:overlay", "part:teardown", "guest:cloud_init"} <= set(v["seconds"])
    assert _status(mac)["root-grown"] == "pass" and _status(grow)["no-hardcoded-mac"] == "pass"
    assert "came up with the chosen MAC" in {c["name"]: c for c in grow["checks"]}["no-hardcoded-mac"]["evidence"]


NOT_NOCLOUD = {"imds-tokens", "nvme-root", "boot-mode:legacy-bios", "boot-mode:uefi", "ena-driver"}


def test_good_i386_passes(boot_run):
    v = boot_run[1]["nocloud/i386"]
    assert v["arch"] == "i386"
    assert v["status"] == "pass", v["reason"]
    assert _status(v) == {name: "skipped" if name in NOT_NOCLOUD else "pass"
                          for name in ck.DEFAULT_CHECKS}


def test_mac_binding_fails_exactly_its_check(boot_run):
    v = boot_run[1]["nocloud/mac-binding"]
    s = _status(v)
    assert s.pop("no-hardcoded-mac") == "fail"
    assert set(s.values()) == {"pass", "skipped"}, v
    assert "70-persistent-net.rules" in v["reason"] and "52:54:00:de:ad:01" in v["reason"]


def test_no_growpart_fails_exactly_root_grown(boot_run):
    v = boot_run[1]["nocloud/no-growpart"]
    s = _status(v)
    assert s.pop("root-grown") == "fail"
    assert set(s.values()) == {"pass", "skipped"}, v
    assert "not grown" in v["reason"]


def test_ec2_image_passes_as_ec2_with_tokens_and_an_nvme_root(boot_run):
    """Booted as an AMI with BootMode=uefi (OVMF), IMDSv2 and EnaSupport: every check passes,
    boot-mode:legacy-bios is skipped (another boot's firmware)."""
    v = boot_run[1]["ec2/ec2"]
    assert v["status"] == "pass", v["reason"]
    assert v["platform"] == {"name": "ec2", "label": "ec2 (IMDSv2, UEFI, ENA)", "imds": "v2",
                             "boot_mode": "uefi", "ena": True}
    # the opt-in reboot too
    assert _status(v) == {name: "skipped" if name == "boot-mode:legacy-bios" else "pass"
                          for name in ck.CHECKS}
    by_name = {c["name"]: c for c in v["checks"]}
    assert "OVMF (UEFI)" in by_name["boot-mode:uefi"]["evidence"]
    assert "/sys/firmware/efi present" in by_name["boot-mode:uefi"]["evidence"]
    assert "holds /EFI/BOOT/BOOTX64.EFI" in by_name["boot-mode:uefi"]["evidence"]
    assert "amazon/ena/ena.ko; in the guest: modinfo ena -> /lib/modules/" in by_name["ena-driver"]["evidence"]
    # back from the reboot as the same instance, through the keys pinned at first boot
    assert "ssh answered again with the pinned host keys" in by_name["reboot"]["evidence"]
    assert "instance-id i-" in by_name["reboot"]["evidence"]
    assert "cloud-init ran from Ec2" in by_name["datasource"]["evidence"]
    assert "/dev/nvme0n1" in by_name["nvme-root"]["evidence"]
    assert "hostname ip-169-254-0-15" in by_name["metadata"]["evidence"]
    # the request log: each boot (the first, and the one after the reboot) starts with a token
    # PUT; every other request carried a valid token
    log = v["metadata_requests"]
    puts = [i for i, r in enumerate(log) if r.startswith("PUT /latest/api/token")]
    assert puts[0] == 0 and len(puts) >= 2, log
    assert {log[i] for i in puts} == {"PUT /latest/api/token token=none -> 200"}, log
    assert all(r.endswith("token=valid -> 200") for i, r in enumerate(log) if i not in puts), log
    for path in ("/meta-data/instance-id", "/meta-data/public-keys/0/openssh-key", "/user-data",
                 "/dynamic/instance-identity/document", "/meta-data/network/interfaces/macs/"):
        assert any(path in r for r in log), path
    assert v["metadata_cpu_s"] > 0


def test_an_image_without_an_esp_fails_boot_mode_uefi_unbooted(boot_run):
    """No ESP: boot-mode:uefi fails from the offline read of the partition table, before any
    boot (no console log, nothing else run)."""
    v = boot_run[1]["ec2-no-esp/ec2+no-esp"]
    s = _status(v)
    assert s.pop("boot-mode:uefi") == "fail"
    assert set(s.values()) == {"not-run"}
    assert "no EFI system partition in the partition table" in v["reason"]
    assert v["console_log"] is None and "kernel" not in v["seconds"]


def test_ec2_image_under_nocloud_is_judged_from_the_console(boot_run):
    """[ Ec2, None ] without EC2's DMI: ds-identify takes a single datasource as given, and
    cloud-init's Ec2 datasource asks 169.254.169.254, which nocloud does not serve (it would
    retry for minutes). Its first failed call on the console settles the verdict, naming the
    image's datasource list read offline."""
    v = boot_run[1]["nocloud/ec2"]
    assert v["status"] == "fail" and "settled" in v["seconds"] and "host_keys" not in v["seconds"]
    s = _status(v)
    assert s.pop("console") == "pass" and s.pop("datasource") == "fail"
    assert set(s.values()) <= {"not-run"}
    assert "cloud-init looks for a metadata service (http://169.254.169.254/" in v["reason"]
    assert "[ Ec2, None ]" in v["reason"] and "90-rel-eng-test-appliance.cfg" in v["reason"]


def test_openstack_image_under_nocloud_is_judged_at_the_login_prompt(boot_run):
    """[ ConfigDrive, OpenStack, None ] without a drive or Nova's DMI: ds-identify finds
    neither and disables cloud-init; the console reaches a login prompt with no cloud-init
    line, and that settles the verdict at once (no wait for host keys until boot_timeout_s)."""
    v = boot_run[1]["nocloud/openstack"]
    assert v["status"] == "fail" and "settled" in v["seconds"] and "host_keys" not in v["seconds"]
    s = _status(v)
    assert s.pop("console") == "fail" and s.pop("datasource") == "fail"
    assert set(s.values()) <= {"not-run"}
    assert "never ran under nocloud" in v["reason"]
    assert "[ ConfigDrive, OpenStack, None ]" in v["reason"]


def test_hostile_image_passes_the_openstack_metadata_service_but_not_system_health(boot_run):
    v = boot_run[1]["openstack/hostile"]
    assert v["platform"]["label"] == "openstack (metadata service)"
    s = _status(v)
    assert s.pop("system-health") == "fail", v
    assert s.pop("imds-tokens") == s.pop("nvme-root") == "skipped"
    assert {s.pop(n) for n in ("boot-mode:legacy-bios", "boot-mode:uefi", "ena-driver")} == {"skipped"}
    assert set(s.values()) == {"pass"}, v
    assert "failed units: rel-eng-hostile-probe.service" in v["reason"]
    by_name = {c["name"]: c for c in v["checks"]}
    assert "cloud-init ran from OpenStack" in by_name["datasource"]["evidence"]
    log = v["metadata_requests"]
    assert any("GET /openstack/" in r and "meta_data.json" in r and r.endswith("-> 200") for r in log)
    assert all("169.254" not in r for r in log)  # paths only, as the guest asked


def test_sigterm_kills_the_vm_and_removes_its_files(appliances, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "REL_ENG_ACCEL": "tcg", "TMPDIR": str(tmp)}
    proc = subprocess.Popen([*RELENG, "boot-test", str(appliances["good"].path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # bounded: until qemu is up
            if qemu_pids_under(tmp):
                break
            time.sleep(0.1)
        pids = qemu_pids_under(tmp)
        assert pids, "qemu never started"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err  # 128 + SIGTERM
    assert "interrupted" in err
    assert qemu_pids_under(tmp) == [] and not any(Path(f"/proc/{p}").exists() for p in pids)
    assert list(tmp.iterdir()) == []


def test_crash_in_the_check_code_is_a_verdict_and_kills_the_vm(appliances, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    seen = []

    def crash(img, opts, work, vm, reader, v, t0):
        seen.append((vm.pid, work))
        assert vm.running()
        raise RuntimeError("check code broke")

    monkeypatch.setattr(engine, "_observe", crash)
    img = image.inspect(appliances["good"].path)
    opts = engine.BootOptions(accel=Accel("tcg", "test"))
    v = engine.boot_one(img, opts, Platform("ec2"))  # a metadata server too: stopped with the VM
    assert v.status == "fail" and v.reason == "boot test error: RuntimeError: check code broke"
    pid, work = seen[0]
    assert not Path(f"/proc/{pid}").exists() or b"qemu" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert not work.exists() and qemu_pids_under(tmp_path) == []
    import threading
    assert not [t for t in threading.enumerate() if t.name == "metadata-server"]
