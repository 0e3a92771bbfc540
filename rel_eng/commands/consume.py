"""`rel-eng consume`: run the mirror sync command for every "drop staged" message."""

from __future__ import annotations

from pathlib import Path

from rel_eng.commands import common


def register(sub) -> None:
    p = sub.add_parser("consume", help='run [messaging] sync_command for each "drop staged" '
                                       "message, once per message id (see workers/)")
    common.add_config_options(p)
    p.add_argument("--output", type=Path, help="output dir holding the default SQLite store, "
                                               "where handled ids are kept (default ./out)")
    p.set_defaults(func=run)


def run(args) -> int:
    from fedora_messaging import api

    from rel_eng.messaging.consumer import bindings_and_queues, mirror_sync
    from rel_eng.messaging.publisher import require_config

    config = common.load(args)
    require_config(config.messaging)
    callback = mirror_sync(config, args.output)
    bindings, queues = bindings_and_queues(config.messaging)
    api.consume(callback, bindings=bindings, queues=queues)  # until SIGTERM/SIGINT
    return 0
