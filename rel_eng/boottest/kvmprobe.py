"""Does KVM really run a kernel here? A bounded probe boot, its answer cached per host.

`/dev/kvm` can be a software nested KVM (kvm_pvm) under which GRUB and even a kernel's
decompressor run, yet a normal kernel hangs. A real-mode boot sector proves nothing, so the probe
is a 506-byte multiboot kernel (source: kvmprobe.S beside this file) that does what a Linux
kernel does first: it enters long mode with paging, drops the identity map and runs at the
address where Linux maps itself (0xffffffff80000000 + phys), loads a 64-bit IDT there and takes
an exception (int3) through it. It prints "1" (32-bit), "2" (long mode, high half), then
PROBE_OK on COM1, and leaves qemu through isa-debug-exit with status EXIT_OK. Under TCG it
finishes in about 0.1 s; under kvm_pvm the int3 ends in "KVM internal error ... emulation
failure" and qemu stops the guest, so the probe ends on that line, or at its timeout, and qemu
is killed.

The result is cached in ~/.cache/rel-eng/kvm-probe.json keyed by the kernel release, the loaded
kvm modules, the qemu binary and the probe's version, so a host probes once, not per image.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import selectors
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rel_eng import runner as processes
from rel_eng.atomic import atomic_write

PROBE_VERSION = 1
TIMEOUT_S = 15.0  # a hardware KVM answers in well under 1 s; kvm_pvm takes ~10 s to fail
EXIT_OK = 67  # isa-debug-exit: (0x21 << 1) | 1
PROBE_OK = "REL-ENG-KVM-PROBE: long mode, paging, high-half kernel map, 64-bit IDT: ok"
STAGES = {"": "the probe kernel never ran (no output on COM1)",
          "1": "it ran in 32-bit protected mode but never reached long mode with paging",
          "12": "it reached long mode at the high-half kernel address but an exception through its "
                "64-bit IDT did not come back"}
PROBE_IMAGE = base64.b64decode(
    "ArCtGwAAAQD+T1HkAAAQAAAAEAD6ARAAAGAQACAAEAD6vABgEACwMWa6+APuuAAgEACDyAOjABAQAKP4HxAAuAAw"
    "EACDyAOjACAQAKPwLxAAxwUAMBAAgwAAALgAEBAADyLYDyDgg8ggDyLguYAAAMAPMg0AAQAADzAPIMANAQAAgA8i"
    "wA8BFYgBEADqkwAQAAgAZrgQAI7YjsCO0Ei4qQAQgP//////4Ei8AGAQgP////+wMma6+APuSLiQARCA/////w8B"
    "EEjHBCUAEBCAAAAAAA8g2A8i2Ei4XwEQgP////9IvzBAEID/////ZokHZsdHAggAZsdHBACOSMHoEGaJRwZIwegQ"
    "iUcISLigARCA/////0i7AEAQgP////9IiVgCDwEYSLuqARCA/////8yDOwF1H0i+rgEQgP////+5TAAAAGa6+APz"
    "bma69AC4IQAAAO9muvgDsEbu9Ov9/wNIzwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAmiAAAAAAAACSAAAXAHAB"
    "EAAAABcAcAEQgP////8AAAAAAAD/DwAAAAAAAAAAAAAAAApSRUwtRU5HLUtWTS1QUk9CRTogbG9uZyBtb2RlLCBw"
    "YWdpbmcsIGhpZ2gtaGFsZiBrZXJuZWwgbWFwLCA2NC1iaXQgSURUOiBvawo=")


# qemu's register dump and warnings after a KVM error: not worth quoting in a reason.
NOISE_RE = re.compile(r"^(qemu-system-\S+: warning|KVM internal error|extra data|[A-Z0-9]{2,4} *=|"
                      r"[A-Z]{2,3}=|Code=|DR[67]=|EFER=|CR0=|GDT=|IDT=)")


@dataclass(frozen=True)
class ProbeRun:
    """What one qemu run of the probe gave: exit status (None: killed at the timeout), COM1, stderr."""
    returncode: int | None
    serial: str
    stderr: str


@dataclass(frozen=True)
class ProbeResult:
    kvm: bool
    reason: str
    cached: bool = False


def argv(qemu: str, kernel: Path) -> list[str]:
    """Pure: the probe's qemu command line (16 MiB, no disk, COM1 to stdout)."""
    return [qemu, "-nodefaults", "-no-user-config", "-display", "none", "-machine", "pc",
            "-accel", "kvm", "-m", "16", "-kernel", str(kernel), "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot"]


