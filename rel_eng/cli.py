"""`rel-eng` entry point. Each subcommand lives in rel_eng/commands/<name>.py with `register()`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from rel_eng.errors import ConfigError, RelEngError

COMMAND_MODULES = [
    "rel_eng.commands.plan",
    "rel_eng.commands.compose",
    "rel_eng.commands.validate",
    "rel_eng.commands.worker",
    "rel_eng.commands.ec2",
    "rel_eng.commands.status",
    "rel_eng.commands.schedule",
    "rel_eng.commands.trigger",
    "rel_eng.commands.beat",
    "rel_eng.commands.boot_test",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rel-eng",
        description="Fedora cloud image drops: plan, compose, publish to EC2, stage for the mirrors, schedule.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        if args.debug:
            raise
        for problem in exc.problems:
            print(f"rel-eng: error: {problem}", file=sys.stderr)
        return exc.exit_code
    except RelEngError as exc:
        if args.debug:
            raise
        print(f"rel-eng: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rel-eng: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
