"""schedules/streams.toml and [schedule]: parsed at load, every mistake told with file and key, by
`rel-eng validate` and at the start of any command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rel_eng.cli import main
from rel_eng.config import Config, load_config
from rel_eng.errors import ConfigError
from rel_eng.paths import RELEASES_FILE
from rel_eng.config.schedule import ScheduleConfig, Stream

BAD_STREAMS = """
[milestones]
time = "25:00"

[[streams]]
name = "rawhide"
release = "rawhide"
cron = "0 6 * * 1"

[[streams]]
name = "Rawhide"
release = "rawhide"
cron = "0 6 * * 8"

[[streams]]
name = "f18 weekly"
release = "18"
cron = "0 6 * *"
every = "week"
"""


def write_config(tmp_path: Path, streams: str, releases: str | None = None, schedule: str = "") -> Path:
    (tmp_path / "streams.toml").write_text(streams)
    rel = ""
    if releases is not None:
        (tmp_path / "releases.toml").write_text(releases)
        rel = 'releases_file = "releases.toml"\n'
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(f"[compose]\n{rel}[schedule]\nstreams_file = \"streams.toml\"\n{schedule}")
    return cfg


def expected_problems(streams: Path) -> list[str]:
    return [
        f"{streams}: milestones.time: expected a UTC time of day HH:MM, got '25:00'",
        f"{streams}: streams[1].name: duplicate stream name 'Rawhide' (also streams[0])",
        f"{streams}: streams[1].cron: invalid cron expression '0 6 * * 8': day of week is 0-6 (0 = Sunday)",
        f"{streams}: streams[2].every: unknown key (allowed: cron, name, release)",
        f"{streams}: streams[2].name: 'f18 weekly' may hold only letters, digits, '.', '_', '+' and '-', "
        "starting with a letter or digit, and no '..' (it becomes part of a path)",
        f"{streams}: streams[2].release: unknown release '18' (known: 19, rawhide)",
        f"{streams}: streams[2].cron: invalid cron expression '0 6 * *': needs 5 fields "
        "(minute, hour, day of month, month, day of week), got 4",
    ]


def test_every_streams_mistake_is_reported_with_file_and_key(tmp_path):
    cfg = write_config(tmp_path, BAD_STREAMS)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert err.value.problems == expected_problems(tmp_path / "streams.toml")


def test_validate_and_every_command_stop_on_them(tmp_path, capsys):
    cfg = write_config(tmp_path, BAD_STREAMS)
    for argv in (["validate"], ["schedule"], ["trigger", "--release", "19", "--milestone", "Beta"],
                 ["compose", "--release", "19", "--milestone", "Beta", "--output", str(tmp_path)]):
        assert main([*argv, "--config", str(cfg)]) == 2, argv
        err = capsys.readouterr().err.splitlines()
        assert err == [f"rel-eng: error: {p}" for p in expected_problems(tmp_path / "streams.toml")]


def test_milestones_out_of_order_are_checked_once_in_releases_toml(tmp_path, capsys):
    releases = RELEASES_FILE.read_text().replace(
        "milestones = { Alpha = 2013-05-07, Beta = 2013-05-28, Final = 2013-07-02 }",
        "milestones = { Alpha = 2013-05-07, Beta = 2013-07-28, Final = 2013-07-02 }")
    cfg = write_config(tmp_path, '[[streams]]\nname = "branched"\nrelease = "19"\ncron = "0 6 * * 3"\n',
                       releases=releases)
    assert main(["validate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"rel-eng: error: {tmp_path / 'releases.toml'}: releases.19.milestones.Final: "
                   "2013-07-02 is not after Beta (2013-07-28)"]


def test_schedule_table_and_shipped_streams(tmp_path):
    config = load_config()
    assert config.schedule.streams == (Stream("rawhide", "rawhide", "0 6 * * 1"),
                                       Stream("branched", "19", "0 6 * * 3"))
    assert config.schedule.milestone_time == "04:00"
    cfg = write_config(tmp_path, Path(config.schedule.streams_file).read_text(),
                       schedule='output = "composes"\ncatch_up_hours = 24\ntick_s = 60\n')
    loaded = load_config(cfg)
    assert loaded.schedule == ScheduleConfig(
        streams_file=str(tmp_path / "streams.toml"), output=str(tmp_path / "composes"),
        catch_up_hours=24, tick_s=60, milestone_time="04:00", streams=config.schedule.streams)
    assert Config.from_dict(json.loads(json.dumps(loaded.to_dict()))) == loaded


def test_schedule_table_mistakes(tmp_path):
    cfg = write_config(tmp_path, "", schedule="catch_up_hours = 0\ntick_s = 5\nstreams = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert err.value.problems == [
        f"{cfg}: schedule.streams: unknown key (allowed: catch_up_hours, mirror, output, "
        "streams_file, tick_s)",
        f"{cfg}: schedule.catch_up_hours: must be 1..744, got 0",
        f"{cfg}: schedule.tick_s: must be 10..3600 seconds, got 5",
    ]


def test_a_missing_streams_file(tmp_path):
    cfg = write_config(tmp_path, "")
    (tmp_path / "streams.toml").unlink()
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert err.value.problems == [f"{tmp_path / 'streams.toml'}: file not found "
                                  "(set schedule.streams_file in the config)"]
