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
    from fedora_messaging import api, exceptions

    from rel_eng.errors import RelEngError
    from rel_eng.messaging.amqp_check import check_broker
    from rel_eng.messaging.consumer import bindings_and_queues, mirror_sync
    from rel_eng.messaging.publisher import broker, require_config

    config = common.load(args)
    path = require_config(config.messaging)
    check_broker(config.messaging, path)  # one line and exit 2, not a silent retry loop
    callback = mirror_sync(config, args.output)
    bindings, queues = bindings_and_queues(config.messaging)
    try:
        api.consume(callback, bindings=bindings, queues=queues)  # until SIGTERM/SIGINT
    except (exceptions.ConnectionException, exceptions.PermissionException) as exc:
        raise RelEngError(f"consuming from {broker()} stopped: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:300]}",
                          hint="check the broker and the queue's settings, then restart") from None
    return 0
