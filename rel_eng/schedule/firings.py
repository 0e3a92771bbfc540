"""Firings computed from the config and a given clock: pure functions, no I/O, no sleeping.

A firing is identified by (kind, subject, slot): a milestone by (milestone, release, name), so it
fires once whatever its date; a weekly by (weekly, stream, the cron time it belongs to).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rel_eng.schedule import cron
from rel_eng.config.schedule import Stream

MILESTONE, WEEKLY, MANUAL = "milestone", "weekly", "manual"


@dataclass(frozen=True)
class Firing:
    kind: str
    subject: str  # stream name, or release key
    slot: str  # the cron time (ISO, UTC) of a weekly, or the milestone's name
    due: dt.datetime  # UTC
    release: str  # release key the compose is for
    milestone: str | None = None  # None: a weekly drop

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.subject, self.slot)

    @property
    def what(self) -> str:
        return f"{self.release} {self.milestone}" if self.milestone else f"weekly {self.subject}"

    def describe(self) -> str:
        return f"{self.what} due {self.due.isoformat()}"


def weekly(stream: Stream, at: dt.datetime) -> Firing:
    return Firing(WEEKLY, stream.name, at.isoformat(), at, stream.release)


def next_weekly(stream: Stream, now: dt.datetime, count: int = 1) -> list[Firing]:
    return [weekly(stream, t) for t in cron.next_after(stream.cron, now, count)]


def latest_weekly(stream: Stream, now: dt.datetime) -> Firing:
    return weekly(stream, cron.latest_at_or_before(stream.cron, now))


def milestones(config) -> list[Firing]:
    """Every milestone of every release, due at the schedule's milestone time on its date."""
    clock = config.schedule.milestone_clock
    out = []
    for release in config.releases:
        for name, date in release.milestones:
            due = dt.datetime.combine(dt.date.fromisoformat(date), clock)
            out.append(Firing(MILESTONE, release.key, name, due, release.key, name))
    return out


def upcoming(config, now: dt.datetime, count: int = 1) -> list[Firing]:
    """The next `count` firings of each stream and every milestone still ahead, by due time."""
    out = [f for s in config.schedule.streams for f in next_weekly(s, now, count)]
    out += [f for f in milestones(config) if f.due > now]
    return sorted(out, key=lambda f: (f.due, f.kind, f.subject))


def due(config, now: dt.datetime) -> list[Firing]:
    """What should have fired by `now` and may still: due within the last catch_up_hours.

    Older firings are not caught up on their own: a scheduler down for weeks does not flood the
    builders with stale composes (`rel-eng trigger` fires one by hand).
    """
    since = now - dt.timedelta(hours=config.schedule.catch_up_hours)
    out = [latest_weekly(s, now) for s in config.schedule.streams]
    out += milestones(config)
    return sorted((f for f in out if since < f.due <= now), key=lambda f: (f.due, f.kind, f.subject))
