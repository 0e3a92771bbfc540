"""`rel-eng ec2 publish|prune`: EC2 publishing of an existing drop, and retirement of old weeklies.

`ec2 publish` runs even when `[ec2] enabled` is false: that switch only makes `rel-eng compose`
publish by itself. AWS credentials and endpoints come from the standard AWS environment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rel_eng.commands import common


def _regions(text: str) -> list[str]:
    regions = [r.strip() for r in text.split(",") if r.strip()]
    if not regions:
        raise argparse.ArgumentTypeError("expected a comma-separated list of regions")
    return regions


MAX_DAYS = 36500  # a century: older than any AMI EC2 has


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of days") from None
    if days < 1:
        raise argparse.ArgumentTypeError("must be at least 1 day")
    if days > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_DAYS} days, got {text}")
    return days


def register(sub) -> None:
    p = sub.add_parser("ec2", help="publish a drop's EC2 images as AMIs; prune old weekly AMIs")
    ec2_sub = p.add_subparsers(dest="ec2_command", required=True, metavar="ACTION")

    pub = ec2_sub.add_parser("publish", help="upload, register, copy and share a drop's EC2 images")
    pub.add_argument("compose_dir", type=Path, help="the drop's <output>/<compose id> directory")
    pub.add_argument("--regions", type=_regions, metavar="R1,R2",
                     help="copy to these regions instead of ec2.regions (the base region is always used)")
    pub.add_argument("--mirror", type=Path,
                     help="mirror root whose staged copy of the drop gets the new README "
                          "(default: the mirror/ beside the compose dir)")
    common.add_config_options(pub)
    pub.set_defaults(func=run_publish)

    prune = ec2_sub.add_parser("prune", help="deregister weekly AMIs older than N days (dry run unless --yes)")
    prune.add_argument("--days", type=_days, help="age limit (default ec2.retention_days)")
    prune.add_argument("--yes", action="store_true", help="really deregister and delete")
    common.add_config_options(prune)
    prune.set_defaults(func=run_prune)


def run_publish(args) -> int:
    from rel_eng.publish.ec2_publish import publish_ec2

    import contextlib

    from rel_eng.compose import written
    from rel_eng.compose.model import Compose
    from rel_eng.errors import InputError

    config = common.load(args)
    try:
        recording = written.recording(Compose.load(args.compose_dir))
    except InputError:  # publish_ec2 says what is wrong with the dir
        recording = contextlib.nullcontext()
    with recording:  # ec2.json's digest, recorded as it is written
        report = publish_ec2(args.compose_dir, config, args.regions)  # logs skipped images
    for result in report.images:
        state = "public" if result.public else "private"
        amis = " ".join(f"{r}={a}" + (f" ({result.visibility[r]})" if not result.public
                                       and result.visibility.get(r, "private") != "private" else "")
                        for r, a in result.amis.items())
        print(f"{result.job.nvra}: {state} {amis}", file=sys.stderr)
    for line in report.blocked.values():  # each with the command that lifts it
        print(f"blocked: {line}", file=sys.stderr)
    print(f"wrote {report.metadata}", file=sys.stderr)
    from rel_eng.compose import record_amis, refresh_staged
    from rel_eng.store.recorder import load_recorded

    c = load_recorded(args.compose_dir)
    try:
        record_amis(c)
        drop = refresh_staged(c, args.mirror or args.compose_dir.parent / "mirror")
    finally:
        if c.recorder is not None:
            c.recorder.close()
    if drop is not None:
        print(f"updated README and metadata in {drop}", file=sys.stderr)
    return 0


def run_prune(args) -> int:
    from rel_eng.publish.ec2_prune import prune

    config = common.load(args)
    prune(config, days=args.days, yes=args.yes)
    return 0
