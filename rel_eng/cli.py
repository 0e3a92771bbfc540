"""`rel-eng` entry point. Each subcommand lives in rel_eng/commands/<name>.py with `register()`.

Whatever goes wrong, the user sees one line on stderr and no traceback unless --debug. The exit
code says which kind of failure it was (rel_eng.errors; the README's table): bad input exits 2,
failed work 1, a signal 128 + its number. An OSError that reaches here unconverted exits 2: the
parts of a command that write turn theirs into WriteFailed (exit 1) first (errors.writing). A
bug exits 1 and says to rerun with --debug.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from rel_eng import redact
from rel_eng.errors import ConfigError, RelEngError, one_line, os_error_line

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
    "rel_eng.commands.verify",
    "rel_eng.commands.messages",
    "rel_eng.commands.consume",
    "rel_eng.commands.serve",
    "rel_eng.commands.boot_test",
    "rel_eng.commands.release",
]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at --help (not usage + error)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    redact.install()  # before any record: URL passwords never reach a log or a traceback
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here, not at exit
        return code
    except BrokenPipeError:
        # The reader (e.g. `| head`) has what it wanted; drop the rest quietly.
        _silence_stdout()
        return 0
    except ConfigError as exc:
        if args.debug:
            raise
        for problem in exc.problems:
            print(f"rel-eng: error: {one_line(redact.redact(problem))}", file=sys.stderr)
        return exc.exit_code
    except RelEngError as exc:
        if args.debug:
            raise
        print(f"rel-eng: error: {one_line(redact.redact(str(exc)))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rel-eng: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # unconverted: raised before the command wrote anything
        if args.debug:
            raise
        print(f"rel-eng: error: {one_line(os_error_line(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, the traceback behind --debug
        if args.debug:
            raise
        text = one_line(str(exc))
        print(f"rel-eng: error: internal error: {type(exc).__name__}: {text} "
              "(rerun with --debug for the traceback, and report it)", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
