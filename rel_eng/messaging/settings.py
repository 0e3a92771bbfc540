"""The `[messaging]` table of the pipeline config. Imports nothing from rel_eng (config.py imports it).

The broker, credentials, TLS keys and topic prefix live in fedora-messaging's own config file
(FEDORA_MESSAGING_CONF); this table only names that file and says what rel-eng does with it.
"""

from __future__ import annotations

import dataclasses
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FEDORA_MESSAGING_CONF = "/etc/fedora-messaging/config.toml"
# What the consumer's sync command may refer to, from the "drop staged" message.
SYNC_FIELDS = ("mirror_path", "compose_id", "label", "message_id")
_NUMBERS = {"publish_timeout_s": (0.1, 600.0), "sync_timeout_s": (1.0, 7 * 86400.0),
            "retry_delay_s": (0.0, 3600.0)}


@dataclass(frozen=True)
class MessagingConfig:
    enabled: bool = False  # publish the outbox; off, messages are still recorded
    config_file: str = ""  # fedora-messaging config; "" = $FEDORA_MESSAGING_CONF or /etc/...
    publish_timeout_s: float = 10.0  # per message; a broker that does not answer leaves it pending
    location_url: str = ""  # base URL of the output dir, for the compose's `location`
    sync_command: tuple[str, ...] = ()  # `rel-eng consume`: argv, {mirror_path} etc. filled in
    sync_timeout_s: float = 3600.0
    retry_delay_s: float = 30.0  # a failed sync waits this long before the message is requeued
    queue: str = "rel-eng-mirror-sync"  # the consumer's durable queue

    def fedora_messaging_conf(self) -> Path:
        return Path(self.config_file or os.environ.get("FEDORA_MESSAGING_CONF", FEDORA_MESSAGING_CONF))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MessagingConfig":
        return cls(**{**data, "sync_command": tuple(data.get("sync_command", ()))})


def parse_messaging(table: Any, problems, base_dir: Path, where: str = "messaging.") -> MessagingConfig:
    """`[messaging]` -> MessagingConfig; mistakes go to `problems` (rel_eng.config._Problems)."""
    base = MessagingConfig()
    if not isinstance(table, dict):
        problems.add(where.rstrip("."), "expected a table")
        return base
    problems.unknown(table, {f.name for f in dataclasses.fields(MessagingConfig)}, where)
    values: dict[str, Any] = {}
    values["enabled"] = problems.take(table, "enabled", bool, base.enabled, where)
    for key in ("config_file", "location_url", "queue"):
        values[key] = problems.take(table, key, str, getattr(base, key), where)
    for key, (low, high) in _NUMBERS.items():
        value = problems.take(table, key, (int, float), getattr(base, key), where)
        if isinstance(value, bool) or not low <= value <= high:
            problems.add(f"{where}{key}", f"must be {low:g}..{high:g}, got {value!r}")
            value = getattr(base, key)
        values[key] = float(value)
    if values["config_file"]:
        path = Path(values["config_file"])
        path = path if path.is_absolute() else (base_dir / path).resolve()
        if not path.is_file():
            problems.add(f"{where}config_file", f"{path} does not exist (fedora-messaging's "
                                                "config: amqp_url, topic_prefix, [tls])")
        values["config_file"] = str(path)
    url = values["location_url"]
    if url and not url.startswith(("http://", "https://")):
        problems.add(f"{where}location_url", f"'{url}' must be an http(s) URL")
    if url and "@" in url.split("//", 1)[-1].split("/", 1)[0]:
        problems.add(f"{where}location_url", "must not hold credentials")
    if not values["queue"] or any(c.isspace() for c in values["queue"]):
        problems.add(f"{where}queue", "must be a non-empty name without spaces")
    values["sync_command"] = _sync_command(table, problems, where)
    return MessagingConfig(**values)


def _sync_command(table: dict, problems, where: str) -> tuple[str, ...]:
    argv = problems.take(table, "sync_command", list, [], where)
    if not all(isinstance(a, str) for a in argv):
        problems.add(f"{where}sync_command", "must be a list of strings (argv; no shell)")
        return ()
    if argv and not argv[0]:
        problems.add(f"{where}sync_command", "the program (first item) is empty")
    for arg in argv:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(arg) if f is not None}
        except ValueError as exc:
            problems.add(f"{where}sync_command", f"'{arg}': {exc} (write {{{{ and }}}} for braces)")
            continue
        unknown = sorted(n for n in names if n not in SYNC_FIELDS)
        if unknown:
            problems.add(f"{where}sync_command", f"'{arg}' names unknown field(s) "
                         f"{', '.join(unknown)} (known: {', '.join(SYNC_FIELDS)})")
    return tuple(argv)
