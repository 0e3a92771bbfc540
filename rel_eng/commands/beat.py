"""`rel-eng beat`: Celery beat for the weekly streams and the milestone schedule.

Start-up checks the config (streams, cron expressions, milestone order), the store and the
broker, then sends one tick at once so a firing missed while no beat ran is caught up.
"""

from __future__ import annotations

from pathlib import Path

from rel_eng.commands import common


def register(sub) -> None:
    p = sub.add_parser("beat", help="run Celery beat: weekly composes and milestone firings")
    common.add_config_options(p)
    p.add_argument("--schedule-db", type=Path,
                   help="beat's own state file (default [schedule] output/celerybeat-schedule)")
    p.add_argument("--loglevel", default="INFO", help="Celery log level (default INFO)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rel_eng.distributed.broker import check_reachable
    from rel_eng.distributed.celery_app import make_app
    from rel_eng.config.celery import effective
    from rel_eng.schedule import beat
    from rel_eng.store.engine import open_engine

    config = common.load(args)
    common.check_loglevel(args.loglevel)
    open_engine(beat.store_url(config)).dispose()  # the claims need it: fail now, not at a firing
    s = effective(config.celery)
    check_reachable(s, config.source)
    app = make_app(s)
    beat.configure(app, config)
    output = Path(config.schedule.output)
    output.mkdir(parents=True, exist_ok=True)
    app.send_task(beat.TICK, args=(config.to_dict(),))  # catch up on start
    app.Beat(schedule=str(args.schedule_db or output / "celerybeat-schedule"),
             loglevel=args.loglevel).run()
    return 0
