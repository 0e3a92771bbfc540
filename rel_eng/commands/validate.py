"""`rel-eng validate`: check config, kickstarts and TDLs; exit 2 on invalid input."""

from __future__ import annotations

import sys

from rel_eng import validate
from rel_eng.commands import common


def register(sub) -> None:
    p = sub.add_parser("validate", help="check config, release definitions, kickstarts and TDLs")
    common.add_config_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    config = common.load(args)
    found, checked = validate.problems(config)
    for line in checked:
        print(f"checked: {line}")
    for line in found:
        print(f"rel-eng: error: {line}", file=sys.stderr)
    return 2 if found else 0
