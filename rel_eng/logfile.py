"""The compose's own log: `logs/rel-eng.log` inside its top dir (pungi keeps
logs/global/pungi.global.log the same way), read by release engineers after a failure.

`attached(topdir)` adds a handler to the `rel_eng` loggers for as long as a local run
(run_compose/resume) or a Celery task works on that compose; every worker appends to the same
file (O_APPEND, one write per line). `step(name, image)` says what runs: every line carries the
UTC time, the step and the image (job key), and an exception leaving a step is written there
with that step and image before it travels on to the terminal's one-line error (rel_eng/cli.py),
so the file is never the only place an error appears. Lines are redacted (rel_eng/redact.py)
on the way out, tracebacks included.

Imports only the standard library and rel_eng.redact: the steps import it, not the reverse.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from pathlib import Path
from typing import Iterator

from rel_eng.errors import Interrupted, RelEngError
from rel_eng.redact import redact

LOG_NAME = "rel-eng.log"
NONE = "-"
# Records for the file alone (what the terminal already says once, e.g. a step's failure):
# this logger does not propagate, so nothing is printed twice.
file_only = logging.getLogger("rel_eng.logfile")
file_only.propagate = False
file_only.addHandler(logging.NullHandler())  # outside a compose: nowhere (not logging's last resort)

_topdir: contextvars.ContextVar[str | None] = contextvars.ContextVar("rel_eng_log_topdir", default=None)
_step: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "rel_eng_log_step", default=(NONE, NONE))
_lock = threading.Lock()
_active: dict[str, list] = {}  # resolved log path -> [handler, users]


def path_of(topdir: Path) -> Path:
    return Path(topdir) / "logs" / LOG_NAME


class _Formatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging's name)
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + \
            f".{int(record.msecs):03d}Z"

    def format(self, record):
        return redact(super().format(record))


FORMAT = "%(asctime)s %(levelname)s step=%(step)s image=%(image)s %(message)s"


class _Handler(logging.FileHandler):
    """Appends the records of one compose; records made under another compose's context are
    left to that compose's handler (a threaded worker may run two at once)."""

    def __init__(self, path: Path, key: str):
        super().__init__(path, mode="a", encoding="utf-8")
        self.key = key
        self.setFormatter(_Formatter(FORMAT))

    def filter(self, record):
        owner = _topdir.get()
        if owner is not None and owner != self.key:
            return False
        if not hasattr(record, "step"):
            record.step, record.image = _step.get()
        return super().filter(record)


def _loggers() -> list[logging.Logger]:
    return [logging.getLogger("rel_eng"), file_only]


@contextlib.contextmanager
def attached(topdir: Path) -> Iterator[Path]:
    """Log to `topdir`/logs/rel-eng.log while the block runs (nested uses share one handler)."""
    path = path_of(topdir)
    path.parent.mkdir(exist_ok=True)  # the compose's logs/; never a compose dir of its own
    key = str(path.resolve())
    with _lock:
        entry = _active.get(key)
        if entry is None:
            handler = _Handler(path, key)
            entry = _active[key] = [handler, 0]
            for lg in _loggers():
                lg.addHandler(handler)
        entry[1] += 1
    # INFO lines (step starts, notes) reach the file even where the process logs less; a
    # process that logs more (--debug) keeps its level.
    old_levels = [(lg, lg.level) for lg in _loggers()]
    for lg, _ in old_levels:
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)
    token = _topdir.set(key)
    try:
        yield path
    finally:
        _topdir.reset(token)
        for lg, level in old_levels:
            lg.setLevel(level)
        with _lock:
            entry[1] -= 1
            if entry[1] == 0:
                del _active[key]
                for lg in _loggers():
                    lg.removeHandler(entry[0])
                entry[0].close()


@contextlib.contextmanager
def step(name: str, image: str = NONE) -> Iterator[None]:
    """Lines logged inside carry `name` and `image`; an exception leaving the block is written
    to the compose log (once, by the innermost step) with them."""
    token = _step.set((name, image or NONE))
    try:
        yield
    except BaseException as exc:
        _log_failure(exc)
        raise
    finally:
        _step.reset(token)


def _log_failure(exc: BaseException) -> None:
    if getattr(exc, "_rel_eng_logged", False):
        return
    with contextlib.suppress(AttributeError, TypeError):
        exc._rel_eng_logged = True
    message = f"failed: {type(exc).__name__}: {exc}"
    if isinstance(exc, (Interrupted, KeyboardInterrupt, SystemExit)):
        file_only.warning("%s", message)
    elif isinstance(exc, RelEngError):
        file_only.error("%s", message)  # a known failure: its message says it all
    else:
        file_only.error("%s", message, exc_info=exc)  # unexpected: the traceback is kept here
