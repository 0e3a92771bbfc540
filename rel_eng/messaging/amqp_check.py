"""Before `rel-eng consume` subscribes: one bounded connection to the broker with the
fedora-messaging config's URL and TLS settings, and the dead-letter queue declared.

fedora-messaging's own consumer retries a refused or unreachable broker in silence (and logs a
Twisted traceback per attempt), so a wrong port or password would look like a consumer waiting
for messages. Here it is one line and exit 2.
"""

from __future__ import annotations

import logging

from rel_eng.errors import InputError
from rel_eng.config.messaging import MessagingConfig

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0  # one attempt; a broker that does not answer by then is down


def check_broker(cfg: MessagingConfig, conf_path, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Connect once, declare the dead-letter queue if [messaging] names one, disconnect.
    InputError (exit 2) when the broker cannot be reached or refuses the login."""
    import pika
    from fedora_messaging import config as fm_config
    from fedora_messaging import exceptions as fm_exceptions
    from fedora_messaging.twisted.service import _configure_tls_parameters

    from rel_eng.messaging.publisher import broker

    url = str(fm_config.conf["amqp_url"])
    where = f"amqp_url in {conf_path}"
    try:
        params = pika.URLParameters(url)
        if url.startswith("amqps"):
            _configure_tls_parameters(params)  # the same TLS settings the consumer will use
    except (ValueError, fm_exceptions.ConfigurationException) as exc:
        raise InputError(f"{where}: {broker()} is not usable: {_text(exc)}") from None
    params.connection_attempts, params.retry_delay = 1, 0
    params.socket_timeout = params.stack_timeout = params.blocked_connection_timeout = timeout_s
    pika_log = logging.getLogger("pika")
    level = pika_log.level
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        pika_log.setLevel(logging.CRITICAL + 1)  # pika logs each failed step; said once below
    try:
        conn = pika.BlockingConnection(params)
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError,
            pika.exceptions.ProbableAccessDeniedError) as exc:
        raise InputError(f"the AMQP broker {broker()} refused the login of '{params.credentials.username}'"
                         f" ({type(exc).__name__})",
                         hint=f"check the user, password and vhost in {where}") from None
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise InputError(f"the AMQP broker {broker()} is unreachable: {_text(exc)}",
                         hint=f"start it, or fix {where}") from None
    finally:
        pika_log.setLevel(level)
    try:
        if cfg.dead_letter_queue:
            conn.channel().queue_declare(cfg.dead_letter_queue, durable=True)
    except pika.exceptions.AMQPError as exc:
        raise InputError(f"the AMQP broker {broker()} refused to declare the dead-letter queue "
                         f"'{cfg.dead_letter_queue}': {_text(exc)}",
                         hint="check the user's configure permission on the vhost") from None
    finally:
        try:
            conn.close()
        except pika.exceptions.AMQPError:
            pass


def _root(exc: BaseException) -> BaseException:
    """pika wraps the cause in workflow errors: the socket's or the broker's own error."""
    for _ in range(8):
        nested = (getattr(exc, "exceptions", None) or [None])[-1] or getattr(exc, "exception", None)
        if nested is None and exc.args and isinstance(exc.args[0], BaseException):
            nested = exc.args[0]
        if not isinstance(nested, BaseException):
            return exc
        exc = nested
    return exc


def _text(exc: BaseException) -> str:
    from rel_eng.redact import redact

    inner = _root(exc)
    text = " ".join(str(inner).split()) or type(inner).__name__
    return redact(f"{type(inner).__name__}: {text}" if str(inner) else text)[:300]
