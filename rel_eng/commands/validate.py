"""`rel-eng validate`: check config, kickstarts and TDLs; exit 2 on invalid input."""

from __future__ import annotations

import sys
from pathlib import Path

from rel_eng.commands import common
from rel_eng.errors import one_line


def register(sub) -> None:
    p = sub.add_parser("validate", help="check config, release definitions, kickstarts and TDLs")
    common.add_config_options(p)
    p.add_argument("--output", type=Path,
                   help="output dir a compose will write (default [schedule] output)")
    p.add_argument("--mirror", type=Path, help="mirror root (default [schedule] mirror, or OUTPUT/mirror)")
    p.add_argument("--keys", action="store_true",
                   help="print every config key with its default, type, bounds and help (a TOML "
                        "file of the defaults), then stop")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.keys:
        from rel_eng.config.reference import render

        sys.stdout.write(render())
        return 0
    config = common.load(args)
    from rel_eng import preflight, validate  # late: the checks' libraries, once the config parses

    found, checked = validate.problems(config)
    output = args.output or Path(config.schedule.output)
    mirror = args.mirror or (Path(config.schedule.mirror) if config.schedule.mirror else None)
    found += preflight.problems(config, output=output, mirror=mirror)
    checked.append(f"output {output}, mirror {mirror or output / 'mirror'}"
                   + (f", signing key {config.signing.key}" if config.signing.enabled else "")
                   + (f", koji profile {config.koji.profile}" if config.builder == "koji" else ""))
    for line in checked:
        print(f"checked: {line}")
    for line in dict.fromkeys(found):  # one kickstart fails alike for every release
        print(f"rel-eng: error: {one_line(line)}", file=sys.stderr)
    return 2 if found else 0
