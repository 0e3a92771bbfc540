"""Bounded reachability check of the Redis broker and result backend (no Celery import).

Used at `rel-eng compose --queue`, `rel-eng worker` start and by `rel-eng validate`, so an
unreachable broker is one clear line naming the setting instead of a worker retrying forever.
"""

from __future__ import annotations

import redis

from rel_eng.config import celery as celery_settings
from rel_eng.config.celery import CelerySettings
from rel_eng.errors import InputError
from rel_eng.redact import redact


def unreachable(s: CelerySettings, source: str) -> list[str]:
    """One line per URL (broker, result backend) that does not answer a PING in time."""
    targets = [("broker_url", s.broker_url)]
    if s.result_backend and s.result_backend != s.broker_url:
        targets.append(("result_backend", s.result_backend))
    found = []
    for key, url in targets:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=s.connect_timeout,
                                          socket_timeout=s.connect_timeout)
            try:
                client.ping()
            finally:
                client.close()
        except (redis.RedisError, OSError, ValueError) as exc:
            found.append(f"{celery_settings.origin(key, source)}: cannot reach Redis at "
                         f"{redact(url)}: {exc}")
    return found


def check_reachable(s: CelerySettings, source: str) -> None:
    found = unreachable(s, source)
    if found:
        raise InputError(found[0], hint="start redis-server there, or fix the URL (the "
                                        f"environment's {celery_settings.ENV_BROKER} overrides "
                                        "the config)")


def validate_problems(config) -> tuple[list[str], list[str]]:
    """For `rel-eng validate`: (problems, checked). Only when the distributed engine is set up
    (a [celery] table or the environment's URL), so in-process users need no Redis."""
    s = celery_settings.effective(config.celery)
    if s == CelerySettings():
        return [], []
    return unreachable(s, config.source), [f"broker {redact(s.broker_url)}"]
