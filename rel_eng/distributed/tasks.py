"""Celery tasks: thin wrappers over the step functions of rel_eng.compose.

Every task reloads the compose from its top dir (shared storage) and calls exactly what
`rel-eng compose` calls in-process: `build(c, [key])`, `process(c, key)`, `finalize(c, mirror)`.
Those steps skip work their manifest records as done, so a redelivered task (a worker killed
after finishing but before its ack, a Redis restart) never rebuilds, re-processes or stages
twice. Each task appends to the compose's own log (rel_eng.logfile, logs/rel-eng.log) under
its step and image, as a local run does. A per-step file lock (rel_eng.compose.locks, the one local runs take too) keeps two
deliveries of one step from running at once: the kernel drops it when its holder dies, so a
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

from rel_eng import compose, logfile, metadata
from rel_eng.compose import locks
from rel_eng.compose.locks import StepBusy  # noqa: F401  (retried: another delivery still runs)
from rel_eng.compose import (DOOMED, FINISHED, INCOMPLETE, STARTED, TERMINATED, Compose,
                             ComposeDoomed, Terminated)
from rel_eng.config.celery import CelerySettings
from rel_eng.errors import InputError, RelEngError

log = logging.getLogger(__name__)

BUILD = "rel_eng.build_image"
PROCESS = "rel_eng.process_image"
FINALIZE = "rel_eng.finalize_compose"
BOOTTEST = "rel_eng.boot_test_image"
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


def build_image(topdir: str, job_key: str, lock_timeout: float) -> dict:
    c = load(topdir)
    with logged(c, "build", job_key):
        return _build_image(c, job_key, lock_timeout)


def _build_image(c: Compose, job_key: str, lock_timeout: float) -> dict:
    if c.status in ENDED:
        return {"job": job_key, "skipped": c.status}
    with step_lock(c, f"build:{job_key}", lock_timeout):
        try:
            outcome = compose.build(c, [job_key])[job_key]
        except Terminated as exc:
            # The worker is shutting down: the builder cancelled what it started; hand the
            # message back so another host builds the image.
            raise Reject(str(exc), requeue=True) from exc
    # The same value however often it runs: Celery keys chord parts by task id and result.
    return {"job": job_key, "ok": outcome.ok, **({} if outcome.ok else {"reason": outcome.reason})}


def process_image(topdir: str, job_key: str, lock_timeout: float) -> dict:
    c = load(topdir)
    with logged(c, "process", job_key):
        return _process_image(c, job_key, lock_timeout)


def _process_image(c: Compose, job_key: str, lock_timeout: float) -> dict:
    if c.status in ENDED:
        return {"job": job_key, "skipped": c.status}
    if job_key in compose.failures(c):
        return {"job": job_key, "skipped": "build failed"}
    with step_lock(c, f"process:{job_key}", lock_timeout):
        arts = compose.process(c, job_key)
    return {"job": job_key, "files": sorted(a.path for a in arts)}


def boot_test_image(topdir: str, job_key: str, lock_timeout: float) -> dict:
    """The boot gate for one processed image (on the `boottest` queue, hosts with KVM)."""
    from rel_eng.compose.boot_gate import run_gate

    c = load(topdir)
    if c.status in ENDED:
        return {"job": job_key, "skipped": c.status}
    if job_key in compose.failures(c):
        return {"job": job_key, "skipped": "build failed"}
    with step_lock(c, f"boottest:{job_key}", lock_timeout):
        verdict = run_gate(c, [job_key])[job_key]
    return {"job": job_key, "boot_test": verdict["status"]}


def unsettled(c: Compose) -> list[str]:
    """Images neither processed and boot-tested nor failed yet."""
    steps = c.manifest.read()["steps"]
    failed = compose.failures(c)
    return [j.key for j in c.plan.images
            if j.key not in failed and (steps.get(f"process:{j.key}", {}).get("state") != "done"
                                        or f"boottest:{j.key}" not in steps)]


def finalize_compose(topdir: str, mirror_root: str, lock_timeout: float) -> str:
    c = load(topdir)
    with logged(c, "finalize"):
        return _finalize_compose(c, mirror_root, lock_timeout)


def _finalize_compose(c: Compose, mirror_root: str, lock_timeout: float) -> str:
    with step_lock(c, "finalize", lock_timeout):
        if c.status != STARTED:
            return c.status  # finalized before: never publish or stage twice
        waiting = unsettled(c)
        if waiting:
            raise NotSettled(f"{c.plan.compose_id}: finalize before {', '.join(waiting)} finished")
        try:
            return compose.finalize(c, Path(mirror_root))
        except ComposeDoomed:
            return DOOMED  # finalize wrote DOOMED and the failed images' reasons


def step_of(task_name: str, args: tuple) -> str:
    if task_name in (BUILD, PROCESS, BOOTTEST):
        name = {BUILD: "build", PROCESS: "process", BOOTTEST: "boottest"}[task_name]
        return f"{name}:{args[1]}"
    return "finalize"


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
        c.manifest.set_step(step, "", "failed", reason)
        step_name, _, image = step.partition(":")
        with logfile.attached(c.topdir), logfile.step(step_name, image):
            log.error("%s: %s", c.plan.compose_id, reason)


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
            if c.status not in ENDED:
                metadata.write_summary(c.metadir, c.plan, DOOMED, failed, False)
                c.set_status(DOOMED)
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
        dont_autoretry_for=(InputError, ComposeDoomed, Reject),
        max_retries=s.max_retries, retry_backoff=s.retry_backoff,
        retry_backoff_max=s.retry_backoff_max, retry_jitter=False,
    )

    @app.task(name=BUILD, **opts)
    def build_task(topdir: str, job_key: str) -> dict:
        return build_image(topdir, job_key, lock_timeout)

    @app.task(name=PROCESS, **opts)
    def process_task(topdir: str, job_key: str) -> dict:
        return process_image(topdir, job_key, lock_timeout)

    @app.task(name=BOOTTEST, **opts)
    def boot_test_task(topdir: str, job_key: str) -> dict:
        return boot_test_image(topdir, job_key, lock_timeout)

    @app.task(name=FINALIZE, **opts)
    def finalize_task(topdir: str, mirror_root: str) -> str:
        return finalize_compose(topdir, mirror_root, lock_timeout)

    # Four parameters make Celery call it in the failing worker with (request, exc, traceback).
    app.task(name=DOOM, shared=False)(doom_compose)
