"""A compose as a Celery canvas, submitted from the caller and waited on with a deadline.

The canvas is the pipeline (rel_eng.pipeline), read in its declared order:

    chord([chain(<each per-image step>(image)) for each image], chain(<each per-compose step>))

today chain(build -> process -> boottest) per image, then finalize; every task is the one
generic step task (rel_eng.step.<name>), on the queue its step's [celery] route names. An
errback on the body ends the compose DOOMED when any task gave up. Finalize runs its sub-steps (metadata, checksum, EC2,
README, staging, verify, share) exactly as the in-process path does.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from celery import Celery, chain, chord
from celery.canvas import Signature

from rel_eng import metadata
from rel_eng.compose import (DOOMED, FINISHED, INCOMPLETE, TERMINATED, Compose, ComposeDoomed,
                             Terminated)
from rel_eng.compose.allocate import allocate_and_create
from rel_eng.config import Config
from rel_eng.distributed import routing, tasks
from rel_eng.distributed.broker import check_reachable
from rel_eng.distributed.celery_app import make_app
from rel_eng.config.celery import CelerySettings, effective
from rel_eng.redact import redact
from rel_eng.errors import RelEngError
from rel_eng.atomic import atomic_write
from rel_eng import pipeline
from rel_eng.pipeline import Step

CELERY_RECORD = "celery.json"  # in work/: the ids of the canvas, for status and resume


def step_queue(s: CelerySettings, step: Step, builder: str, job=None) -> str:
    """The queue of one step: builds by builder and arch, every other step by its route."""
    if step.route == "build":
        return routing.build_queue(s, builder, job)
    return routing.step_queue(s, step.route)


def compose_canvas(app: Celery, c: Compose, mirror_root: Path, s: CelerySettings) -> Signature:
    topdir = str(c.topdir.resolve())

    def sig(step: Step, target: str, job=None) -> Signature:
        return app.signature(tasks.task_name(step.name), args=(topdir, target), immutable=True,
                             queue=step_queue(s, step, c.plan.builder, job))

    header = [chain(*(sig(step, job.key, job) for step in pipeline.IMAGE_STEPS))
              for job in c.plan.images]
    mirror = str(mirror_root.resolve())
    body_steps = [sig(step, mirror) for step in pipeline.COMPOSE_STEPS]
    body = body_steps[0] if len(body_steps) == 1 else chain(*body_steps)
    last = pipeline.COMPOSE_STEPS[-1]
    body.link_error(app.signature(tasks.DOOM, args=(topdir,),
                                  queue=step_queue(s, last, c.plan.builder)))
    return chord(header, body)


def submit_compose(config: Config, output: Path, release: str, milestone: str | None,
                   date: dt.date, label: str | None = None, builder: str | None = None,
                   mirror_root: Path | None = None) -> str:
    """Check, allocate and create the compose here, then queue its canvas; returns the id."""
    s = effective(config.celery)
    check_reachable(s, config.source)  # before anything is written
    output = output.resolve()
    from rel_eng.store.recorder import recorder_for  # late: SQLAlchemy only when recording

    def routable(plan):
        for job in plan.images:
            routing.build_queue(s, plan.builder, job)
        from rel_eng.builders import BUILDERS

        check = getattr(BUILDERS[plan.builder], "preflight", None)  # e.g. koji: target, tag, pkgs
        if check:
            check(plan, config)

    recorder = recorder_for(config, output)
    try:
        # Inputs checked first; respin allocated and the dir created under the output's lock.
        c = allocate_and_create(config, output, release, milestone, date, label=label,
                                builder=builder, mirror_root=mirror_root, recorder=recorder,
                                check=routable)
    finally:
        if recorder is not None:
            recorder.close()
    plan = c.plan
    app = make_app(s)
    try:
        try:
            result = compose_canvas(app, c, mirror_root or output / "mirror", s).apply_async()
        except Exception as exc:  # kombu/redis errors after bounded publish retries
            reason = f"could not queue its tasks on {redact(s.broker_url)}: {exc}"
            metadata.write_summary(c.metadir, c.plan, DOOMED, {"compose": reason}, False)
            c.set_status(DOOMED, c.recorder)  # nothing runs it: say so instead of sitting at STARTED
            raise RelEngError(f"compose {c.plan.compose_id}: {reason}",
                              hint=f"rel-eng compose --resume {c.topdir} runs it here") from exc
        record = {"finalize_task": result.id,
                  "header_group": result.parent.id if result.parent is not None else "",
                  "broker": redact(s.broker_url)}
        del result
        _forget_results(app)
        atomic_write(c.topdir / "work" / CELERY_RECORD, json.dumps(record, indent=2) + "\n")
    finally:
        app.close()
    return plan.compose_id


def _forget_results(app: Celery) -> None:
    """Drop the result subscriptions Celery opened while sending.

    The submitter never waits on Celery results (wait_compose reads the compose's STATUS), and
    unsubscribing later, from AsyncResult.__del__ after the app or Redis is gone, only errors.
    """
    consumer = getattr(app.backend, "result_consumer", None)
    if consumer is not None:
        consumer.subscribed_to.clear()
        consumer.stop()


def wait_compose(topdir: Path, timeout: float, poll: float = 1.0) -> str:
    """Block until the compose ends, at most `timeout` s. Returns FINISHED or FINISHED_INCOMPLETE.

    DOOMED raises ComposeDoomed with the recorded reasons, TERMINATED raises Terminated, and a
    compose still running at the deadline raises RelEngError naming it.
    """
    c = Compose.load(topdir)
    deadline = time.monotonic() + timeout
    while True:  # bounded: leaves at the deadline below
        status = c.read_status()
        if status in (FINISHED, INCOMPLETE):
            return status
        if status == DOOMED:
            summary = metadata.read_json(c.metadir / metadata.SUMMARY) or {}
            failed = summary.get("failed_images", {})
            raise ComposeDoomed(
                f"compose {c.plan.compose_id} is DOOMED: "
                + ("; ".join(f"{k}: {v}" for k, v in sorted(failed.items())) or "see its logs"),
                hint=f"see {c.logdir} and the worker logs; nothing was staged")
        if status == TERMINATED:
            raise Terminated(f"compose {c.plan.compose_id} was terminated")
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(poll, left))
    raise RelEngError(f"compose {c.plan.compose_id} is still {c.read_status() or 'unknown'} after "
                      f"{timeout:.0f}s", hint="check that workers serve its queues "
                      "(rel-eng worker --queues ...)")
