"""`rel-eng trigger --release 19 --milestone Beta`: queue a milestone compose by hand."""

from __future__ import annotations

from pathlib import Path

from rel_eng import preflight
from rel_eng.commands import common
from rel_eng.errors import ConfigError
from rel_eng.config import MILESTONES


def register(sub) -> None:
    p = sub.add_parser("trigger", help="queue a milestone compose now (the respin counts up)")
    common.add_config_options(p)
    p.add_argument("--release", required=True, help="release key, e.g. 19")
    p.add_argument("--milestone", required=True, choices=MILESTONES)
    p.add_argument("--output", type=Path, help="output dir (default [schedule] output)")
    p.add_argument("--mirror", type=Path, help="mirror root (default [schedule] mirror, or OUTPUT/mirror)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rel_eng.schedule.beat import dispatcher, store_url, utcnow

    config = common.load(args)
    config.release(args.release)  # an unknown release is refused before the store is opened
    output = args.output or Path(config.schedule.output)
    mirror = args.mirror or (Path(config.schedule.mirror) if config.schedule.mirror else None)
    found = preflight.problems(config, output=output, mirror=mirror,
                               drops=[(args.release, args.milestone)])
    if found:
        raise ConfigError(found)
    from rel_eng.config.celery import effective
    from rel_eng.distributed.broker import check_reachable

    check_reachable(effective(config.celery), config.source)  # before the store is created
    from rel_eng.distributed.liveness import check_workers

    check_workers(config, args.release, args.milestone)  # a queue nobody serves: nothing queued
    engine = common.open_store(store_url(config, args.output))
    try:
        from rel_eng.distributed.canvas import submit_compose  # the workers were asked above

        d = dispatcher(config, engine, submit_compose, output=args.output,
                       mirror_root=args.mirror)
        compose_id = d.trigger(args.release, args.milestone, utcnow())
    finally:
        engine.dispose()
    print(f"{compose_id} QUEUED {d.output / compose_id}")
    return 0
