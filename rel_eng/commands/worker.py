"""`rel-eng worker`: a Celery worker for this pipeline's queues (one per build host)."""

from __future__ import annotations

import socket

from rel_eng.commands import common
from rel_eng.distributed.settings import effective


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
    wanted = args.queues.split(",") if args.queues else list(s.queues)
    queues = routing.check_worker_queues(s, [q.strip() for q in wanted if q.strip()],
                                         config.source)
    if args.concurrency < 1:
        from rel_eng.errors import InputError

        raise InputError(f"--concurrency must be at least 1, got {args.concurrency}")
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
