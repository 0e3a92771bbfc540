"""One qemu process and its throw-away files; always killed, whatever ends the test.

Every live VM is in LIVE, so a signal handler or an exception in the main thread kills them all;
qemu is started by the runner (rel_eng.runner.spawn), which records it and has it die with its
parent, so a SIGKILLed rel-eng does not leave qemu running.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rel_eng import runner

LIVE: set["Vm"] = set()
_LOCK = threading.Lock()
class Vm:
    def __init__(self, argv: list[str], log: Path, cwd: Path | None = None):
        self.argv = argv
        self.log = log
        self._err = open(log, "wb")
        # cwd: commands qemu runs for the guest (guestfwd) start there, in the VM's work dir.
        try:
            self.proc = runner.spawn(argv, stdout=self._err, stderr=runner.STDOUT, cwd=cwd)
        except BaseException:
            self._err.close()
            raise
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
        runner.stop(self.proc, grace=5)
        self._err.close()
        with _LOCK:
            LIVE.discard(self)


def kill_all() -> None:
    with _LOCK:
        vms = list(LIVE)
    for vm in vms:
        vm.kill()
