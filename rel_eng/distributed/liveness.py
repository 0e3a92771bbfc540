"""Before a compose is queued: every queue it will use has a live worker.

A queue nobody serves holds its tasks forever without a word (a Koji-only deployment has no
host on `boottest`), so `compose --queue`, `trigger` and each beat firing ask the workers which
queues they consume (Celery's inspect `active_queues`, bounded by a timeout) and refuse, one
line per queue naming the worker command that serves it, with nothing queued.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from rel_eng.config.celery import CelerySettings, effective
from rel_eng.errors import ConfigError
from rel_eng.plan import plan_drop

INSPECT_TIMEOUT_S = 3.0  # a live worker answers a broadcast within a second or two


def compose_queues(config, release: str, milestone: str | None, builder: str | None = None,
                   s: CelerySettings | None = None) -> list[str]:
    """Every queue a compose of this drop will put a task on (see canvas.compose_canvas)."""
    from rel_eng.distributed import routing

    s = s or effective(config.celery)
    plan = plan_drop(config, release, milestone=milestone, date=dt.date(2000, 1, 1),
                     builder=builder)
    queues = [routing.build_queue(s, plan.builder, job) for job in plan.images]
    queues += [routing.step_queue(s, step) for step in ("process", "boottest", "finalize")]
    return list(dict.fromkeys(queues))


def served_queues(s: CelerySettings, timeout: float = INSPECT_TIMEOUT_S,
                  inspect: Callable | None = None) -> dict[str, list[str]]:
    """queue -> the workers consuming it now (an empty dict when no worker answers)."""
    if inspect is None:
        from rel_eng.distributed.celery_app import make_app

        app = make_app(s)
        try:
            answer = app.control.inspect(timeout=timeout).active_queues() or {}
        finally:
            app.close()
    else:
        answer = inspect(timeout) or {}
    out: dict[str, list[str]] = {}
    for worker, queues in answer.items():
        for q in queues or []:
            if isinstance(q, dict) and q.get("name"):
                out.setdefault(q["name"], []).append(worker)
    return out


def check_workers(config, release: str, milestone: str | None, builder: str | None = None,
                  inspect: Callable | None = None) -> None:
    """ConfigError (exit 2), one line per queue of this compose that no live worker serves."""
    s = effective(config.celery)
    wanted = compose_queues(config, release, milestone, builder, s)
    served = served_queues(s, inspect=inspect)
    missing = [q for q in wanted if q not in served]
    if missing:
        raise ConfigError([f"queue '{q}' has no live worker (start one that serves it: "
                           f"rel-eng worker --queues {q}); nothing was queued" for q in missing])


def checked(submit: Callable[..., str]) -> Callable[..., str]:
    """`submit` (canvas.submit_compose's signature) after check_workers."""
    def submit_checked(config, output, release, milestone, date, label=None, builder=None,
                       mirror_root=None):
        check_workers(config, release, milestone, builder)
        return submit(config, output, release, milestone, date, label=label, builder=builder,
                      mirror_root=mirror_root)
    return submit_checked


def waiting_on(topdir) -> list[str]:
    """For `rel-eng status`: the queues a queued, unfinished compose uses that no live worker
    serves (its tasks wait there), one line each; [] when it was not queued, has ended, or
    every queue is served. The broker unreachable is a line too."""
    from pathlib import Path

    from rel_eng.compose.model import STARTED, Compose
    from rel_eng.errors import RelEngError

    topdir = Path(topdir)
    if not (topdir / "work" / "celery.json").is_file():
        return []
    try:
        c = Compose.load(topdir)
        if c.status != STARTED:
            return []
        s = effective(c.config.celery)
        wanted = compose_queues(c.config, c.plan.release_key, c.plan.milestone, c.plan.builder, s)
        served = served_queues(s)
    except (RelEngError, OSError) as exc:
        return [f"workers not asked: {exc}"]
    except Exception as exc:  # the broker: kombu/redis errors
        return [f"workers not asked: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"]
    return [f"waiting on queue '{q}', which no live worker serves (start one: rel-eng worker "
            f"--queues {q})" for q in wanted if q not in served]
