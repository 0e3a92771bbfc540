"""`rel-eng release COMPOSE_ID|LABEL`: promote a staged milestone candidate to the release tree."""

from __future__ import annotations

from pathlib import Path

from rel_eng.commands import common
from rel_eng.config import MILESTONES


def register(sub) -> None:
    p = sub.add_parser("release", help="release a staged milestone candidate into the release "
                                       "tree (releases/test/<N>_<Milestone>/ or releases/<N>/)")
    p.add_argument("candidate", metavar="COMPOSE_ID|LABEL",
                   help="the candidate: its compose id, or its label (Beta-1.2)")
    p.add_argument("--release", help="release key, to pick a label among several releases")
    p.add_argument("--milestone", choices=MILESTONES, help="milestone, to pick a label")
    p.add_argument("--output", type=Path,
                   help="the candidate's output dir (default [schedule] output: ./out)")
    p.add_argument("--mirror", type=Path, help="mirror root (default OUTPUT/mirror)")
    p.add_argument("--by", help="who releases it, as recorded (default: the Unix user)")
    p.add_argument("--replace", action="store_true",
                   help="swap out the candidate released for this milestone, atomically")
    p.add_argument("--closed", action="store_true",
                   help="write the tree with its top dir closed ([release] closed_mode)")
    p.add_argument("--open", action="store_true", dest="open_",
                   help="open a release written with --closed: readable, its AMIs public, "
                        "announced")
    p.add_argument("--resume", action="store_true",
                   help="continue a release a crash or signal cut short (the same command "
                        "without it does the same: every step is keyed and skipped when done)")
    p.add_argument("--withdraw", action="store_true",
                   help="take a broken release back: its tree moved aside, its AMIs private "
                        "(or deprecated), recorded and announced")
    p.add_argument("--signed-checksums", type=Path, metavar="DIR",
                   help="CHECKSUM files signed with [signing] release_key elsewhere (a signing "
                        "server): verified against the key and the candidate, then used")
    p.add_argument("--allow-unverified", action="store_true",
                   help="release a candidate whose images no boot verified (its page says so)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="release a FINISHED_INCOMPLETE or DOOMED candidate (it says what is "
                        "missing)")
    common.add_config_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from rel_eng.errors import InputError, writing
    from rel_eng.release.run import Options, default_by, release

    config = common.load(args)
    if sum((args.open_, args.withdraw, args.closed or args.replace)) > 1:
        raise InputError("--open, --withdraw and --closed/--replace exclude each other",
                         hint="one act at a time")
    if args.open_ and (args.closed or args.replace):
        raise InputError("--open opens a release already written; it takes no --closed or "
                         "--replace", hint="run the release first, then --open")
    output = args.output or Path(config.schedule.output)
    opts = Options(args.candidate, output, mirror=args.mirror, release=args.release,
                   milestone=args.milestone, by=args.by or default_by(), replace=args.replace,
                   closed=args.closed, open=args.open_, allow_unverified=args.allow_unverified,
                   allow_incomplete=args.allow_incomplete,
                   signed_checksums=args.signed_checksums, withdraw=args.withdraw)
    with writing():
        release(config, opts)
    return 0
