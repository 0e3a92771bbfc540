"""rel_eng.retry with a fake clock: attempts and sleeps are counted, nothing waits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_clock import FakeClock  # noqa: E402

from rel_eng import retry  # noqa: E402


class Blip(Exception):
    pass


class Fatal(Exception):
    pass


class Flaky:
    """Fails with the given exceptions in turn, then returns "ok"; counts its calls."""

    def __init__(self, *failures: BaseException):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def is_blip(exc: BaseException) -> bool:
    return isinstance(exc, Blip)


def test_transient_failures_are_retried_with_capped_doubling_back_off():
    clock, fn = FakeClock(), Flaky(Blip(), Blip(), Blip(), Blip())
    seen = []
    out = retry.call(fn, retry.Policy(5, 1.0, 3.0), transient=is_blip, clock=clock,
                     sleep=clock.sleep, on_retry=lambda e, n, d: seen.append((n, d)))
    assert out == "ok" and fn.calls == 5
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0]
    assert seen == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 3.0)]


def test_the_budget_bounds_the_attempts_and_give_up_says_how_many():
    clock, fn = FakeClock(), Flaky(*[Blip(str(i)) for i in range(10)])
    with pytest.raises(Fatal, match="after 3 attempt"):
        retry.call(fn, retry.Policy(2, 0.5, 10), transient=is_blip, clock=clock, sleep=clock.sleep,
                   give_up=lambda exc, n: Fatal(f"after {n} attempt(s): {exc}"))
    assert fn.calls == 3 and clock.sleeps == [0.5, 1.0]


def test_without_give_up_the_last_failure_itself_is_raised():
    clock, fn = FakeClock(), Flaky(Blip("first"), Blip("second"))
    with pytest.raises(Blip, match="second"):
        retry.call(fn, retry.Policy(1, 1, 1), transient=is_blip, clock=clock, sleep=clock.sleep)
    assert fn.calls == 2 and clock.sleeps == [1]


def test_a_failure_that_is_not_transient_is_never_retried():
    clock, fn = FakeClock(), Flaky(Fatal("no"))
    with pytest.raises(Fatal, match="no"):
        retry.call(fn, retry.Policy(5, 1, 1), transient=is_blip, clock=clock, sleep=clock.sleep,
                   give_up=lambda exc, n: AssertionError("not a give-up"))
    assert fn.calls == 1 and clock.sleeps == []


def test_exceptions_outside_catch_pass_through_untouched():
    clock, fn = FakeClock(), Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        retry.call(fn, retry.Policy(5, 1, 1), transient=lambda e: True, clock=clock,
                   sleep=clock.sleep)
    clock, fn = FakeClock(), Flaky(Blip())
    with pytest.raises(Blip):
        retry.call(fn, retry.Policy(5, 1, 1), transient=lambda e: True, catch=(Fatal,),
                   clock=clock, sleep=clock.sleep)
    assert fn.calls == 1 and clock.sleeps == []


def test_no_wait_runs_past_the_deadline():
    clock = FakeClock(start=100.0)
    fn = Flaky(*[Blip() for _ in range(50)])
    with pytest.raises(Fatal):
        retry.call(fn, retry.Policy(50, 2.0, 2.0), transient=is_blip, deadline=107.0,
                   clock=clock, sleep=clock.sleep, give_up=lambda exc, n: Fatal(n))
    # 100 -> 102 -> 104 -> 106; a fourth wait would end at 108, past the deadline
    assert clock.sleeps == [2.0, 2.0, 2.0] and fn.calls == 4 and clock.now <= 107.0


def test_jitter_scales_each_wait_and_zero_retries_means_one_try():
    clock, fn = FakeClock(), Flaky(Blip(), Blip())
    retry.call(fn, retry.Policy(2, 4.0, 8.0, jitter=lambda d: d / 2), transient=is_blip,
               clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [2.0, 4.0]
    clock, fn = FakeClock(), Flaky(Blip())
    with pytest.raises(Blip):
        retry.call(fn, retry.Policy(0, 1, 1), transient=is_blip, clock=clock, sleep=clock.sleep)
    assert fn.calls == 1 and clock.sleeps == []


def test_the_store_retries_a_racing_create_and_gives_up_after_its_budget(tmp_path, monkeypatch):
    from sqlalchemy.exc import IntegrityError

    from rel_eng.store import engine as store_engine

    calls = []

    def racing(bind, *a, **k):
        calls.append(1)
        raise IntegrityError("CREATE TABLE", {}, Exception("already exists"))

    monkeypatch.setattr(store_engine.metadata, "create_all", racing)
    clock = FakeClock()
    with pytest.raises(IntegrityError):
        store_engine.open_engine(f"sqlite:///{tmp_path / 'store.db'}", sleep=clock.sleep)
    assert len(calls) == store_engine.CREATE_ATTEMPTS
    assert clock.sleeps == [0.2, 0.4, 0.8, 0.8]
