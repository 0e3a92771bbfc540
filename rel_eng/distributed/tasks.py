"""Celery tasks: one generic task runs any step of the pipeline (rel_eng.pipeline).

It is registered once per declared step, as `rel_eng.step.<name>` (so worker logs, events and
flower name the step), with the same policy. `run_step(topdir, step, target)` reloads the
compose from its top dir (shared storage) and calls the step's run function, exactly as
`rel-eng compose` does in-process: for a per-image step `target` is the image, for a
per-compose step (finalize) it is the mirror root. The steps skip
work their manifest records as done, so a redelivered task (a worker killed after finishing but
before its ack, a Redis restart) never rebuilds, re-processes or stages twice. Each task appends
to the compose's own log (rel_eng.logfile, logs/rel-eng.log) under its step and image, as a
local run does. The step's file lock (rel_eng.compose.locks, the one local runs take too) keeps
two deliveries of one step from running at once: the kernel drops it when its holder dies, so a
SIGKILLed worker never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from pathlib import Path
from typing import Callable, Iterator

from celery import Task
from celery.exceptions import Reject

from rel_eng import compose, logfile, metadata, pipeline, runner
from rel_eng.compose import locks
from rel_eng.compose.run import children
from rel_eng.compose import (DOOMED, FINISHED, INCOMPLETE, STARTED, TERMINATED, Compose,
                             ComposeDoomed, Terminated)
from rel_eng.config.celery import CelerySettings
from rel_eng.errors import Conflict, InputError, RelEngError
from rel_eng.pipeline import IMAGE, Step
from rel_eng.progress import Progress

log = logging.getLogger(__name__)

STEP_PREFIX = "rel_eng.step."
DOOM = "rel_eng.doom_compose"
ENDED = (FINISHED, INCOMPLETE, DOOMED, TERMINATED)


class NotSettled(RelEngError):
    """finalize ran before every image was processed or failed (retried)."""


_recorders: dict[str, object] = {}  # per worker process: one store connection per store URL


def load(topdir: str) -> Compose:
    """The compose, mirrored into the compose store as `rel-eng compose` does in-process."""
    from rel_eng.store.recorder import recorder_for  # late: SQLAlchemy only when recording

    c = Compose.load(Path(topdir))
    recorder = recorder_for(c.config, c.topdir.parent)
    if recorder is None:
        return c
    recorder = _recorders.setdefault(recorder.url, recorder)
    return Compose.load(c.topdir, recorder)


@contextlib.contextmanager
def step_lock(c: Compose, step: str, timeout: float, *,
              clock: Callable[[], float] | None = None,
              sleep: Callable[[float], None] | None = None) -> Iterator[None]:
    """The step's lock (rel_eng.compose.locks, the same one a local run takes), with a deadline."""
    kw = {k: v for k, v in (("clock", clock), ("sleep", sleep)) if v is not None}
    with locks.step_lock(c.topdir, step, timeout, **kw):
        yield


@contextlib.contextmanager
def logged(c: Compose, step: str, image: str = logfile.NONE) -> Iterator[None]:
    """This task's lines in the compose's logs/rel-eng.log, under its step and image."""
    with logfile.attached(c.topdir), logfile.step(step, image):
        logfile.file_only.info("task on %s", socket.gethostname())
        yield


def run_step(topdir: str, step: str, target: str, lock_timeout: float):
    """One step of the pipeline for one image (`target` is its key) or for the compose (`target`
    is the mirror root)."""
    declared = pipeline.STEPS[step]
    c = load(topdir)
    # Its children are written down where a local run writes them (a `--resume` on this host
    # reaps those of a worker that was SIGKILLed; PR_SET_PDEATHSIG has usually ended them).
    with runner.recording(children(c)):
        if declared.scope == IMAGE:
            with logged(c, declared.name, target):
                return _image_step(c, declared, target, lock_timeout)
        with logged(c, declared.name):
            return _compose_step(c, declared, target, lock_timeout)


def _image_step(c: Compose, step: Step, key: str, lock_timeout: float) -> dict:
    if c.read_status() in ENDED:
        return {"job": key, "skipped": c.read_status()}
    if step is not pipeline.IMAGE_STEPS[0] and key in compose.failures(c):
        return {"job": key, "skipped": "build failed"}
    with step_lock(c, step.lock(key), lock_timeout):
        try:
            return step(c, [key], Progress(False))[key]
        except Terminated as exc:
            # The worker is shutting down: the step cleaned up (a builder cancelled what it
            # started); hand the message back so another host runs it.
            raise Reject(str(exc), requeue=True) from exc