def run_qemu(cmd: list[str], timeout: float, clock: Callable[[], float] = time.monotonic) -> ProbeRun:
    """Run the probe until qemu exits, reports a KVM internal error (it then stops the guest and
    waits forever) or the timeout; qemu is killed and waited for (nothing is left running)."""
    proc = processes.spawn(cmd, stdout=processes.PIPE, stderr=processes.PIPE)
    out, err = bytearray(), bytearray()
    deadline = clock() + timeout
    code: int | None = None
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            while sel.get_map() and b"KVM internal error" not in err:
                left = deadline - clock()
                if left <= 0:
                    break
                for key, _ in sel.select(min(left, 0.5)):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        key.data.extend(chunk)
                    else:
                        sel.unregister(key.fileobj)
            exited = not sel.get_map()  # both pipes at EOF: qemu is exiting by itself
        if exited:
            code = proc.wait(timeout=5)
    except processes.TimeoutExpired:
        pass
    finally:
        processes.stop(proc, grace=0)
        out.extend(proc.stdout.read())  # the rest of what it wrote; EOF now that it is gone
        err.extend(proc.stderr.read())
        proc.stdout.close()
        proc.stderr.close()
    return ProbeRun(code, out.decode(errors="replace"), err.decode(errors="replace"))


def judge(run: ProbeRun, timeout: float) -> ProbeResult:
    """Pure: a probe run's outcome as a KVM/TCG decision with its reason."""
    if run.returncode == EXIT_OK and PROBE_OK in run.serial:
        return ProbeResult(True, "a probe kernel ran under KVM in long mode with paging at the "
                                 "high-half kernel address and took an exception through its IDT")
    reached = "".join(ch for ch in run.serial.split("\n", 1)[0] if ch in "12")
    stage = STAGES.get(reached, STAGES["12"])
    err = [ln.strip() for ln in run.stderr.splitlines()
           if ln.strip() and not NOISE_RE.match(ln.strip())]
    how = ("qemu stopped on a KVM internal error" if "KVM internal error" in run.stderr
           else f"no answer within {timeout:g} s" if run.returncode is None
           else f"qemu exited with status {run.returncode}")
    detail = f" ({err[0][:120]})" if err else ""
    return ProbeResult(False, f"a probe kernel under KVM failed: {stage}; {how}{detail}")


def host_key(qemu: str, sys_module: Path = Path("/sys/module")) -> str:
    """Kernel release, loaded kvm modules, qemu binary and probe version: what the answer depends on."""
    mods = sorted(p.name for p in sys_module.glob("kvm*")) if sys_module.is_dir() else []
    exe = Path(qemu)
    try:
        st = exe.stat()
        qemu_id = f"{exe}:{st.st_size}:{int(st.st_mtime)}"
    except OSError:
        qemu_id = str(exe)
    return f"{os.uname().release}|{','.join(mods)}|{qemu_id}|probe-{PROBE_VERSION}"


def cache_file() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "rel-eng" / "kvm-probe.json"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def probe(qemu: str, *, timeout: float = TIMEOUT_S, cache: Path | None = None,
          sys_module: Path = Path("/sys/module"),
          runner: Callable[[list[str], float], ProbeRun] = run_qemu) -> ProbeResult:
    """The cached answer for this host, or one bounded probe run (then cached)."""
    path = cache_file() if cache is None else cache
    key = host_key(qemu, sys_module)
    known = _read_cache(path).get(key)
    if isinstance(known, dict) and isinstance(known.get("kvm"), bool):
        return ProbeResult(known["kvm"], str(known.get("reason", "")), cached=True)
    with tempfile.TemporaryDirectory(prefix="rel-eng-kvm-probe-") as work:
        kernel = Path(work) / "kvmprobe.bin"
        kernel.write_bytes(PROBE_IMAGE)
        try:
            run = runner(argv(qemu, kernel), timeout)
        except OSError as exc:
            return ProbeResult(False, f"the KVM probe could not start {qemu}: {exc}")
    result = judge(run, timeout)
    data = _read_cache(path)
    data[key] = {"kvm": result.kvm, "reason": result.reason,
                 "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 "image_sha256": hashlib.sha256(PROBE_IMAGE).hexdigest()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    except OSError:
        pass  # an unwritable cache only costs another probe next time
    return result
