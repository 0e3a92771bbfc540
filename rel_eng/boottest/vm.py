"""One qemu process and its throw-away files; always killed, whatever ends the test.

Every live VM is in LIVE, so a signal handler or an exception in the main thread kills them all;
the child also gets PR_SET_PDEATHSIG so a SIGKILLed rel-eng does not leave qemu running.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import threading
from pathlib import Path

from rel_eng import runner

LIVE: set["Vm"] = set()
_LOCK = threading.Lock()
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class Vm:
    def __init__(self, argv: list[str], log: Path, cwd: Path | None = None):
        runner.require(argv[0])
        self.argv = argv
        self.log = log
        self._err = open(log, "wb")
        # cwd: commands qemu runs for the guest (guestfwd) start there, in the VM's work dir.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._err, cwd=cwd,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        with _LOCK:
            LIVE.add(self)
        self.peak_rss_kib = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def sample_rss(self) -> None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
        except (OSError, ValueError):
            pass

    def stderr_text(self) -> str:
        try:
            return self.log.read_text(errors="replace").strip()
        except OSError:
            return ""

    def kill(self) -> None:
        if self.running():
            self.sample_rss()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        with _LOCK:
            LIVE.discard(self)


def kill_all() -> None:
    with _LOCK:
        vms = list(LIVE)
    for vm in vms:
        vm.kill()