def unsettled(c: Compose) -> list[str]:
    """Images that have not been through every per-image step yet, and have not failed: a
    step counts once done (or skipped), a verdict step once it has any record."""
    steps = c.manifest.read()["steps"]
    failed = compose.failures(c)

    def settled(step: Step, key: str) -> bool:
        rec = steps.get(step.lock(key))
        return rec is not None and (step.verdict or rec.get("state") in ("done", "skipped"))

    return [j.key for j in c.plan.images
            if j.key not in failed and not all(settled(s, j.key) for s in pipeline.IMAGE_STEPS[1:])]


def _compose_step(c: Compose, step: Step, mirror_root: str, lock_timeout: float) -> str:
    with step_lock(c, step.lock(), lock_timeout):
        if c.read_status() != STARTED:
            return c.read_status()  # finalized before: never publish or stage twice
        waiting = unsettled(c)
        if waiting:
            raise NotSettled(f"{c.plan.compose_id}: {step.name} before {', '.join(waiting)} "
                             "finished")
        try:
            return step(c, Path(mirror_root), Progress(False))
        except ComposeDoomed:
            return DOOMED  # finalize wrote DOOMED and the failed images' reasons


def task_name(step: str) -> str:
    return STEP_PREFIX + step


def step_of(task: str, args: tuple) -> str:
    """The manifest record (and lock) a step task's name and arguments (topdir, target) name."""
    step = pipeline.STEPS[task.removeprefix(STEP_PREFIX)]
    return step.lock(args[1] if step.scope == IMAGE else "")


class ComposeTask(Task):
    """Records the final failure of a step (retries exhausted) in the compose manifest."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, Reject) or not args:
            return
        try:
            c = load(args[0])
        except RelEngError:
            return
        step = step_of(self.name, tuple(args))
        attempts = self.request.retries + 1
        reason = (f"{step.replace(':', ' of ')} failed after {attempts} attempt(s): "
                  f"{type(exc).__name__}: {exc}")
        compose.recorded(c, c.recorder).set_step(step, "", "failed", reason)
        step_name, _, image = step.partition(":")
        with logfile.attached(c.topdir), logfile.step(step_name, image):
            log.error("%s: %s", c.plan.compose_id, reason)


def _step_task(step: str, lock_timeout: float) -> Callable:
    def task(topdir: str, target: str):
        return run_step(topdir, step, target, lock_timeout)

    task.__name__ = task.__qualname__ = f"{step}_step"
    return task


def doom_compose(request, exc, traceback, topdir: str) -> None:
    """Errback of finalize (and so of the whole chord): the compose ends DOOMED with the reason."""
    c = load(topdir)
    steps = c.manifest.read()["steps"]
    failed = {name.split(":", 1)[-1]: rec.get("reason", "") for name, rec in sorted(steps.items())
              if rec.get("state") == "failed"}
    if not failed:
        failed = {"compose": f"task {getattr(request, 'task', '?')} failed: "
                             f"{type(exc).__name__}: {exc}"}
    with logged(c, "doom"):
        with step_lock(c, "finalize", 60):
            if c.read_status() not in ENDED:
                metadata.write_summary(c.metadir, c.plan, DOOMED, failed, False)
                c.set_status(DOOMED, c.recorder)
        log.error("compose %s is DOOMED: %s", c.plan.compose_id,
                  "; ".join(f"{k}: {v}" for k, v in failed.items()))


def register(app, s: CelerySettings) -> None:
    """Register the tasks on `app` with retry policy from the settings."""
    lock_timeout = float(s.visibility_timeout)
    opts = dict(
        shared=False,  # registered on this app only; a process may build several apps
        base=ComposeTask, acks_late=True, reject_on_worker_lost=True,
        autoretry_for=(Exception,),
        # Bad input and a decided fate do not get better by retrying.
        dont_autoretry_for=(InputError, Conflict, ComposeDoomed, Reject),
        max_retries=s.max_retries, retry_backoff=s.retry_backoff,
        retry_backoff_max=s.retry_backoff_max, retry_jitter=False,
    )

    for step in pipeline.PIPELINE:
        app.task(name=task_name(step.name), **opts)(_step_task(step.name, lock_timeout))

    # Four parameters make Celery call it in the failing worker with (request, exc, traceback).
    app.task(name=DOOM, shared=False)(doom_compose)
