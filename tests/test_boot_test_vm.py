"""Real boots under forced TCG: the Debian-based test appliance (i386) and its amd64 negative
variants side by side in one `rel-eng boot-test --json` run; plus SIGTERM and a crash in the check
code, each proving that no qemu process and no test file is left behind.

One boot serves several assertions: each negative variant must fail exactly its own check, so the
mac-binding and no-growpart boots also prove every other check passing on amd64, with its
evidence. The good amd64 image and the no-sshd and no-boot variants are booted by the compose
tests (tests/test_boot_gate_compose.py), which assert their verdicts; no image boots twice.

The fixtures are built once per recipe into ~/.cache/rel-eng/fixtures (a few minutes the first
time on a machine), then reused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rel_eng.boottest import checks as ck
from rel_eng.boottest import engine, fixture, image
from rel_eng.boottest.accel import Accel

RELENG = [sys.executable, "-m", "rel_eng"]
NEGATIVE = ("mac-binding", "no-growpart")


def qemu_pids_under(path: Path) -> list[int]:
    """qemu processes whose command line names a file under path."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and b"qemu-system" in cmd[0] and any(str(path).encode() in a for a in cmd):
            found.append(int(proc.name))
    return found


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


@pytest.fixture(scope="session")
def boot_run(appliances, tmp_path_factory):
    """The appliances booted by the CLI, two at a time, TCG forced, TMPDIR private to the run."""
    base = tmp_path_factory.mktemp("boot")
    tmp, logs, pk = base / "tmp", base / "logs", base / "packages"
    tmp.mkdir()
    cfg = base / "config.toml"
    cfg.write_text(f"[boot_test]\nparallel = 2\n{GENEROUS}")
    order = ["i386", "mac-binding", "no-growpart"]
    env = {**os.environ, "REL_ENG_ACCEL": "tcg", "TMPDIR": str(tmp)}
    # One kickstart for amd64 and i386 appliances alike: the appliance's %packages without its
    # arch's kernel package (linux-image-amd64 / linux-image-686), which the other arch lacks.
    ks = base / "appliance.ks"
    ks.write_text("".join(line for line in fixture.kickstart_path(appliances["good"]).read_text()
                          .splitlines(keepends=True) if line.strip() not in fixture.KERNELS.values()))
    proc = subprocess.run([*RELENG, "boot-test", "--json", "--logs", str(logs), "--packages-dir", str(pk),
                           "--kickstart", str(ks), "--config", str(cfg),
                           *(str(appliances[k].path) for k in order)],
                          capture_output=True, text=True, env=env, timeout=2400)
    assert proc.stdout.strip(), proc.stderr
    verdicts = {k: v for k, v in zip(order, json.loads(proc.stdout))}
    return (proc.returncode, proc.stderr), verdicts, tmp, logs, pk


def _status(v):
    return {c["name"]: c["status"] for c in v["checks"]}


def test_batch_exit_code_and_nothing_left_behind(boot_run):
    (rc, err), verdicts, tmp, logs, pk = boot_run
    assert rc == 1, err  # the negative fixtures fail
    assert qemu_pids_under(tmp) == []
    assert list(tmp.iterdir()) == []  # keys, seeds and overlays are gone
    assert {p.suffix for p in logs.iterdir()} == {".log"} and len(list(logs.iterdir())) == 3
    assert all(p.name.endswith("-packages.txt") for p in pk.iterdir())


def test_amd64_under_forced_tcg_passes_every_check_its_variant_leaves_alone(boot_run):
    """mac-binding breaks only no-hardcoded-mac, no-growpart only root-grown: between them every
    check passes on amd64 under forced TCG, with the evidence a user reads."""
    _, verdicts, _, logs, pk = boot_run
    mac, grow = verdicts["mac-binding"], verdicts["no-growpart"]
    for v in (mac, grow):
        assert (v["accel"], v["accel_reason"]) == ("tcg", "forced by REL_ENG_ACCEL=tcg")
        assert v["arch"] == "x86_64"
        by_name = {c["name"]: c for c in v["checks"]}
        assert set(by_name) == set(ck.CHECKS)
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


def test_good_i386_passes(boot_run):
    v = boot_run[1]["i386"]
    assert v["arch"] == "i386"
    assert v["status"] == "pass", v["reason"]
    assert _status(v) == {name: "pass" for name in ck.CHECKS}


def test_mac_binding_fails_exactly_its_check(boot_run):
    v = boot_run[1]["mac-binding"]
    s = _status(v)
    assert s.pop("no-hardcoded-mac") == "fail"
    assert set(s.values()) == {"pass"}, v
    assert "70-persistent-net.rules" in v["reason"] and "52:54:00:de:ad:01" in v["reason"]


def test_no_growpart_fails_exactly_root_grown(boot_run):
    v = boot_run[1]["no-growpart"]
    s = _status(v)
    assert s.pop("root-grown") == "fail"
    assert set(s.values()) == {"pass"}, v
    assert "not grown" in v["reason"]


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
    assert proc.returncode == 130 and "interrupted" in err
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
    v = engine.boot_one(img, opts)
    assert v.status == "fail" and v.reason == "boot test error: RuntimeError: check code broke"
    pid, work = seen[0]
    assert not Path(f"/proc/{pid}").exists() or b"qemu" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert not work.exists() and qemu_pids_under(tmp_path) == []
