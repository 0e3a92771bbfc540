"""A queued compose's steps that wait on a queue no live worker serves, for its dashboard page.

Celery holds a task on a queue nobody consumes without a word, so the page of a queued compose
that has not ended names the step waiting, its queue and the worker command that serves it.
Asking is a broadcast to the workers (Celery's inspect `active_queues`), so it is asked only
there (never on the list, the API or an ended or local compose), bounded by a short timeout,
and the answer is kept per compose for a few seconds: reloads and several viewers cost one ask.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

INSPECT_TIMEOUT_S = 1.0  # a live worker answers a broadcast well within it on one broker
CACHE_S = 5.0
DONE = ("done", "failed", "skipped")  # a failed step ends its image's chain


@dataclass(frozen=True)
class Waiting:
    step: str
    queue: str
    targets: tuple[str, ...]  # the images whose step waits; () for a per-compose step

    @property
    def command(self) -> str:
        return f"rel-eng worker --queues {self.queue}"


@dataclass(frozen=True)
class Answer:
    waiting: tuple[Waiting, ...] = ()
    note: str = ""  # why the workers could not be asked


def pending_steps(plan, image_steps: dict[str, dict]) -> list[tuple[object, object]]:
    """(step, job or None) of each step next in line: each image's first step not ended, or,
    once every image's chain has ended, the first per-compose step."""
    from rel_eng.pipeline import COMPOSE_STEPS, IMAGE_STEPS

    out = []
    for job in plan.images:
        steps = image_steps.get(job.key) or {}
        if any((steps.get(s.name) or {}).get("state") == "failed" for s in IMAGE_STEPS):
            continue
        step = next((s for s in IMAGE_STEPS if (steps.get(s.name) or {}).get("state")
                     not in DONE), None)
        if step is not None:
            out.append((step, job))
    if not out and COMPOSE_STEPS:
        out.append((COMPOSE_STEPS[0], None))
    return out


def ask(topdir: Path, image_steps: dict[str, dict], timeout: float,
        inspect: Callable | None = None) -> Answer:
    """The steps of the queued compose in `topdir` waiting on an unserved queue (no ask when it
    was not queued or has ended)."""
    from rel_eng.compose.model import STARTED, Compose
    from rel_eng.config.celery import effective
    from rel_eng.distributed.canvas import CELERY_RECORD, step_queue
    from rel_eng.distributed.liveness import served_queues
    from rel_eng.errors import RelEngError

    if not (topdir / "work" / CELERY_RECORD).is_file():
        return Answer()
    try:
        c = Compose.load(topdir)
        if c.read_status() != STARTED:
            return Answer()
        s = effective(c.config.celery)
        by_queue: dict[tuple[str, str], list[str]] = {}
        for step, job in pending_steps(c.plan, image_steps):
            q = step_queue(s, step, c.plan.builder, job)
            by_queue.setdefault((step.name, q), []).extend([job.key] if job else [])
        served = served_queues(s, timeout, inspect=inspect)
    except RelEngError as exc:  # a damaged compose dir
        return Answer(note=f"workers not asked: {' '.join(str(exc).split())[:160]}")
    except Exception as exc:  # the broker (kombu/redis errors, OSError) or the dir went away
        return Answer(note=f"workers not asked: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:160]}")
    return Answer(tuple(Waiting(step, q, tuple(keys))
                        for (step, q), keys in by_queue.items() if q not in served))


class WaitingCache:
    """ask() per compose dir, kept for `keep` seconds (clock injected for tests)."""

    def __init__(self, *, keep: float = CACHE_S, timeout: float = INSPECT_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic, inspect: Callable | None = None):
        self.keep, self.timeout, self.clock, self.inspect = keep, timeout, clock, inspect
        self.asked = 0  # asks made, not served from the cache
        self._answers: dict[str, tuple[float, Answer]] = {}
        self._lock = threading.Lock()

    def __call__(self, topdir, image_steps: dict[str, dict]) -> Answer:
        key = str(topdir)
        now = self.clock()
        with self._lock:
            hit = self._answers.get(key)
            if hit and now - hit[0] < self.keep:
                return hit[1]
        answer = ask(Path(topdir), image_steps, self.timeout, self.inspect)
        with self._lock:
            self.asked += 1
            self._answers = {k: v for k, v in self._answers.items() if now - v[0] < self.keep}
            self._answers[key] = (now, answer)
        return answer
