"""`rel-eng worker`: a Celery worker for this pipeline's queues (one per build host)."""

from __future__ import annotations

import socket

from rel_eng.commands import common
from rel_eng.errors import InputError
from rel_eng.config.celery import effective


def register(sub) -> None:
    p = sub.add_parser("worker", help="run a Celery worker that builds/processes/publishes composes")
    common.add_config_options(p)
    p.add_argument("--queues", help="comma-separated queues to serve, e.g. oz.x86_64,oz.i686 "
                                    "(default: every queue in [celery] queues)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="tasks run at once (default 1: one VM build per host)")
    p.add_argument("--pool", choices=("prefork", "solo", "threads"), default="prefork",
                   help="prefork (default) survives a crashing build; solo runs in-process")
    p.add_argument("--name", default=f"rel-eng@{socket.gethostname()}",
                   help="worker node name, unique per host (default rel-eng@HOSTNAME)")
    p.add_argument("--loglevel", default="INFO", help="Celery log level (default INFO)")
    p.add_argument("--events", action="store_true", help="send task events (for flower)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rel_eng.distributed import routing
    from rel_eng.distributed.broker import check_reachable
    from rel_eng.distributed.celery_app import make_app

    config = common.load(args)
    s = effective(config.celery)
    if args.queues is not None and not [q for q in args.queues.split(",") if q.strip()]:
        raise InputError(f"--queues {args.queues!r} names no queue",
                         hint=f"give comma-separated names from [celery] queues ({', '.join(s.queues)}), "
                              "or omit --queues to serve them all")
    wanted = args.queues.split(",") if args.queues else list(s.queues)
    queues = routing.check_worker_queues(s, [q.strip() for q in wanted if q.strip()],
                                         config.source)
    if not 1 <= args.concurrency <= 256:
        raise InputError(f"--concurrency must be 1..256, got {args.concurrency}")
    common.check_loglevel(args.loglevel)
    if not args.name.strip() or any(c.isspace() for c in args.name):
        raise InputError(f"--name {args.name!r} must be a non-empty node name without spaces",
                         hint="e.g. rel-eng@HOST")
    check_reachable(s, config.source)
    app = make_app(s)
    from rel_eng.schedule import beat

    beat.register(app)  # beat's tick/fire tasks land on the default (finalize) queue
    argv = ["worker", "--queues", ",".join(queues), "--concurrency", str(args.concurrency),
            "--pool", args.pool, "--hostname", args.name, "--loglevel", args.loglevel,
            # Workers need no state from each other; skipping mingle and gossip saves broker
            # round trips and startup time.
            "--without-mingle", "--without-gossip"]
    if args.events:
        argv.append("--task-events")
    app.worker_main(argv)
    return 0
