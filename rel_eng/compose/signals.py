"""SIGINT/SIGTERM while builds run: cancel submitted builds, then end the compose TERMINATED."""

from __future__ import annotations

import signal
import threading

from rel_eng.compose.model import Terminated
from rel_eng.progress import Progress


class cancel_on_signal:
    """SIGINT/SIGTERM while builds run: cancel what was submitted, then stop the compose."""

    def __init__(self, builder, handles, progress: Progress):
        self.builder, self.handles, self.progress = builder, handles, progress
        self.previous = {}

    def _handler(self, signum, frame):
        raise Terminated(f"compose interrupted by signal {signal.Signals(signum).name}")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, exc_type, exc, tb):
        for sig, old in self.previous.items():
            signal.signal(sig, old)
        if exc_type is not None and issubclass(exc_type, (Terminated, KeyboardInterrupt)):
            handles = self.handles()
            if handles and getattr(self.builder, "cancel_on_signal", True):
                self.builder.cancel(handles)
                self.progress.note(f"cancelled {len(handles)} submitted build(s)")
        return False
