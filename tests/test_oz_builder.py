"""The Oz builder: pure argv/oz.cfg builders, then real composes against a fake oz-install and
virsh on PATH (oz_fakes.py) — every outcome Oz can give, timeouts, cancel and SIGTERM."""

from __future__ import annotations

import configparser
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oz_fakes  # noqa: E402
from signatures import assert_same_signature  # noqa: E402

from rel_eng import compose, runner  # noqa: E402
from rel_eng.builders import BUILDERS  # noqa: E402
from rel_eng.builders.oz import (OzBuilder, OzFiles, domain_name, oz_install_argv,  # noqa: E402
                                 render_oz_cfg, reported_error)
from rel_eng.config import load_config  # noqa: E402
from tests.oracles import block_sha256  # noqa: E402
from rel_eng.config.oz import OzConfig  # noqa: E402

DATE = dt.date(2013, 5, 28)
SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    f = oz_fakes.install(tmp_path)
    for key, value in f.env().items():
        monkeypatch.setenv(key, value)
    return f


def oz_config(tmp_path, images: int = 1, **oz) -> "Config":  # noqa: F821
    base = load_config()
    settings = OzConfig(data_dir=str(tmp_path / "oz-cache"), **oz)
    # The fake oz-install's disks do not boot: no boot gate for them.
    return dataclasses.replace(base, builder="oz", oz=settings,
                               boot_test=dataclasses.replace(base.boot_test, enabled=False),
                               image_types=base.image_types[:images],
                               arches=("x86_64",) if images == 1 else base.arches)


def new_compose(tmp_path, config) -> compose.Compose:
    out = tmp_path / "out"
    plan = compose.allocate(config, out, "19", "Beta", DATE)
    return compose.create(config, plan, out, compose.prepare_inputs(config, plan))


# --- pure builders -------------------------------------------------------------------------

