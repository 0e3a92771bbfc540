"""The KVM probe: its judgement, its per-host cache (runner injected), and real qemu runs of the
probe kernel: to its end under TCG, and the bounded probe under KVM on this host."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rel_eng.boottest import accel, kvmprobe
from tests.qemu_procs import qemu_pids_under

QEMU = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed")


def _sysmod(tmp_path, *mods):
    d = tmp_path / "sys_module"
    for m in ("kvm", *mods):
        (d / m).mkdir(parents=True)
    return d


PVM_STDERR = ("qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni\n"
              "KVM internal error. Suberror: 1\nextra data[0]: 0x0000000000000001\n"
              "emulation failure\nRAX=ffffffff801001a0 RBX=ffffffff801001aa\nCode=ff ff ff\n")


def test_judge_names_how_far_the_probe_kernel_got():
    ok = kvmprobe.judge(kvmprobe.ProbeRun(kvmprobe.EXIT_OK, "12\n" + kvmprobe.PROBE_OK + "\n", ""), 15)
    assert ok.kvm and "long mode with paging" in ok.reason
    pvm = kvmprobe.judge(kvmprobe.ProbeRun(None, "12", PVM_STDERR), 15)
    assert not pvm.kvm
    assert pvm.reason == ("a probe kernel under KVM failed: it reached long mode at the high-half kernel "
                          "address but an exception through its 64-bit IDT did not come back; qemu "
                          "stopped on a KVM internal error (emulation failure)")
    silent = kvmprobe.judge(kvmprobe.ProbeRun(None, "", ""), 15)
    assert "never ran" in silent.reason and "no answer within 15 s" in silent.reason
    real_mode = kvmprobe.judge(kvmprobe.ProbeRun(1, "1", "qemu-system-x86_64: failed to initialize kvm\n"), 15)
    assert "never reached long mode" in real_mode.reason and "status 1 (qemu-system-x86_64: failed" in real_mode.reason
    # the right exit status without the line (or the reverse) is not a pass
    assert not kvmprobe.judge(kvmprobe.ProbeRun(kvmprobe.EXIT_OK, "12", ""), 15).kvm
    assert not kvmprobe.judge(kvmprobe.ProbeRun(0, kvmprobe.PROBE_OK, ""), 15).kvm


def test_probe_runs_once_per_host_key_and_caches_the_answer(tmp_path):
    calls = []

    def runner(argv, timeout):
        kernel = Path(argv[argv.index("-kernel") + 1])
        calls.append((argv, timeout, kernel.read_bytes() == kvmprobe.PROBE_IMAGE))
        return kvmprobe.ProbeRun(None, "12", PVM_STDERR)

    cache = tmp_path / "cache" / "kvm-probe.json"
    sysmod = _sysmod(tmp_path, "kvm_pvm")
    first = kvmprobe.probe("/usr/bin/qemu-system-x86_64", cache=cache, sys_module=sysmod, runner=runner,
                           timeout=3)
    again = kvmprobe.probe("/usr/bin/qemu-system-x86_64", cache=cache, sys_module=sysmod, runner=runner,
                           timeout=3)
    assert len(calls) == 1
    argv, timeout, kernel_ok = calls[0]
    assert kernel_ok and timeout == 3
    assert argv[argv.index("-accel") + 1] == "kvm" and "isa-debug-exit,iobase=0xf4,iosize=0x04" in argv
    assert (first.kvm, first.cached) == (False, False)
    assert (again.kvm, again.reason, again.cached) == (False, first.reason, True)
    stored = json.loads(cache.read_text())
    (key, entry), = stored.items()
    assert "kvm,kvm_pvm" in key and key.endswith(f"probe-{kvmprobe.PROBE_VERSION}")
    assert entry["kvm"] is False and entry["reason"] == first.reason
    # another set of loaded modules is another host state: probed again
    (sysmod / "kvm_pvm").rmdir()
    (sysmod / "kvm_other").mkdir()
    kvmprobe.probe("/usr/bin/qemu-system-x86_64", cache=cache, sys_module=sysmod, runner=runner)
    assert len(calls) == 2 and len(json.loads(cache.read_text())) == 2


def test_probe_that_cannot_start_qemu_is_tcg_and_not_cached(tmp_path):
    def runner(argv, timeout):
        raise FileNotFoundError(2, "No such file or directory", argv[0])

    cache = tmp_path / "kvm-probe.json"
    r = kvmprobe.probe("/nonexistent/qemu", cache=cache, sys_module=_sysmod(tmp_path), runner=runner)
    assert not r.kvm and "could not start /nonexistent/qemu" in r.reason
    assert not cache.exists()


def test_probe_image_is_built_from_its_source(tmp_path):
    tools = [shutil.which(t) for t in ("as", "ld", "objcopy")]
    if not all(tools):
        pytest.skip("binutils (as, ld, objcopy) not installed")
    src = Path(kvmprobe.__file__).with_name("kvmprobe.S")
    obj, elf, binary = tmp_path / "p.o", tmp_path / "p.elf", tmp_path / "p.bin"
    subprocess.run(["as", "--64", "-o", obj, src], check=True)
    subprocess.run(["ld", "-m", "elf_x86_64", "-Ttext=0x100000", "-N", "--build-id=none", "-o", elf, obj],
                   check=True, capture_output=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", "-j", ".data", elf, binary], check=True)
    assert binary.read_bytes() == kvmprobe.PROBE_IMAGE


@needs_qemu
def test_probe_kernel_runs_to_its_end_under_tcg(tmp_path):
    kernel = tmp_path / "kvmprobe.bin"
    kernel.write_bytes(kvmprobe.PROBE_IMAGE)
    argv = kvmprobe.argv(QEMU, kernel)
    argv[argv.index("-accel") + 1] = "tcg"
    run = kvmprobe.run_qemu(argv, 30)
    assert run.returncode == kvmprobe.EXIT_OK and run.serial.startswith("12\n" + kvmprobe.PROBE_OK)
    assert kvmprobe.judge(run, 30).kvm
    assert qemu_pids_under(tmp_path) == []


@needs_qemu
def test_real_probe_on_this_host(tmp_path, monkeypatch):
    """Under a hardware KVM module the probe says KVM; under anything else (kvm_pvm here, or no
    usable /dev/kvm) it says TCG with its reason. Bounded, and no qemu is left behind."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    hardware = any((Path("/sys/module") / m).is_dir() for m in accel.HARDWARE_KVM_MODULES)
    cache = tmp_path / "kvm-probe.json"
    r = kvmprobe.probe(QEMU, cache=cache)
    assert r.kvm is hardware, r.reason
    if not hardware:
        assert r.reason.startswith("a probe kernel under KVM failed: "), r.reason
    assert qemu_pids_under(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["kvm-probe.json"]
    if Path("/dev/kvm").exists() and not hardware:
        a = accel.choose("auto", env={}, probe=lambda: kvmprobe.probe(QEMU, cache=cache))
        assert a.name == "tcg" and a.reason.endswith("(cached probe result)"), a.reason
