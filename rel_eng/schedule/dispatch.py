"""Firing: claim a due firing in the store's ledger, then queue its compose.

Queueing is a function passed in (in production `rel_eng.distributed.canvas.submit_compose`),
so this logic runs and is tested without Celery. The clock is passed in too.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rel_eng.errors import InputError, RelEngError
from rel_eng.schedule import firings
from rel_eng.schedule.firings import Firing

log = logging.getLogger(__name__)

# submit(config, output, release, milestone, date, label=None, builder=None, mirror_root=None)
Submit = Callable[..., str]


class FiringFailed(RelEngError):
    """Some due firings could not be queued; their claims were given back for the next tick."""


@dataclass(frozen=True)
class Fired:
    firing: Firing
    compose_id: str


class Dispatcher:
    def __init__(self, config, ledger, submit: Submit, output: Path | None = None,
                 mirror_root: Path | None = None):
        self.config = config
        self.ledger = ledger
        self.submit = submit
        self.output = Path(output or config.schedule.output).resolve()
        mirror = mirror_root or config.schedule.mirror
        self.mirror_root = Path(mirror).resolve() if mirror else None

    def _queue(self, release: str, milestone: str | None, now: dt.datetime) -> str:
        return self.submit(self.config, self.output, release, milestone, now.date(),
                           mirror_root=self.mirror_root)

    def fire(self, firing: Firing, now: dt.datetime) -> Fired | None:
        """Queue `firing` unless someone claimed it before; None when it was not ours to fire."""
        if not self.ledger.claim(*firing.key, due=firing.due, now=now):
            return None
        try:
            compose_id = self._queue(firing.release, firing.milestone, now)
        except BaseException:
            self.ledger.release(*firing.key)  # not queued: the next tick tries again
            raise
        self.ledger.settle(*firing.key, compose_id)
        log.info("fired %s: compose %s", firing.describe(), compose_id)
        return Fired(firing, compose_id)

    def tick(self, now: dt.datetime) -> list[Fired]:
        """Fire everything due (missed firings inside the catch-up window included), once each."""
        fired, failed = [], []
        for firing in firings.due(self.config, now):
            try:
                if (done := self.fire(firing, now)) is not None:
                    fired.append(done)
            except Exception as exc:  # one bad firing must not keep the others from firing
                failed.append(f"{firing.describe()}: {exc}")
        if failed:
            raise FiringFailed("could not queue " + "; ".join(failed),
                               hint="their claims were released; the next tick retries")
        return fired

    def fire_stream(self, name: str, now: dt.datetime) -> Fired | None:
        """Beat's crontab entry for one weekly stream: its latest cron time, once."""
        try:
            stream = self.config.schedule.stream(name)
        except KeyError:
            raise InputError(f"unknown stream '{name}'",
                             hint=f"streams are defined in {self.config.schedule.streams_file}") from None
        return self.fire(firings.latest_weekly(stream, now), now)

    def trigger(self, release: str, milestone: str, now: dt.datetime) -> str:
        """A milestone compose by hand: always queued; allocate() counts the respin up."""
        key = self.config.release(release).key
        compose_id = self._queue(key, milestone, now)
        slot = f"{milestone}@{now.isoformat()}"
        if self.ledger.claim(firings.MANUAL, key, slot, due=now, now=now):
            self.ledger.settle(firings.MANUAL, key, slot, compose_id)
        return compose_id
