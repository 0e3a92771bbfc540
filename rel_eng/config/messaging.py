"""`[messaging]`: what rel-eng does with fedora-messaging (rel_eng.messaging).

The broker, credentials, TLS keys and topic prefix live in fedora-messaging's own config file
(FEDORA_MESSAGING_CONF); this table only names that file and says what rel-eng does with it.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rel_eng.config.problems import Problems
from rel_eng.config.table import NOTHING, Section, setting

FEDORA_MESSAGING_CONF = "/etc/fedora-messaging/config.toml"
# What the consumer's sync command may refer to, from the "drop staged" message.
SYNC_FIELDS = ("mirror_path", "compose_id", "label", "message_id")


def _sync_command(argv: Any, problems: Problems, key: str, base_dir) -> Any:
    if not isinstance(argv, list):
        problems.add(key, f"expected list, got {type(argv).__name__} {argv!r}")
        return NOTHING
    if not all(isinstance(a, str) for a in argv):
        problems.add(key, "must be a list of strings (argv; no shell)")
        return NOTHING
    if argv and not argv[0]:
        problems.add(key, "the program (first item) is empty")
    for arg in argv:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(arg) if f is not None}
        except ValueError as exc:
            problems.add(key, f"'{arg}': {exc} (write {{{{ and }}}} for braces)")
            continue
        unknown = sorted(n for n in names if n not in SYNC_FIELDS)
        if unknown:
            problems.add(key, f"'{arg}' names unknown field(s) "
                              f"{', '.join(unknown)} (known: {', '.join(SYNC_FIELDS)})")
    return tuple(argv)


def _http_url(url: str) -> str | None:
    if url and not url.startswith(("http://", "https://")):
        return f"'{url}' must be an http(s) URL"
    from rel_eng.redact import credential_params

    if url and ("@" in url.split("//", 1)[-1].split("/", 1)[0] or credential_params(url)):
        return "must not hold credentials"
    return None


def _queue(name: str) -> str | None:
    return "must be a non-empty name without spaces" if not name or any(c.isspace() for c in name) else None


def _dead_letter_queue(name: str) -> str | None:
    return _queue(name) if name else None


@dataclass(frozen=True)
class MessagingConfig(Section):
    enabled: bool = setting(False, "publish the outbox; off, messages are still recorded")
    config_file: str = setting("", 'fedora-messaging config; "" = $FEDORA_MESSAGING_CONF or /etc/...',
                               path="relative")
    publish_timeout_s: float = setting(10.0, "per message; a broker that does not answer leaves it "
                                       "pending", low=0.1, high=600.0)
    location_url: str = setting("", "base URL of the output dir, for the compose's `location`",
                                valid=_http_url)
    sync_command: tuple[str, ...] = setting((), "`rel-eng consume`: argv, {mirror_path} etc. filled in",
                                            convert=_sync_command)
    sync_timeout_s: float = setting(3600.0, "the longest a mirror sync may run", low=1.0,
                                    high=7 * 86400.0)
    retry_delay_s: float = setting(30.0, "a failed sync waits this long before the message is "
                                   "requeued", low=0.0, high=3600.0)
    queue: str = setting("rel-eng-mirror-sync", "the consumer's durable queue", valid=_queue)
    dead_letter_queue: str = setting("", "`rel-eng consume`: where a message that fails its "
                                     'schema goes (declared durable); "" = dropped',
                                     valid=_dead_letter_queue)

    def fedora_messaging_conf(self) -> Path:
        return Path(self.config_file or os.environ.get("FEDORA_MESSAGING_CONF", FEDORA_MESSAGING_CONF))

    def check(self, problems: Problems, where: str = "messaging.") -> None:
        if self.dead_letter_queue and self.dead_letter_queue == self.queue:
            problems.add(f"{where}dead_letter_queue", "must differ from messaging.queue")
        if self.config_file and not Path(self.config_file).is_file():
            problems.add(f"{where}config_file", f"{self.config_file} does not exist (fedora-messaging's "
                                                "config: amqp_url, topic_prefix, [tls])")
