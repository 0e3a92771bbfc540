"""Firing with a controlled clock against a real store (SQLite and PostgreSQL): each milestone fires
once, even across beat restarts and two beats at once; missed firings are caught up once; weekly
streams fire once per cron time; manual triggers count the respin up. No sleeping."""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import sys
from pathlib import Path

import pytest
from celery import Celery

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_support import store_url  # noqa: E402,F401

from rel_eng import compose  # noqa: E402
from rel_eng.config import load_config  # noqa: E402
from rel_eng.errors import ConfigError, InputError, RelEngError  # noqa: E402
from rel_eng.schedule import beat  # noqa: E402
from rel_eng.schedule.dispatch import Dispatcher, FiringFailed  # noqa: E402
from rel_eng.store.engine import open_engine  # noqa: E402
from rel_eng.store.firings import FiringLedger  # noqa: E402
from rel_eng.config.store import StoreConfig  # noqa: E402

UTC = dt.timezone.utc
BETA_DUE = dt.datetime(2013, 5, 28, 4, 0, tzinfo=UTC)  # releases.toml date, streams.toml time
MINUTE = dt.timedelta(minutes=1)


class FakeSubmit:
    """Stands in for rel_eng.distributed.canvas.submit_compose; records what was queued."""

    def __init__(self, fail: int = 0):
        self.calls: list[tuple] = []
        self.fail = fail

    def __call__(self, config, output, release, milestone, date, label=None, builder=None,
                 mirror_root=None) -> str:
        if self.fail:
            self.fail -= 1
            raise RelEngError("broker redis://127.0.0.1:6379/0 is unreachable")
        self.calls.append((release, milestone, date))
        return f"Fedora-Cloud-{release}-{date:%Y%m%d}.{len(self.calls) - 1}"


@pytest.fixture
def engine(store_url):  # noqa: F811
    e = open_engine(store_url)
    yield e
    e.dispose()


def milestones_only(tmp_path, url=""):
    config = load_config()
    return dataclasses.replace(config, store=StoreConfig(url=url),
                               schedule=dataclasses.replace(config.schedule, streams=(),
                                                            output=str(tmp_path / "out")))


def streams_only(tmp_path):
    config = load_config()
    return dataclasses.replace(
        config, releases=tuple(dataclasses.replace(r, milestones=()) for r in config.releases),
        schedule=dataclasses.replace(config.schedule, output=str(tmp_path / "out")))


def test_a_milestone_fires_once_at_its_time(tmp_path, engine):
    submit = FakeSubmit()
    d = Dispatcher(milestones_only(tmp_path), FiringLedger(engine), submit)
    assert d.tick(BETA_DUE - MINUTE) == []
    [fired] = d.tick(BETA_DUE + MINUTE)
    assert (fired.firing.key, fired.compose_id) == (("milestone", "19", "Beta"),
                                                    "Fedora-Cloud-19-20130528.0")
    assert d.tick(BETA_DUE + 6 * MINUTE) == []
    restarted = Dispatcher(milestones_only(tmp_path), FiringLedger(open_engine(str(engine.url))), submit)
    try:
        assert restarted.tick(BETA_DUE + 11 * MINUTE) == []  # beat restarted: still fired once
    finally:
        restarted.ledger.engine.dispose()
    assert submit.calls == [("19", "Beta", dt.date(2013, 5, 28))]
    [row] = FiringLedger(engine).all()
    assert (row["kind"], row["subject"], row["slot"], row["compose_id"]) == \
        ("milestone", "19", "Beta", "Fedora-Cloud-19-20130528.0")
    assert row["due"] == BETA_DUE.isoformat()


