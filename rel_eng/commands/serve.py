"""`rel-eng serve [--bind 127.0.0.1:8080]`: the read-only dashboard over the compose store."""

from __future__ import annotations

import sys
from pathlib import Path

from rel_eng.commands import common
from rel_eng.config.table import rules
from rel_eng.config.web import WebConfig
from rel_eng.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a read-only web dashboard of the compose store")
    common.add_config_options(p)
    p.add_argument("--bind", metavar="HOST:PORT",
                   help="address to listen on (default [web] bind: 127.0.0.1:8080; port 0 picks a "
                        "free one)")
    p.add_argument("--output", type=Path, help="output dir holding the default SQLite store "
                                               "(default [schedule] output: ./out)")
    p.add_argument("--poll-ms", type=int, metavar="MS",
                   help="how often open pages fetch live status (default [web] poll_ms: 2000 ms)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rel_eng.store.engine import redacted
    from rel_eng.web.dashboard.app import create_app
    from rel_eng.web.dashboard.hosts import HostCheck
    from rel_eng.web.dashboard.server import bind_socket, parse_bind, serve

    config = common.load(args)
    host, port = parse_bind(args.bind or config.web.bind)  # bad input first: nothing opened yet
    poll_ms = config.web.poll_ms if args.poll_ms is None else args.poll_ms
    bound = rules(WebConfig)["poll_ms"]  # the flag takes what [web] poll_ms takes
    if not bound.low <= poll_ms <= bound.high:
        raise InputError(f"--poll-ms must be {bound.low}..{bound.high}, got {poll_ms}")
    if not config.store.enabled:
        raise InputError("the compose store is switched off", hint=f"[store] enabled in {config.source}")
    url = config.store.url_for(args.output or Path(config.schedule.output))
    engine = common.open_store(url, must_exist=True, readonly=True)
    try:
        sock = bind_socket(host, port)
        shown = sock.getsockname()
        where = f"[{shown[0]}]:{shown[1]}" if ":" in shown[0] else f"{shown[0]}:{shown[1]}"
        print(f"rel-eng serve: http://{where}/ (read-only) over {redacted(url)}",
              file=sys.stderr, flush=True)
        hosts = HostCheck(host, frozenset(h.lower() for h in config.web.allowed_hosts))
        serve(create_app(engine, config, poll_ms=poll_ms, hosts=hosts), sock,
              log_level="debug" if args.debug else "warning")
    finally:
        engine.dispose()
    return 0
