"""The one retry loop: bounded attempts, capped exponential back-off and an optional deadline.

Used by Koji hub calls and polls (builders/koji_session.py), Koji downloads
(builders/koji_download.py), EBS block uploads (publish/ebs_upload.py) and the compose store's
SQLite busy retry (store/engine.py). What counts as transient stays with each caller (a
predicate): a TLS failure, a refused AWS call or a schema error each mean something different
there. The clock and the sleep are injected, so tests count attempts and sleeps instead of
waiting. Imports only the standard library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    """How often and how long: `retries` after the first try, the n-th retry (from 0) waiting
    min(backoff * 2**n, backoff_max), times `jitter(delay)` when given."""

    retries: int
    backoff: float
    backoff_max: float
    jitter: Callable[[float], float] | None = field(default=None, kw_only=True)

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt + 1` (attempt counts from 0)."""
        delay = min(self.backoff * (2 ** attempt), self.backoff_max)
        return self.jitter(delay) if self.jitter else delay


def call(fn: Callable[[], T], policy: Policy, *,
         transient: Callable[[BaseException], bool],
         catch: tuple[type[BaseException], ...] = (Exception,),
         deadline: float | None = None,
         clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep,
         on_retry: Callable[[BaseException, int, float], None] | None = None,
         give_up: Callable[[BaseException, int], BaseException] | None = None) -> T:
    """`fn()`, tried again after a `transient` failure (one of `catch`) while retries remain
    and the next wait still ends before `deadline` (on `clock`).

    A failure that is not transient propagates as it is. When the budget runs out, the error
    `give_up(exc, attempts_made)` returns is raised (from None); without `give_up`, the last
    failure itself. `on_retry(exc, retry_number, delay)` runs before each sleep (to log).
    """
    attempt = 0
    while True:
        try:
            return fn()
        except catch as exc:
            if not transient(exc):
                raise
            delay = policy.delay(attempt)
            late = deadline is not None and clock() + delay > deadline
            if attempt >= policy.retries or late:
                if give_up is None:
                    raise
                raise give_up(exc, attempt + 1) from None
            attempt += 1
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            sleep(delay)
