"""`rel-eng compose`: run the whole pipeline in-process."""

from __future__ import annotations

from pathlib import Path

from rel_eng.commands import common
from rel_eng.errors import ConfigError, InputError


def register(sub) -> None:
    p = sub.add_parser("compose", help="build, post-process, publish and stage one drop")
    common.add_config_options(p)
    common.add_drop_options(p, required=False)  # --resume needs neither; checked in run()
    p.add_argument("--output", type=Path, default=Path("out"), help="output dir (default ./out)")
    p.add_argument("--mirror", type=Path, help="mirror root (default OUTPUT/mirror)")
    p.add_argument("--label", help="explicit milestone label, e.g. Beta-1.3 (default: next respin)")
    p.add_argument("--queue", action="store_true",
                   help="submit to the Celery workers ([celery] in the config) instead of running here")
    p.add_argument("--resume", metavar="COMPOSE",
                   help="continue a crashed compose (its dir, or its id under --output) from its "
                        "last finished step")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.resume:
        return _resume(args)
    if not args.release or not (args.milestone or args.weekly):
        raise InputError("--release and one of --milestone/--weekly are required",
                         hint="or --resume COMPOSE to continue one")
    if args.weekly and args.label is not None:
        raise InputError("--label names a milestone respin; a --weekly drop has none",
                         hint="drop --label, or use --milestone")
    if args.label is not None:  # refused before anything (a store included) is opened
        from rel_eng.compose.allocate import parse_label

        parse_label(args.label, args.milestone)
    date = common.date_of(args)
    config = common.load(args)
    # Late: the compose package and SQLAlchemy load once the flags and the config are good, so
    # that `--help` and a refusal of bad input stay quick.
    from rel_eng import preflight
    from rel_eng.compose import run_compose
    from rel_eng.progress import Progress
    from rel_eng.store.recorder import recorder_for

    common.check_builder(config, args.builder, args.koji_profile)
    from rel_eng.messaging.publisher import check_ready  # late: fedora-messaging when sending

    check_ready(config)
    found = preflight.problems(config, output=args.output, mirror=args.mirror,
                               builder=args.builder, drops=[(args.release, args.milestone)])
    if found:
        raise ConfigError(found)
    if args.queue:
        from rel_eng.distributed.broker import check_reachable
        from rel_eng.config.celery import effective
        from rel_eng.distributed.canvas import submit_compose
        from rel_eng.distributed.liveness import check_workers

        check_reachable(effective(config.celery), config.source)
        check_workers(config, args.release, args.milestone, args.builder)  # nothing queued yet

        cid = submit_compose(config, args.output, args.release, args.milestone,
                             date, label=args.label, builder=args.builder,
                             mirror_root=args.mirror)
        print(f"{cid} QUEUED {args.output.resolve() / cid}")
        return 0
    recorder = recorder_for(config, args.output)
    try:
        c = run_compose(config, args.output, args.release, args.milestone, date,
                        label=args.label, builder=args.builder, mirror_root=args.mirror,
                        progress=Progress(), recorder=recorder)
    finally:
        if recorder is not None:
            recorder.close()
    print(f"{c.plan.compose_id} {c.read_status()} {c.topdir}")
    return 0


# Flags that choose what to compose: a resume already knows (dest names by flag).
_RESUME_IGNORES = {"release": "release", "milestone": "milestone", "weekly": "weekly",
                   "label": "label", "date": "date", "allow-future-date": "allow_future_date",
                   "builder": "builder",
                   "koji-profile": "koji_profile"}


def _resume(args) -> int:
    from rel_eng import preflight, runner
    from rel_eng.compose import FINISHED, INCOMPLETE, STARTED, Compose, required_tools, resume
    from rel_eng.progress import Progress
    from rel_eng.store.recorder import load_recorded

    if args.queue:
        raise InputError("--resume runs the compose here; it cannot be combined with --queue")
    for flag, value in _RESUME_IGNORES.items():
        if getattr(args, value) not in (None, False):
            raise InputError(f"--resume continues the compose as it was planned; it would ignore "
                             f"--{flag}", hint=f"drop --{flag}, or start a new compose with it")
    for flag in ("config", "releases"):
        if getattr(args, flag) is not None:
            raise InputError(f"--resume uses the config the compose was created with (its "
                             f"work/config.json), not --{flag}",
                             hint=f"drop --{flag}; to change the config, start a new compose "
                                  "(its respin counts up)")
    given = Path(args.resume)
    topdir = given if (given / "work" / "plan.json").is_file() else args.output / args.resume
    c = Compose.load(topdir)  # its own config, as it was created with
    from rel_eng.manifest import Manifest

    Manifest(topdir).check()  # damaged: one line now, before anything is written
    if c.read_status() in (FINISHED, INCOMPLETE):
        print(f"{c.plan.compose_id} {c.read_status()} {topdir} (already ended: nothing to resume)")
        return 0
    runner.require_all(required_tools(c.config, c.plan.builder))
    found = preflight.problems(c.config, output=None, mirror=args.mirror or topdir.parent / "mirror",
                               builder=c.plan.builder,
                               drops=[(c.plan.release_key, c.plan.milestone)])
    if found:
        raise ConfigError(found)
    c = load_recorded(topdir)
    try:
        c.set_status(STARTED, c.recorder)  # recorded: the history shows when it was resumed
        resume(c, args.mirror or topdir.parent / "mirror", Progress())
    finally:
        if c.recorder is not None:
            c.recorder.close()
    print(f"{c.plan.compose_id} {c.read_status()} {topdir}")
    return 0