def test_a_firing_missed_while_down_is_caught_up_once_on_start(tmp_path, engine):
    submit = FakeSubmit()
    d = Dispatcher(milestones_only(tmp_path), FiringLedger(engine), submit)
    assert d.tick(BETA_DUE - dt.timedelta(hours=16)) == []  # last tick before going down
    back = BETA_DUE + dt.timedelta(hours=40)  # down for two days, inside catch_up_hours (72)
    assert [f.firing.milestone for f in d.tick(back)] == ["Beta"]
    assert d.tick(back + 5 * MINUTE) == []
    # Alpha (three weeks earlier) was missed by more than the window: never fired on its own
    assert submit.calls == [("19", "Beta", back.date())]


def test_firings_older_than_the_window_are_left_for_a_human(tmp_path, engine):
    submit = FakeSubmit()
    d = Dispatcher(milestones_only(tmp_path), FiringLedger(engine), submit)
    assert d.tick(BETA_DUE + dt.timedelta(hours=73)) == []
    assert submit.calls == [] and FiringLedger(engine).all() == []


def test_a_weekly_stream_fires_once_per_cron_time(tmp_path, engine):
    submit = FakeSubmit()
    d = Dispatcher(streams_only(tmp_path), FiringLedger(engine), submit)
    monday = dt.datetime(2013, 5, 27, 6, 0, tzinfo=UTC)  # rawhide: "0 6 * * 1"
    fired = d.fire_stream("rawhide", monday)
    assert fired.firing.key == ("weekly", "rawhide", monday.isoformat())
    assert d.fire_stream("rawhide", monday + dt.timedelta(seconds=30)) is None  # a second beat
    assert [f.firing.subject for f in d.tick(monday + 5 * MINUTE)] == []  # the tick agrees
    assert d.fire_stream("rawhide", monday + dt.timedelta(weeks=1)).firing.slot == \
        (monday + dt.timedelta(weeks=1)).isoformat()
    assert submit.calls == [("rawhide", None, monday.date()),
                            ("rawhide", None, (monday + dt.timedelta(weeks=1)).date())]
    with pytest.raises(InputError, match="unknown stream 'f18'"):
        d.fire_stream("f18", monday)


def test_a_tick_catches_up_weekly_streams_too(tmp_path, engine):
    submit = FakeSubmit()
    d = Dispatcher(streams_only(tmp_path), FiringLedger(engine), submit)
    # beat was down over Monday 06:00 (rawhide, 62 h ago) and Wednesday 06:00 (branched)
    back = dt.datetime(2013, 5, 29, 20, 0, tzinfo=UTC)
    assert sorted(f.firing.subject for f in d.tick(back)) == ["branched", "rawhide"]
    assert d.tick(back + 5 * MINUTE) == []
    assert sorted(c[0] for c in submit.calls) == ["19", "rawhide"]
    # down longer than catch_up_hours (72): Monday's rawhide is not caught up any more
    later = Dispatcher(streams_only(tmp_path), FiringLedger(engine), FakeSubmit())
    assert [f.firing.subject for f in later.tick(dt.datetime(2013, 6, 6, 12, tzinfo=UTC))] == ["branched"]


def test_queueing_that_fails_gives_the_claim_back(tmp_path, engine):
    submit = FakeSubmit(fail=1)
    d = Dispatcher(milestones_only(tmp_path), FiringLedger(engine), submit)
    with pytest.raises(FiringFailed) as err:
        d.tick(BETA_DUE + MINUTE)
    assert str(err.value) == ("could not queue 19 Beta due 2013-05-28T04:00:00+00:00: broker "
                              "redis://127.0.0.1:6379/0 is unreachable (their claims were "
                              "released; the next tick retries)")
    assert FiringLedger(engine).all() == []
    assert len(d.tick(BETA_DUE + 6 * MINUTE)) == 1
    assert d.tick(BETA_DUE + 11 * MINUTE) == []
    assert submit.calls == [("19", "Beta", dt.date(2013, 5, 28))]


def _beat_process(config_data, now, barrier, log_path):
    def submit(config, output, release, milestone, date, **_):
        with open(log_path, "a") as fh:
            fh.write(f"{release} {milestone}\n")
        return f"compose-of-{release}-{milestone}"

    barrier.wait(timeout=30)
    beat.run_tick(config_data, submit=submit, now=now)


