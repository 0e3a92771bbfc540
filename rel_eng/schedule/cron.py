"""UTC cron expressions: one checker shared by `rel-eng validate`, `rel-eng schedule` and Celery beat.

Only the syntax that croniter and Celery's crontab read the same way is accepted: five numeric
fields with `*`, `,`, `-` and `/`, and not both day of month and day of week restricted (cron
ORs those two, Celery ANDs them, so the listed and the real firings would differ).
"""

from __future__ import annotations

import datetime as dt
import re

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_FIELD_RE = re.compile(r"^[0-9*,/-]+$")


def problem(expr: str) -> str | None:
    """What is wrong with `expr`, or None."""
    fields = expr.split()
    if len(fields) != len(FIELDS):
        return (f"invalid cron expression '{expr}': needs 5 fields ({', '.join(FIELDS)}), "
                f"got {len(fields)}")
    for name, field in zip(FIELDS, fields):
        if not _FIELD_RE.match(field):
            return (f"invalid cron expression '{expr}': {name} '{field}' may hold only digits, "
                    "'*', ',', '-' and '/'")
    if any(int(n) > 6 for n in re.findall(r"\d+", fields[4].split("/")[0])):
        return f"invalid cron expression '{expr}': day of week is 0-6 (0 = Sunday)"
    if fields[2] != "*" and fields[4] != "*":
        return (f"invalid cron expression '{expr}': restrict day of month or day of week, not "
                "both (cron and Celery beat combine them differently)")
    try:
        # Day of month and month repeat every 4 years at most (Feb 29): no firing from a leap
        # year's first day on means none ever (e.g. Feb 30, Apr 31).
        croniter(expr, _NEVER_FROM).get_next(dt.datetime)
    except CroniterBadDateError:
        return (f"cron expression '{expr}' never fires (no such day in any year): "
                "fix day of month or month")
    except (CroniterError, ValueError) as exc:
        return f"invalid cron expression '{expr}': {exc}"
    return None


_NEVER_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


def _utc(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is None:
        raise ValueError("cron times are computed from timezone-aware UTC clocks")
    return t.astimezone(dt.timezone.utc)


def next_after(expr: str, t: dt.datetime, count: int = 1) -> list[dt.datetime]:
    """The next `count` firings strictly after t."""
    it = croniter(expr, _utc(t))
    return [it.get_next(dt.datetime) for _ in range(count)]


def latest_at_or_before(expr: str, t: dt.datetime) -> dt.datetime:
    """The most recent firing at or before t (croniter's get_prev excludes t itself)."""
    t = _utc(t)
    prev = croniter(expr, t).get_prev(dt.datetime)
    following = croniter(expr, prev).get_next(dt.datetime)
    return following if following <= t else prev


def celery_fields(expr: str) -> dict[str, str]:
    """Keyword arguments for celery.schedules.crontab; `expr` must have passed problem()."""
    minute, hour, dom, month, dow = expr.split()
    return {"minute": minute, "hour": hour, "day_of_month": dom, "month_of_year": month,
            "day_of_week": dow}
