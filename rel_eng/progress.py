"""Progress for long steps: a rich spinner on a terminal, plain log lines otherwise.

Either way the lines reach the compose's own log (rel_eng.logfile) while one is attached."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Iterator

from rel_eng.logfile import file_only

log = logging.getLogger("rel_eng")


class Progress:
    def __init__(self, interactive: bool | None = None):
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._console = None
        if self.interactive:
            from rich.console import Console

            self._console = Console(stderr=True)

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        start = time.monotonic()
        if self._console is not None:
            file_only.info("start: %s", what)  # the spinner is the terminal's; the file gets lines
            with self._console.status(what):
                yield
            file_only.info("done: %s (%.1fs)", what, time.monotonic() - start)
            self._console.log(f"[green]done[/] {what} ({time.monotonic() - start:.1f}s)")
        else:
            log.info("start: %s", what)
            yield
            log.info("done: %s (%.1fs)", what, time.monotonic() - start)

    def note(self, message: str) -> None:
        if self._console is not None:
            file_only.info("%s", message)
            self._console.log(message)
        else:
            log.info("%s", message)
