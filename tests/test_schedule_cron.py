"""UTC cron expressions: what is rejected and why, and that `rel-eng schedule` (croniter) and
Celery beat (crontab) agree on every firing."""

from __future__ import annotations

import datetime as dt

import pytest
from celery import Celery
from celery.schedules import crontab

from rel_eng.schedule import cron

UTC = dt.timezone.utc


@pytest.mark.parametrize("expr, problem", [
    ("0 6 * *", "needs 5 fields (minute, hour, day of month, month, day of week), got 4"),
    ("0 6 * * 1 2013", "needs 5 fields (minute, hour, day of month, month, day of week), got 6"),
    ("61 6 * * 1", "[61 6 * * 1] is not acceptable, out of range"),
    ("0 6 * * mon", "day of week 'mon' may hold only digits, '*', ',', '-' and '/'"),
    ("@weekly", "needs 5 fields"),
    ("0 6 * * 7", "day of week is 0-6 (0 = Sunday)"),
    ("0 6 1 * 1", "restrict day of month or day of week, not both (cron and Celery beat "
                  "combine them differently)"),
    ("0 6 L * *", "day of month 'L' may hold only digits"),
])
def test_bad_expressions_are_told_what_is_wrong(expr, problem):
    got = cron.problem(expr)
    assert got is not None and got.startswith(f"invalid cron expression '{expr}': ")
    assert problem in got


EXPRESSIONS = ["0 6 * * 1", "0 6 * * 3", "*/15 * * * *", "30 4 1 * *", "0 0 * 1-6/2 *",
               "5 23 * * 0,6", "0 */6 * * 1-5"]
CLOCKS = [dt.datetime(2013, 5, 6, 6, 0, tzinfo=UTC), dt.datetime(2013, 5, 28, 4, 7, 33, tzinfo=UTC),
          dt.datetime(2013, 12, 31, 23, 59, tzinfo=UTC), dt.datetime(2016, 2, 28, 12, tzinfo=UTC)]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_croniter_and_celery_beat_agree(expr):
    assert cron.problem(expr) is None
    app = Celery(set_as_current=False)
    for now in CLOCKS:
        beat = crontab(**cron.celery_fields(expr), app=app, nowfun=lambda now=now: now)
        assert now + beat.remaining_estimate(now) == cron.next_after(expr, now)[0], (expr, now)


def test_next_and_latest_firings_from_a_given_clock():
    monday_6 = dt.datetime(2013, 5, 6, 6, 0, tzinfo=UTC)
    assert cron.next_after("0 6 * * 1", monday_6, 2) == [monday_6 + dt.timedelta(weeks=1),
                                                         monday_6 + dt.timedelta(weeks=2)]
    # the firing at exactly `now` is the latest, not the one a week before
    assert cron.latest_at_or_before("0 6 * * 1", monday_6) == monday_6
    assert cron.latest_at_or_before("0 6 * * 1", monday_6 - dt.timedelta(seconds=1)) == \
        monday_6 - dt.timedelta(weeks=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        cron.next_after("0 6 * * 1", dt.datetime(2013, 5, 6))
