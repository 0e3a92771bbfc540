"""`rel-eng beat`: Celery beat for the weekly streams and the milestone schedule.

Start-up checks the config (streams, cron expressions, milestone order), the store and the
broker, then sends one tick at once so a firing missed while no beat ran is caught up.
"""

from __future__ import annotations

from pathlib import Path

from rel_eng.commands import common
from rel_eng.errors import ConfigError


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

    config = common.load(args)
    common.check_loglevel(args.loglevel)
    output = Path(config.schedule.output)
    schedule_db = args.schedule_db or output / "celerybeat-schedule"
    # Every check before the first write: the store below is created when it is missing.
    found = schedule_db_problems(schedule_db, "--schedule-db" if args.schedule_db else
                                 "[schedule] output")
    if found:
        raise ConfigError(found)
    s = effective(config.celery)
    check_reachable(s, config.source)
    common.open_store(beat.store_url(config)).dispose()  # the claims need it: fail now
    app = make_app(s)
    beat.configure(app, config)
    output.mkdir(parents=True, exist_ok=True)
    app.send_task(beat.TICK, args=(config.to_dict(),))  # catch up on start
    app.Beat(schedule=str(schedule_db), loglevel=args.loglevel).run()
    return 0


# The files Python's shelve (dbm) may keep for one name: Celery beat's state.
_DBM_SUFFIXES = ("", ".db", ".dat", ".dir", ".bak", ".pag")


def schedule_db_problems(path: Path, flag: str) -> list[str]:
    """Beat's state file must be creatable, and when it exists, be a dbm file: Celery deletes
    and recreates a state file it cannot open, whatever it was."""
    import dbm

    from rel_eng import preflight

    if "\0" in str(path):
        return [f"{flag} {path!r}: contains a NUL character"]
    found = preflight.writable_dir(path.parent, f"{flag} {path}: directory")
    if found:
        return found
    present = [path.with_name(path.name + sfx) for sfx in _DBM_SUFFIXES
               if path.with_name(path.name + sfx).exists()]
    if path.is_dir():
        return [f"{flag} {path}: is a directory, expected beat's state file"]
    if present and not dbm.whichdb(str(path)):
        return [f"{flag} {path}: {present[0]} exists and is not a beat state (dbm) file; beat "
                "would delete it (name a new file, or remove it yourself)"]
    return []
