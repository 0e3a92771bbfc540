"""Sending one outbox message with fedora-messaging's own API and config file.

fedora-messaging keeps one config per process (loaded from the file named here, else
FEDORA_MESSAGING_CONF) and adds its `topic_prefix` itself. The message keeps the outbox's id as
its AMQP message id. Errors name the broker without its password.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from rel_eng.errors import InputError, RelEngError
from rel_eng.config.messaging import MessagingConfig

log = logging.getLogger(__name__)

BACKOFF_S = 60.0  # after a failed send, this process leaves the outbox alone this long
_loaded: dict[str, Path] = {}
_lock = threading.Lock()


class PublishFailed(RelEngError):
    """The broker could not be reached or refused the message; it stays pending."""


def redacted_amqp(url: str) -> str:
    from rel_eng.redact import redact

    parts = urlsplit(url)
    if parts.password is None:
        return redact(url)
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return redact(urlunsplit(parts._replace(netloc=netloc)))


def require_config(cfg: MessagingConfig) -> Path:
    """The fedora-messaging config file, loaded into fedora-messaging; InputError if absent."""
    path = cfg.fedora_messaging_conf()
    if not path.is_file():
        raise InputError(f"fedora-messaging config {path} not found ([messaging] enabled)",
                         hint="set [messaging] config_file or FEDORA_MESSAGING_CONF, or set "
                              "[messaging] enabled = false")
    with _lock:
        if "conf" not in _loaded:
            if not logging.getLogger().isEnabledFor(logging.DEBUG):
                quiet_library_logs()
            from fedora_messaging import config as fm_config
            from fedora_messaging import exceptions

            try:
                fm_config.conf.load_config(str(path))
            except exceptions.ConfigurationException as exc:
                raise InputError(f"{path}: invalid fedora-messaging config: "
                                 f"{str(exc.message).splitlines()[0]}") from None
            _loaded["conf"] = path
        elif _loaded["conf"] != path:
            log.warning("fedora-messaging config %s already loaded in this process; not "
                        "switching to %s", _loaded["conf"], path)
    return path


class _NoTracebacks(logging.Filter):
    """Drops the tracebacks fedora-messaging and Twisted log for a failed publish or consume:
    the exception reaches rel-eng, which says it in one line (the traceback is for --debug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return not (record.exc_info or "Traceback (most recent call last)" in text
                    or "Unhandled error in Deferred" in text or not text.strip())


def quiet_library_logs() -> None:
    """Without --debug: the library and its AMQP stack narrate every load, connect and close
    at INFO, and log each failure as a traceback before raising it."""
    for name in ("fedora_messaging", "pika", "twisted"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("fedora_messaging.api", "fedora_messaging.twisted.factory",
                 "fedora_messaging.twisted.protocol", "fedora_messaging.twisted.consumer",
                 "twisted"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTracebacks) for f in logger.filters):
            logger.addFilter(_NoTracebacks())


def broker() -> str:
    from fedora_messaging import config as fm_config

    return redacted_amqp(str(fm_config.conf["amqp_url"]))


def topic_prefix() -> str:
    from fedora_messaging import config as fm_config

    return str(fm_config.conf["topic_prefix"] or "")


def build_message(topic: str, body: dict[str, Any], message_id: str):
    """The schema package's class for `topic`, carrying the outbox's id, sent on the topic
    the message goes out with (the AMI message's per-image suffix added)."""
    import rel_eng_messages

    from rel_eng.messaging.bodies import schema_topic, wire_topic

    cls = rel_eng_messages.BY_TOPIC[schema_topic(topic)]
    msg = cls(body=body, topic=wire_topic(schema_topic(topic), body))
    msg.id = message_id
    return msg


class Publisher:
    """Sends outbox rows; after one failure it stops trying for a while (the compose goes on)."""

    def __init__(self, cfg: MessagingConfig, clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.clock = clock
        self._down_until = 0.0

    @property
    def resting(self) -> bool:
        return self.clock() < self._down_until

    def send(self, topic: str, body: dict[str, Any], message_id: str) -> None:
        from fedora_messaging import api, exceptions

        require_config(self.cfg)
        msg = build_message(topic, body, message_id)
        try:
            api.publish(msg, timeout=int(max(1, round(self.cfg.publish_timeout_s))))
        except exceptions.ValidationError as exc:
            raise PublishFailed(f"message {message_id} ({topic}) does not match its schema: "
                                f"{str(exc).splitlines()[0]}") from None
        except exceptions.BaseException as exc:  # timeouts, refusals, connection errors
            self._down_until = self.clock() + BACKOFF_S
            raise PublishFailed(f"sending {topic} ({message_id}) to {broker()} failed: "
                                f"{type(exc).__name__}: {_one_line(exc)}") from None
        self._down_until = 0.0


def _one_line(exc: Exception) -> str:
    text = str(getattr(exc, "reason", "") or exc) or type(exc).__name__
    # pika's errors may quote the URL; never let a password through.
    from fedora_messaging import config as fm_config

    url = str(fm_config.conf["amqp_url"])
    password = urlsplit(url).password
    line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return line.replace(url, redacted_amqp(url)).replace(password, "***") if password else line


def sending(config) -> bool:
    """Whether the outbox is published: [messaging] enabled."""
    return bool(config.messaging.enabled)


def check_ready(config) -> None:
    """Before a compose writes anything: a config that sends must name a readable
    fedora-messaging config. Exit 2 otherwise."""
    if sending(config):
        require_config(config.messaging)