def test_argv_asks_for_failure_exit_codes_and_explicit_files(tmp_path):
    c = new_compose(tmp_path, oz_config(tmp_path, install_timeout_s=2400))
    req = compose.build_request(c, "generic-x86_64")
    files = OzFiles.of(req, c.config.oz)
    argv = oz_install_argv(c.config.oz, files, req.tdl, req.kickstart)
    work = req.workdir.resolve()
    nvra = req.job.nvra
    assert argv == [
        "oz-install", "-d3", "-p", "-t", "2400",
        "-c", str(work / "oz.cfg"),
        "-a", str(work / f"{nvra}.ks"),
        "-s", str(work / f".{nvra}.oz-disk"),
        "-x", str(work / "libvirt-raw-x86_64.xml"),
        str(work / f"{nvra}.tdl"),
    ]
    assert all(Path(argv[i + 1]).is_absolute() for i, a in enumerate(argv) if a in ("-a", "-s", "-c", "-x"))
    assert domain_name(req.tdl) == nvra  # the TDL's <name>, which Oz names the domain after


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="Oz is installed for the system python")
def test_oz_cfg_reads_back_through_ozs_own_parser(tmp_path):
    oz = OzConfig(libvirt_uri="qemu+ssh://build01/system", memory_mib=4096, cpus=4,
                  install_timeout_s=5400, inactivity_timeout_s=600, boot_timeout_s=200,
                  shutdown_timeout_s=60, data_dir="/srv/oz 50%/cache", bridge_name="br0")
    cfg = tmp_path / "oz.cfg"
    cfg.write_text(render_oz_cfg(oz, tmp_path / "out", tmp_path / "shots"))
    probe = """
import json, sys, oz.ozutil as u
c = u.parse_config(sys.argv[1])
keys = [("paths", "output_dir"), ("paths", "data_dir"), ("paths", "screenshot_dir"),
        ("libvirt", "uri"), ("libvirt", "type"), ("libvirt", "bridge_name"), ("libvirt", "cpus"),
        ("libvirt", "memory"), ("libvirt", "image_type"), ("timeouts", "install"),
        ("timeouts", "inactivity"), ("timeouts", "boot"), ("timeouts", "shutdown")]
out = {f"{s}.{k}": u.config_get_key(c, s, k, None) for s, k in keys}
out["icicle.safe_generation"] = u.config_get_boolean_key(c, "icicle", "safe_generation", False)
out["cache.jeos"] = u.config_get_boolean_key(c, "cache", "jeos", True)
out["abs"] = u.config_get_path(c, "paths", "data_dir", "/x")
print(json.dumps(out))
"""
    proc = subprocess.run([str(SYSTEM_PYTHON), "-W", "ignore", "-c", probe, str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got == {
        "paths.output_dir": str(tmp_path / "out"), "paths.data_dir": "/srv/oz 50%/cache",
        "paths.screenshot_dir": str(tmp_path / "shots"),
        "libvirt.uri": "qemu+ssh://build01/system", "libvirt.type": "kvm",
        "libvirt.bridge_name": "br0", "libvirt.cpus": "4", "libvirt.memory": "4096",
        "libvirt.image_type": "raw", "timeouts.install": "5400", "timeouts.inactivity": "600",
        "timeouts.boot": "200", "timeouts.shutdown": "60",
        "icicle.safe_generation": True, "cache.jeos": False, "abs": "/srv/oz 50%/cache",
    }


def test_error_verdict_is_told_from_debug_log_lines():
    assert reported_error(b"Fetching\n\nERROR: Timed out waiting for install\n") == \
        "Timed out waiting for install"
    # -d4 formats log records as LEVEL:logger:message; that is a log line, not the verdict
    assert reported_error(b"ERROR:oz.Guest.FedoraGuest:disk activity low\n") is None
    assert reported_error(b"all fine\n") is None


# --- against the fake oz-install -----------------------------------------------------------

def test_full_compose_with_oz_builds_processes_and_keeps_the_log(tmp_path, fake):
    config = oz_config(tmp_path, images=2)
    c = compose.run_compose(config, tmp_path / "out", "19", "Beta", DATE)
    assert c.read_status() == compose.FINISHED
    calls = fake.oz_calls()
    assert len(calls) == 4 and all(call[:3] == ["-d3", "-p", "-t"] for call in calls)
    m = c.manifest
    for job in c.plan.images:
        raw = m.artifacts(job_key=job.key, kind="raw-disk")[0]
        assert (c.topdir / raw.path).read_bytes().startswith(b"FAKE-OZ-DISK " + job.nvra.encode())
        assert raw.bootable
        assert raw.sha256 == block_sha256(c.topdir / raw.path)  # handed over with its digest
        log = c.topdir / m.artifacts(job_key=job.key, kind="log")[0].path
        assert log == c.logdir / job.key / f"oz-{job.arch}.log"
        text = log.read_text()
        assert "$ oz-install -d3 -p" in text  # the command,
        assert f"Fetching install media for {job.nvra}" in text  # its stdout,
        assert f"DEBUG oz.Guest.FedoraGuest: Starting guest {job.nvra}" in text  # and its stderr
        assert m.builds()[job.key]["external_id"] == job.nvra
        assert not list(c.workdir(job.key).glob(".*oz-disk"))
        assert sorted(a.kind for a in m.artifacts(job_key=job.key, intent="deliverable")) == \
            ["qcow2", "raw.tar.xz"]
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(c.workdir(job.key) / "oz.cfg")
        assert cfg["icicle"]["safe_generation"] == "yes"
        assert cfg["paths"]["screenshot_dir"] == str((c.logdir / job.key).resolve())
    assert fake.domains() == []
    assert fake.virsh_calls() == []  # nothing to clean up after a good install


FAILURES = {
    "none": "oz-install exited 0 but wrote no image at ",
    "empty": "oz-install exited 0 but the image ",
    "error0": "oz-install reported 'ERROR: Timed out waiting for install to finish' and exited 0",
    "fail": "oz-install exited 1: oz.OzException.OzException: No disk activity in 300 seconds, failing",
}


@pytest.mark.parametrize("mode", sorted(FAILURES))
def test_each_failure_fails_the_image_and_cleans_up(tmp_path, fake, monkeypatch, mode):
    monkeypatch.setenv("FAKE_OZ_MODE", mode)
    c = new_compose(tmp_path, oz_config(tmp_path))
    outcome = compose.build(c)["generic-x86_64"]
    job = c.job("generic-x86_64")
    log = c.logdir / job.key / "oz-x86_64.log"
    assert not outcome.ok
    assert outcome.reason.startswith(FAILURES[mode]), outcome.reason
    assert outcome.reason.endswith(f"(log: {log.resolve()})")
    assert log.is_file() and "$ oz-install" in log.read_text()
    assert not list(c.workdir(job.key).glob(".*oz-disk")) and not list(c.workdir(job.key).glob("*.raw"))
    assert fake.domains() == []
    uri = ["-c", "qemu:///system"]
    listed = [uri + ["list", "--name"], uri + ["list", "--all", "--name"]]
    if mode in ("error0", "fail"):  # Oz left its domain behind: destroyed and undefined
        assert fake.virsh_calls() == [listed[0], uri + ["destroy", job.nvra],
                                      listed[1], uri + ["undefine", job.nvra]]
    else:  # no domain left: only looked for (absence is fine)
        assert fake.virsh_calls() == listed
    assert c.manifest.read()["steps"]["build:generic-x86_64"]["state"] == "failed"
    with pytest.raises(compose.ComposeDoomed, match="required image"):
        compose.finalize(c, tmp_path / "mirror")


def test_a_failed_image_builds_on_retry_and_its_log_keeps_both_attempts(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("FAKE_OZ_MODE", "error0")
    c = new_compose(tmp_path, oz_config(tmp_path))
    assert not compose.build(c)["generic-x86_64"].ok
    monkeypatch.setenv("FAKE_OZ_MODE", "image")
    assert compose.build(c)["generic-x86_64"].ok  # the earlier ERROR: line is not this run's
    log = (c.logdir / "generic-x86_64" / "oz-x86_64.log").read_text()
    assert log.count("$ oz-install -d3") == 2 and "ERROR: Timed out" in log


def test_a_hung_oz_install_is_killed_at_its_deadline(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("FAKE_OZ_MODE", "hang")
    c = new_compose(tmp_path, oz_config(tmp_path, install_timeout_s=1, kill_grace_s=1))
    waits = []
    real_wait = runner.wait

    def spy(proc, timeout=None):
        waits.append((Path(proc.args[0]).name, timeout))
        return real_wait(proc, timeout=timeout)
    assert_same_signature(spy, real_wait)
    monkeypatch.setattr(runner, "wait", spy)
    outcome = compose.build(c)["generic-x86_64"]
    assert not outcome.ok
    assert outcome.reason.startswith("oz-install hung: killed after 2s (install timeout 1s + 1s grace)")
    assert waits == [("oz-install", 2)]  # the install's deadline is its timeout plus the grace
    assert not _alive(int((fake.state / "oz.pid").read_text()))
    assert fake.domains() == []
    assert not list(c.workdir("generic-x86_64").glob(".*oz-disk"))


def test_cancel_kills_the_install_and_removes_domain_and_disk(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("FAKE_OZ_MODE", "hang")
    c = new_compose(tmp_path, oz_config(tmp_path))
    builder = OzBuilder(c.config)
    req = compose.build_request(c, "generic-x86_64")
    handles = builder.submit([req])
    result = {}
    waiter = threading.Thread(target=lambda: result.update(out=builder.wait(handles)))
    waiter.start()
    try:
        pid = _wait_for_file(fake.state / "oz.pid")
        disk = OzFiles.of(req, c.config.oz).disk
        assert disk.is_file() and fake.domains() == [req.job.nvra]
        builder.cancel(handles)
    finally:
        waiter.join(timeout=20)
    assert not waiter.is_alive()
    [outcome] = result["out"]
    assert not outcome.ok and outcome.reason.startswith("cancelled")
    assert not _alive(pid)
    assert fake.domains() == [] and not disk.exists()
    assert ["-c", "qemu:///system", "undefine", req.job.nvra] in fake.virsh_calls()


def test_a_wait_deadline_stops_what_still_runs(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("FAKE_OZ_MODE", "hang")
    c = new_compose(tmp_path, oz_config(tmp_path))
    builder = OzBuilder(c.config)
    req = compose.build_request(c, "generic-x86_64")
    [outcome] = builder.wait(builder.submit([req]), timeout=1)
    assert (outcome.ok, outcome.reason) == (False, "not finished within 1s: stopped")
    assert not _alive(int((fake.state / "oz.pid").read_text()))
    assert fake.domains() == [] and not OzFiles.of(req, c.config.oz).disk.exists()


def test_sigterm_of_rel_eng_compose_stops_oz_and_cleans_up(tmp_path, fake):
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(f'[compose]\nbuilder = "oz"\narches = ["x86_64"]\n'
                   f'[oz]\ndata_dir = "{tmp_path / "oz-cache"}"\ninstall_timeout_s = 600\n'
                   f'[store]\nenabled = false\n')
    env = {**os.environ, **fake.env(mode="hang", only="generic")}
    proc = subprocess.Popen([sys.executable, "-m", "rel_eng", "compose", "--config", str(cfg),
                             "--release", "19", "--milestone", "Beta", "--date", "2013-05-28",
                             "--output", str(tmp_path / "out")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = _wait_for_file(fake.state / "oz.pid", proc=proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err  # 128 + SIGTERM
    assert "compose interrupted by signal SIGTERM" in err
    topdir = next((tmp_path / "out").glob("Fedora-Cloud-19-*"))
    assert (topdir / "STATUS").read_text().strip() == compose.TERMINATED
    assert not _alive(pid)
    assert fake.domains() == []  # destroyed and undefined
    assert not list(topdir.glob("work/*/.*oz-disk"))


def test_oz_is_registered_and_needs_its_tools():
    assert BUILDERS["oz"] is OzBuilder
    assert compose.required_tools(load_config(), "oz")[:2] == ["oz-install", "virsh"]


def _wait_for_file(path: Path, timeout: float = 30, proc=None) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return int(path.read_text())
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (killed, not yet reaped by a parent that exited) counts as dead
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][0] != "Z"
