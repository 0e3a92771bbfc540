"""The one SIGINT/SIGTERM handler: the compose, its boot gate and `rel-eng boot-test` use it.

Inside `stop_on_signal(...)` the first SIGINT or SIGTERM raises the given Interrupted class
where the main thread is, carrying the signal (exit 130 for SIGINT, 143 for SIGTERM). Further
signals are ignored until the outermost block has exited, so a second Ctrl-C cannot cut short
the cleanup the first one started (VMs killed, temp files removed, builds cancelled). Blocks
nest (a boot gate inside a compose) and share that guard. Outside the main thread it does
nothing: only the main thread may set handlers, and it is where the signal lands.
"""

from __future__ import annotations

import signal
import threading

from rel_eng.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"depth": 0, "fired": False}


class stop_on_signal:
    """SIGINT/SIGTERM raise `error(f"{what} by signal NAME", signum=...)`, once per outermost block."""

    def __init__(self, what: str = "interrupted", error: type[Interrupted] = Interrupted):
        self.what, self.error = what, error
        self.previous: dict = {}

    def _handler(self, signum, frame):
        if _state["fired"]:
            return  # already stopping: let the cleanup finish
        _state["fired"] = True
        raise self.error(f"{self.what} by signal {signal.Signals(signum).name}", signum=signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            if _state["depth"] == 0:
                _state["fired"] = False
            _state["depth"] += 1
            for sig in SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.previous:
            for sig, old in self.previous.items():
                signal.signal(sig, old)
            self.previous = {}
            _state["depth"] -= 1
        return False
