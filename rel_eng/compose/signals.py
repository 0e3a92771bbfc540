"""SIGINT/SIGTERM at any step: the compose ends TERMINATED (exit 130 or 143), builds are cancelled.

Both wrap rel_eng.signals, the one handler: the first signal of a run raises `Terminated` where
the main thread is, and further ones are ignored until the run has unwound, so a second Ctrl-C
cannot cut the cleanup short (temp files through rel_eng.atomic, the staging dir in
rel_eng.stage, VMs in the boot gate). `cancel_on_signal` also cancels the builds submitted so far.
"""

from __future__ import annotations

from rel_eng.compose.model import Terminated
from rel_eng.progress import Progress
from rel_eng.signals import stop_on_signal


class terminate_on_signal(stop_on_signal):
    """SIGINT/SIGTERM raise Terminated once (main thread only; elsewhere a no-op)."""

    def __init__(self, what: str = "compose interrupted"):
        super().__init__(what, Terminated)


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
