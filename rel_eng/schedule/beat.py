"""Celery beat wiring: a crontab entry per weekly stream, a periodic tick for milestones, and the
two tasks they send. The tasks are thin: they rebuild the config from the message and call
Dispatcher, which claims each firing in the store before queueing it.

Beat passes the config it was started with in every message, so beat and workers agree on the
streams; a changed streams file takes effect when beat restarts (and is validated then).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from rel_eng.config import Config
from rel_eng.errors import InputError
from rel_eng.schedule import cron
from rel_eng.schedule.dispatch import Dispatcher, Submit

log = logging.getLogger(__name__)

TICK = "rel_eng.schedule.tick"
FIRE_STREAM = "rel_eng.schedule.fire_stream"
UTC_NAMES = (None, "UTC", "Etc/UTC")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def beat_schedule(config: Config) -> dict:
    """`beat_schedule` for Celery: crontab per stream (UTC), and the milestone tick."""
    from celery.schedules import crontab, schedule

    args = config.to_dict()
    entries = {
        f"weekly-{s.name}": {"task": FIRE_STREAM, "args": (args, s.name),
                             "schedule": crontab(**cron.celery_fields(s.cron))}
        for s in config.schedule.streams
    }
    entries["milestones"] = {"task": TICK, "args": (args,),
                             "schedule": schedule(dt.timedelta(seconds=config.schedule.tick_s))}
    return entries


def store_url(config: Config, output: Path | None = None) -> str:
    if not config.store.enabled:
        raise InputError("the scheduler needs the compose store to claim firings",
                         hint=f"set [store] enabled = true in {config.source}")
    return config.store.url_for(Path(output or config.schedule.output))


def dispatcher(config: Config, engine, submit: Submit | None = None, output: Path | None = None,
               mirror_root: Path | None = None) -> Dispatcher:
    """A Dispatcher over the store's ledger; queueing goes to Celery unless `submit` is given."""
    from rel_eng.store.firings import FiringLedger

    if submit is None:
        from rel_eng.distributed.canvas import submit_compose
        from rel_eng.distributed.liveness import checked

        submit = checked(submit_compose)  # a queue without a worker: the claim is released
    return Dispatcher(config, FiringLedger(engine), submit, output, mirror_root)


def run_tick(config_data: dict, submit: Submit | None = None,
             now: dt.datetime | None = None) -> list[dict]:
    return _with_dispatcher(config_data, submit,
                            lambda d: [_fired(f) for f in d.tick(now or utcnow())])


def run_fire_stream(config_data: dict, name: str, submit: Submit | None = None,
                    now: dt.datetime | None = None) -> dict | None:
    return _with_dispatcher(config_data, submit,
                            lambda d: _fired(d.fire_stream(name, now or utcnow())))


def _with_dispatcher(config_data: dict, submit: Submit | None, fn):
    from rel_eng.store.engine import open_engine

    config = Config.from_dict(config_data)
    engine = open_engine(store_url(config))
    try:
        return fn(dispatcher(config, engine, submit))
    finally:
        flush_outbox(config, engine)
        engine.dispose()


def flush_outbox(config: Config, engine) -> None:
    """Every tick also sends what the outbox still holds (a broker that was down, a crash)."""
    from rel_eng.messaging.publisher import Publisher, require_config, sending
    from rel_eng.store.outbox import Flusher

    if not sending(config):
        return
    try:
        require_config(config.messaging)
        result = Flusher(engine, Publisher(config.messaging)).flush()
    except Exception as exc:  # a missing config file, the store: the tick itself went fine
        log.warning("outbox not flushed: %s", str(exc).splitlines()[0])
        return
    if result.error:
        log.warning("outbox: %d pending: %s", result.pending, result.error)


def _fired(fired) -> dict | None:
    if fired is None:
        return None
    return {"kind": fired.firing.kind, "subject": fired.firing.subject, "slot": fired.firing.slot,
            "compose_id": fired.compose_id}


def register(app) -> None:
    """Register the tick and fire_stream tasks on `app` (workers and beat alike)."""
    # acks_late: a tick lost with its worker runs again, and the claims make that harmless.
    app.task(name=TICK, acks_late=True, reject_on_worker_lost=True)(run_tick)
    app.task(name=FIRE_STREAM, acks_late=True, reject_on_worker_lost=True)(run_fire_stream)


def configure(app, config: Config) -> None:
    """Make `app` a beat for `config`: check it keeps UTC, register the tasks, set the schedule."""
    tz = app.conf.timezone
    if tz not in UTC_NAMES or not app.conf.enable_utc:
        raise InputError(f"Celery timezone is {tz!r}: the stream cron expressions are UTC",
                         hint="leave Celery's timezone unset (UTC)")
    register(app)
    app.conf.beat_schedule = beat_schedule(config)
