"""The `[schedule]` table of the pipeline config and the streams file it points at.

schedules/streams.toml holds the weekly streams (name, release, UTC cron) and the time of day
milestone composes fire. Release facts (Koji target, install tree, repos, milestone dates) stay
in releases.toml; a stream names its release instead of repeating them. Imports nothing from
rel_eng.config (config.py imports this module).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rel_eng import paths
from rel_eng.naming import path_component_problem
from rel_eng.schedule import cron

DEFAULT_STREAMS_FILE = paths.PROJECT_ROOT / "schedules" / "streams.toml"
_TABLE_KEYS = {"streams_file", "output", "mirror", "catch_up_hours", "tick_s"}


@dataclass(frozen=True)
class Stream:
    name: str
    release: str  # key of a [releases.<key>] table in releases.toml
    cron: str  # five fields, UTC


@dataclass(frozen=True)
class ScheduleConfig:
    streams_file: str = str(DEFAULT_STREAMS_FILE)
    output: str = "out"  # where scheduled and triggered composes go
    mirror: str = ""  # mirror root; "" = <output>/mirror
    catch_up_hours: int = 72  # a firing missed by less than this fires once on start
    tick_s: int = 300  # how often beat checks for due firings
    milestone_time: str = "00:00"  # UTC time of day milestone composes fire (streams file)
    streams: tuple[Stream, ...] = ()  # from the streams file

    def stream(self, name: str) -> Stream:
        for s in self.streams:
            if s.name.lower() == name.lower():
                return s
        raise KeyError(name)

    @property
    def milestone_clock(self) -> dt.time:
        return dt.time.fromisoformat(self.milestone_time).replace(tzinfo=dt.timezone.utc)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ScheduleConfig":
        return cls(**{**data, "streams": tuple(Stream(**s) for s in data.get("streams", ()))})


def parse_schedule(table: Any, problems, base_dir: Path, where: str = "schedule.") -> ScheduleConfig:
    """`[schedule]` -> ScheduleConfig (streams not loaded yet); mistakes go to `problems`."""
    base = ScheduleConfig()
    if not isinstance(table, dict):
        problems.add(where.rstrip("."), "expected a table")
        return base
    problems.unknown(table, _TABLE_KEYS, where)
    values = {k: problems.take(table, k, type(getattr(base, k)), getattr(base, k), where)
              for k in sorted(_TABLE_KEYS & set(table))}
    for key in ("streams_file", "output", "mirror"):
        if values.get(key) and not Path(values[key]).is_absolute():
            values[key] = str((base_dir / values[key]).resolve())
    sched = dataclasses.replace(base, **values)
    # At least an hour, or a firing due between two ticks would never be inside the window.
    if not 1 <= sched.catch_up_hours <= 24 * 31:
        problems.add(f"{where}catch_up_hours", f"must be 1..744, got {sched.catch_up_hours}")
    if not 10 <= sched.tick_s <= 3600:
        problems.add(f"{where}tick_s", f"must be 10..3600 seconds, got {sched.tick_s}")
    return sched


def load_streams(sched: ScheduleConfig, release_keys: list[str]) -> tuple[ScheduleConfig, list[str]]:
    """Read sched.streams_file; (config with streams, ['file: key: problem', ...])."""
    path = Path(sched.streams_file)
    problems: list[str] = []

    def add(key: str, message: str) -> None:
        problems.append(f"{path}: {key}: {message}")

    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return sched, [f"{path}: file not found (set schedule.streams_file in the config)"]
    except IsADirectoryError:
        return sched, [f"{path}: is a directory, expected a TOML file (schedule.streams_file)"]
    except OSError as exc:
        return sched, [f"{path}: cannot read: {exc.strerror or exc}"]
    except UnicodeDecodeError:
        return sched, [f"{path}: invalid TOML: not UTF-8 text"]
    except tomllib.TOMLDecodeError as exc:
        return sched, [f"{path}: invalid TOML: {exc}"]
    for key in sorted(set(doc) - {"milestones", "streams"}):
        add(key, "unknown key (allowed: milestones, streams)")
    milestone_time = sched.milestone_time
    stones = doc.get("milestones", {})
    if not isinstance(stones, dict):
        add("milestones", "expected a table")
        stones = {}
    for key in sorted(set(stones) - {"time"}):
        add(f"milestones.{key}", "unknown key (allowed: time)")
    if "time" in stones:
        value = stones["time"]
        text = value.isoformat(timespec="minutes") if isinstance(value, dt.time) else value
        if isinstance(text, str) and re.fullmatch(r"\d\d:\d\d", text) and _is_time(text):
            milestone_time = text
        else:
            add("milestones.time", f"expected a UTC time of day HH:MM, got {value!r}")
    table = doc.get("streams", [])
    if not isinstance(table, list):
        add("streams", "expected [[streams]] tables")
        table = []
    known = {k.lower(): k for k in release_keys}
    seen: dict[str, int] = {}
    streams = []
    for i, entry in enumerate(table):
        where = f"streams[{i}]"
        if not isinstance(entry, dict):
            add(where, "expected a table")
            continue
        for key in sorted(set(entry) - {"name", "release", "cron"}):
            add(f"{where}.{key}", "unknown key (allowed: cron, name, release)")
        fields = {}
        for key in ("name", "release", "cron"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                add(f"{where}.{key}", f"is required and must be a string, got {value!r}")
            fields[key] = value.strip() if isinstance(value, str) else ""
        name, release, expr = fields["name"], fields["release"], fields["cron"]
        if name and (bad := path_component_problem(name)):
            add(f"{where}.name", f"{bad} (it becomes part of a path)")
        if name.lower() in seen:
            add(f"{where}.name", f"duplicate stream name '{name}' (also streams[{seen[name.lower()]}])")
        elif name:
            seen[name.lower()] = i
        if release and known and release.lower() not in known:
            add(f"{where}.release", f"unknown release '{release}' (known: {', '.join(release_keys)})")
        if expr and (bad := cron.problem(expr)):
            add(f"{where}.cron", bad)
        streams.append(Stream(name=name, release=known.get(release.lower(), release), cron=expr))
    return dataclasses.replace(sched, milestone_time=milestone_time, streams=tuple(streams)), problems


def _is_time(text: str) -> bool:
    try:
        dt.time.fromisoformat(text)
    except ValueError:
        return False
    return True
