"""`[schedule]` and the streams file it points at (rel_eng.schedule).

schedules/streams.toml holds the weekly streams (name, release, UTC cron) and the time of day
milestone composes fire. Release facts (Koji target, install tree, repos, milestone dates) stay
in releases.toml; a stream names its release instead of repeating them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from rel_eng import paths
from rel_eng.config.problems import Problems
from rel_eng.config.read import read_toml
from rel_eng.config.table import Section, derived, setting
from rel_eng.errors import ConfigError
from rel_eng.schedule import cron

DEFAULT_STREAMS_FILE = paths.PROJECT_ROOT / "schedules" / "streams.toml"


@dataclass(frozen=True)
class Stream:
    name: str
    release: str  # key of a [releases.<key>] table in releases.toml
    cron: str  # five fields, UTC


@dataclass(frozen=True)
class ScheduleConfig(Section):
    streams_file: str = setting(str(DEFAULT_STREAMS_FILE), "the weekly streams and milestone time",
                                path="relative")
    output: str = setting("out", "where scheduled and triggered composes go", path="relative")
    mirror: str = setting("", 'mirror root; "" = <output>/mirror', path="relative")
    # At least an hour, or a firing due between two ticks would never be inside the window.
    catch_up_hours: int = setting(72, "a firing missed by less than this fires once on start",
                                  low=1, high=24 * 31)
    tick_s: int = setting(300, "how often beat checks for due firings", low=10, high=3600,
                          unit="seconds")
    milestone_time: str = derived("00:00", "UTC time of day milestone composes fire (streams file)")
    streams: tuple[Stream, ...] = derived((), "from the streams file")

    def stream(self, name: str) -> Stream:
        for s in self.streams:
            if s.name.lower() == name.lower():
                return s
        raise KeyError(name)

    @property
    def milestone_clock(self) -> dt.time:
        return dt.time.fromisoformat(self.milestone_time).replace(tzinfo=dt.timezone.utc)


def load_streams(sched: ScheduleConfig, release_keys: list[str]) -> tuple[ScheduleConfig, list[str]]:
    """Read sched.streams_file; (config with streams, ['file: key: problem', ...])."""
    path = Path(sched.streams_file)
    problems = Problems(str(path))
    try:
        doc = read_toml(path, named_by="schedule.streams_file")
    except ConfigError as exc:
        return sched, exc.problems
    problems.unknown(doc, {"milestones", "streams"}, "")
    milestone_time = sched.milestone_time
    stones = problems.table(doc, "milestones")
    problems.unknown(stones, {"time"}, "milestones.")
    if "time" in stones:
        value = stones["time"]
        text = value.isoformat(timespec="minutes") if isinstance(value, dt.time) else value
        if isinstance(text, str) and re.fullmatch(r"\d\d:\d\d", text) and _is_time(text):
            milestone_time = text
        else:
            problems.add("milestones.time", f"expected a UTC time of day HH:MM, got {value!r}")
    table = doc.get("streams", [])
    if not isinstance(table, list):
        problems.add("streams", "expected [[streams]] tables")
        table = []
    known = {k.lower(): k for k in release_keys}
    seen: dict[str, int] = {}
    streams = []
    for i, entry in enumerate(table):
        where = f"streams[{i}]"
        if not isinstance(entry, dict):
            problems.add(where, "expected a table")
            continue
        problems.unknown(entry, {"name", "release", "cron"}, f"{where}.")
        fields = {}
        for key in ("name", "release", "cron"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                problems.add(f"{where}.{key}", f"is required and must be a string, got {value!r}")
            fields[key] = value.strip() if isinstance(value, str) else ""
        name, release, expr = fields["name"], fields["release"], fields["cron"]
        if name:
            problems.name(f"{where}.name", name)
        if name.lower() in seen:
            problems.add(f"{where}.name", f"duplicate stream name '{name}' (also streams[{seen[name.lower()]}])")
        elif name:
            seen[name.lower()] = i
        if release and known and release.lower() not in known:
            problems.add(f"{where}.release", f"unknown release '{release}' (known: {', '.join(release_keys)})")
        if expr and (bad := cron.problem(expr)):
            problems.add(f"{where}.cron", bad)
        streams.append(Stream(name=name, release=known.get(release.lower(), release), cron=expr))
    return dataclasses.replace(sched, milestone_time=milestone_time, streams=tuple(streams)), problems.items


def _is_time(text: str) -> bool:
    try:
        dt.time.fromisoformat(text)
    except ValueError:
        return False
    return True