def test_two_beats_ticking_at_once_fire_each_milestone_once(tmp_path, store_url):  # noqa: F811
    config = milestones_only(tmp_path, store_url)
    ctx = multiprocessing.get_context("fork")
    log = tmp_path / "queued.txt"
    for stone, due in (("Alpha", "2013-05-07"), ("Beta", "2013-05-28"), ("Final", "2013-07-02")):
        now = dt.datetime.fromisoformat(f"{due}T04:00:30+00:00")
        barrier = ctx.Barrier(2)
        beats = [ctx.Process(target=_beat_process, args=(config.to_dict(), now, barrier, log))
                 for _ in range(2)]
        for p in beats:
            p.start()
        for p in beats:
            p.join(timeout=60)
        assert [p.exitcode for p in beats] == [0, 0]
    assert log.read_text().splitlines() == ["19 Alpha", "19 Beta", "19 Final"]


def test_trigger_queues_by_hand_and_the_respin_counts_up(tmp_path, engine):
    def submit(config, output, release, milestone, date, label=None, builder=None, mirror_root=None):
        # what submit_compose does before handing the canvas to Celery
        plan = compose.allocate(config, output, release, milestone, date, label=label)
        compose.create(config, plan, output, compose.prepare_inputs(config, plan))
        return plan.compose_id

    config = milestones_only(tmp_path)
    d = Dispatcher(config, FiringLedger(engine), submit)
    now = dt.datetime(2013, 5, 20, 9, 30, tzinfo=UTC)
    first = d.trigger("19", "Beta", now)
    second = d.trigger("19", "Beta", now + MINUTE)
    assert (first, second) == ("Fedora-Cloud-19-20130520.0", "Fedora-Cloud-19-20130520.1")
    labels = [compose.Compose.load(tmp_path / "out" / cid).plan.label for cid in (first, second)]
    assert labels == ["Beta-1.1", "Beta-1.2"]
    manual = [(r["kind"], r["subject"], r["compose_id"]) for r in FiringLedger(engine).all()]
    assert manual == [("manual", "19", first), ("manual", "19", second)]
    with pytest.raises(ConfigError, match="unknown release '18'"):
        d.trigger("18", "Beta", now)
    with pytest.raises(InputError, match="release 'rawhide' has no milestones"):
        d.trigger("rawhide", "Beta", now)


def test_beat_schedule_has_a_utc_crontab_per_stream_and_the_tick(tmp_path):
    config = load_config()
    app = Celery(set_as_current=False)
    beat.configure(app, config)
    entries = app.conf.beat_schedule
    assert sorted(entries) == ["milestones", "weekly-branched", "weekly-rawhide"]
    rawhide = entries["weekly-rawhide"]
    assert (rawhide["task"], rawhide["args"][1]) == (beat.FIRE_STREAM, "rawhide")
    assert rawhide["schedule"].hour == {6} and rawhide["schedule"].minute == {0}
    assert rawhide["schedule"].day_of_week == {1}
    tick = entries["milestones"]
    assert tick["task"] == beat.TICK and tick["schedule"].run_every == dt.timedelta(seconds=300)
    assert type(config).from_dict(tick["args"][0]) == config  # workers rebuild beat's config
    assert {beat.TICK, beat.FIRE_STREAM} <= set(app.tasks)
    local = Celery(set_as_current=False)
    local.conf.timezone = "Europe/Prague"
    with pytest.raises(InputError, match="Celery timezone is 'Europe/Prague'"):
        beat.configure(local, config)


def test_the_scheduler_refuses_to_run_without_a_store(tmp_path):
    config = dataclasses.replace(load_config(), store=StoreConfig(enabled=False))
    with pytest.raises(InputError, match="the scheduler needs the compose store"):
        beat.run_tick(config.to_dict(), submit=FakeSubmit(), now=BETA_DUE)
