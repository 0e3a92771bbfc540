"""SIGINT/SIGTERM at any step: the compose ends TERMINATED (exit 130), builds are cancelled.

`terminate_on_signal` turns the first SIGINT or SIGTERM of a run into `Terminated`, raised
where the main thread is; every step cleans up on the way out (temp files through
rel_eng.atomic, the staging dir in rel_eng.stage). Further signals are ignored until the run
has unwound, so a second Ctrl-C cannot cut that cleanup short. `cancel_on_signal` also cancels
the builds submitted so far.
"""

from __future__ import annotations

import signal
import threading

from rel_eng.compose.model import Terminated
from rel_eng.progress import Progress

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"depth": 0, "fired": False}


def _handler(signum, frame):
    if _state["fired"]:
        return  # already stopping: let the cleanup finish
    _state["fired"] = True
    raise Terminated(f"compose interrupted by signal {signal.Signals(signum).name}")


class terminate_on_signal:
    """SIGINT/SIGTERM raise Terminated once (main thread only; elsewhere a no-op)."""

    def __init__(self):
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            if _state["depth"] == 0:
                _state["fired"] = False
            _state["depth"] += 1
            for sig in SIGNALS:
                self.previous[sig] = signal.signal(sig, _handler)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.previous:
            for sig, old in self.previous.items():
                signal.signal(sig, old)
            _state["depth"] -= 1
        return False


class cancel_on_signal(terminate_on_signal):
    """SIGINT/SIGTERM while builds run: cancel what was submitted, then stop the compose."""

    def __init__(self, builder, handles, progress: Progress):
        super().__init__()
        self.builder, self.handles, self.progress = builder, handles, progress

    def __exit__(self, exc_type, exc, tb):
        super().__exit__(exc_type, exc, tb)
        if exc_type is not None and issubclass(exc_type, (Terminated, KeyboardInterrupt)):
            handles = self.handles()
            if handles and getattr(self.builder, "cancel_on_signal", True):
                self.builder.cancel(handles)
                self.progress.note(f"cancelled {len(handles)} submitted build(s)")
        return False
