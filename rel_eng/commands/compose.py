"""`rel-eng compose`: run the whole pipeline in-process."""

from __future__ import annotations

from pathlib import Path

from rel_eng.commands import common
from rel_eng.compose import run_compose
from rel_eng.progress import Progress


def register(sub) -> None:
    p = sub.add_parser("compose", help="build, post-process, publish and stage one drop")
    common.add_config_options(p)
    common.add_drop_options(p)
    p.add_argument("--output", type=Path, default=Path("out"), help="output dir (default ./out)")
    p.add_argument("--mirror", type=Path, help="mirror root (default OUTPUT/mirror)")
    p.add_argument("--label", help="explicit milestone label, e.g. Beta-1.3 (default: next respin)")
    p.set_defaults(func=run)


def run(args) -> int:
    config = common.load(args)
    common.check_builder(config, args.builder)
    c = run_compose(config, args.output, args.release, args.milestone, common.date_of(args),
                    label=args.label, builder=args.builder, mirror_root=args.mirror,
                    progress=Progress())
    print(f"{c.plan.compose_id} {c.status} {c.topdir}")
    return 0
