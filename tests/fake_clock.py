"""A clock and a sleep for code that polls or backs off: sleeping advances time, nothing waits.

Tests count rounds and sleeps instead of measuring seconds, so they pass however loaded the
machine is.
"""

from __future__ import annotations


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds
