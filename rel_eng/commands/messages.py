"""`rel-eng messages [--pending] [--json]` and `rel-eng messages flush`: the outbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rel_eng.commands import common
from rel_eng.errors import InputError, RelEngError


def register(sub) -> None:
    p = sub.add_parser("messages", help="list the messages of the outbox, or send the pending "
                                        "ones (flush)")
    common.add_config_options(p)
    p.add_argument("action", nargs="?", choices=("list", "flush"), default="list",
                   help="list (default) or flush: send what is pending, in order")
    p.add_argument("--output", type=Path, help="output dir holding the default SQLite store "
                                               "(default [schedule] output: ./out)")
    p.add_argument("--pending", action="store_true", help="only messages not sent yet")
    p.add_argument("--topic", help="only this topic (e.g. rel_eng.drop.staged.v1)")
    p.add_argument("--compose", metavar="COMPOSE", help="only this compose's messages")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from rel_eng.messaging.bodies import TOPICS
    from rel_eng.store import outbox

    if args.topic and args.topic not in TOPICS:
        raise InputError(f"--topic: unknown topic '{args.topic}'",
                         hint=f"use one of {', '.join(TOPICS)}")
    config = common.load(args)
    if not config.store.enabled:
        raise InputError("the compose store is switched off: it holds the outbox",
                         hint=f"[store] enabled in {config.source}")
    url = config.store.url_for(args.output or Path(config.schedule.output))
    if args.action == "flush":
        return _flush(config, url, args.json)
    engine = common.open_store(url, must_exist=True)
    try:
        rows = outbox.listing(engine, args.pending, args.topic, args.compose)
    finally:
        engine.dispose()
    if args.json:
        json.dump(rows, sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    if not rows:
        print("no messages" + (" pending" if args.pending else ""))
    for r in rows:
        error = f"  ({r['attempts']} attempt(s): {r['last_error']})" if r["last_error"] else ""
        print(f"{r['seq']:>5} {r['state']:<7} {r['id']}  {r['topic']:<38} {_summary(r)}{error}")
    return 0


def _summary(row: dict) -> str:
    try:
        import logging

        from rel_eng.messaging.publisher import build_message

        # Rendering needs no broker config; fedora-messaging would say it found none.
        logging.getLogger("fedora_messaging.config").setLevel(logging.WARNING)

        return build_message(row["topic"], row["body"], row["id"]).summary
    except Exception:  # the schema package missing or older: the plain compose id will do
        return row["compose_id"]


def _flush(config, url: str, as_json: bool) -> int:
    from rel_eng.messaging.publisher import Publisher, broker, require_config, sending
    from rel_eng.store import outbox

    if not sending(config):
        raise InputError("messaging is switched off: nothing is sent",
                         hint=f"set [messaging] enabled = true in {config.source}")
    require_config(config.messaging)
    engine = common.open_store(url, must_exist=True)
    try:
        result = outbox.Flusher(engine, Publisher(config.messaging)).flush()
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps({"sent": result.sent, "pending": result.pending, "error": result.error,
                          "busy": result.busy}, sort_keys=True))
    else:
        print(f"sent {result.sent} message(s) to {broker()}; {result.pending} pending"
              + (" (another flush is running)" if result.busy else ""))
    if result.error:
        raise RelEngError(f"flush stopped: {result.error}",
                          hint="the message and those after it stay pending; flush again later")
    return 0
