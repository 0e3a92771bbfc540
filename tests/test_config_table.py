"""The one config parser: a section declared as a table of settings gets type, range, choice,
path and cross-key checks, reports in one order, and a JSON round trip, with nothing of its own."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass

import pytest

from rel_eng.cli import main
from rel_eng.config import Config, Problems, load_config
from rel_eng.config.reference import render
from rel_eng.errors import ConfigError
from rel_eng.config.table import NOTHING, Section, derived, parse_table, setting


def _even(value, problems, key, base_dir):
    if not isinstance(value, int) or value % 2:
        problems.add(key, f"expected an even integer, got {value!r}")
        return NOTHING
    return value


@dataclass(frozen=True)
class Toy(Section):
    """A section no module has: what a newcomer adds for a new feature."""
    name: str = setting("toy", "what it is called", valid=lambda v: None if v else "must not be empty")
    size: int = setting(4, "how big", low=1, high=8, unit="GiB")
    ratio: float = setting(0.5, "a share", low=0.0, high=1.0)
    mode: str = setting("fast", "how", choices=("fast", "slow"))
    tags: tuple[str, ...] = setting(("a",), "labels")
    pairs: tuple[tuple[str, str], ...] = setting((), "name/value pairs")
    where: str = setting("", "a directory", path="relative")
    home: str = setting("", "an absolute directory", path="absolute", why_absolute="the tool needs it")
    even: int = setting(2, "an even number", convert=_even)
    seen: str = derived("", "filled in by the loader, never a key of the table")

    def check(self, problems, where):
        if self.mode == "slow" and self.size > 4:
            problems.add(f"{where}size", "must be at most 4 when mode is slow")


def parse(table, tmp_path=None):
    problems = Problems("toy.toml")
    return parse_table(Toy, table, problems, "toy.", tmp_path), problems.items


def test_a_good_table_parses_and_round_trips_through_json(tmp_path):
    toy, found = parse({"name": "x", "size": 8, "ratio": 1, "mode": "slow", "tags": ["b", "c"],
                        "where": "sub", "home": "/srv", "even": 6}, tmp_path)
    assert found == ["toy.toml: toy.size: must be at most 4 when mode is slow"]
    assert (toy.ratio, type(toy.ratio)) == (1.0, float)  # an integer is a fine float
    assert toy.tags == ("b", "c") and toy.where == str(tmp_path / "sub") and toy.even == 6
    again = Toy.from_dict(json.loads(json.dumps(Toy(pairs=(("k", "v"),)).to_dict())))
    assert again == Toy(pairs=(("k", "v"),))


def test_every_mistake_is_reported_once_with_its_key_in_a_fixed_order():
    _, found = parse({"name": "", "size": 0, "ratio": True, "mode": "medium", "tags": [1],
                      "home": "rel", "even": 3, "seen": "x", "colour": "red"})
    allowed = "(allowed: even, home, mode, name, pairs, ratio, size, tags, where)"
    assert found == [
        f"toy.toml: toy.colour: unknown key {allowed}",
        f"toy.toml: toy.seen: unknown key {allowed}",  # derived: never read from the file
        "toy.toml: toy.even: expected an even integer, got 3",
        "toy.toml: toy.ratio: expected a number, got bool True",
        "toy.toml: toy.tags: item 0: expected str, got int 1",
        "toy.toml: toy.size: must be 1..8 GiB, got 0",
        "toy.toml: toy.mode: must be one of fast, slow, got 'medium'",
        "toy.toml: toy.name: must not be empty",
        "toy.toml: toy.home: must be an absolute path (the tool needs it), got 'rel'",
    ]


@pytest.mark.parametrize("value", ["a\0b", 2**64, [["x"]]])
def test_values_no_consumer_can_take_are_refused(value):
    _, found = parse({"name": value} if not isinstance(value, list) else {"tags": value})
    assert len(found) == 1 and found[0].startswith("toy.toml: toy.")


def test_a_table_that_is_not_a_table():
    toy, found = parse(["x"])
    assert toy == Toy() and found == ["toy.toml: toy: expected a table, got list ['x']"]


def test_the_key_reference_is_a_config_of_the_defaults(tmp_path, capsys):
    """`rel-eng validate --keys` prints every key of every table; loaded back, it is the default
    config, so the reference cannot drift from what the parser accepts."""
    assert main(["validate", "--keys"]) == 0
    text = capsys.readouterr().out
    assert text == render()
    doc = tomllib.loads(text)
    assert set(doc) == {"compose", "signing", "celery", "ec2", "koji", "oz", "store", "schedule",
                        "messaging", "boot_test", "images", "web", "release"}
    assert "poll_interval = 20.0  # number; 0.01..3600 seconds;" in text
    assert "closed_mode = 0o700  # integer; 0o0..0o777;" in text  # a mode reads as one
    path = tmp_path / "rel-eng.toml"
    path.write_text(text)
    loaded = load_config(path)
    default = load_config()
    assert loaded.schedule.output == str(tmp_path / "out")  # relative to the file, as any path
    same = {"source": "", "schedule": {**default.to_dict()["schedule"], "output": "out"}}
    assert loaded.to_dict() | same == default.to_dict() | same
    assert isinstance(loaded, Config)


@pytest.mark.parametrize("body, problem", [
    ('bind = "nohost"', "web.bind: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"),
    ('bind = "example.org:80"', "web.bind: 'example.org' is not an IP address"),
    ('bind = "127.0.0.1:99999"', "web.bind: port '99999' is not a number 0..65535"),
    ("poll_ms = 50", "web.poll_ms: must be 100..600000, got 50"),
])
def test_a_section_added_as_one_dataclass_gets_the_same_reports(tmp_path, body, problem):
    """[web] is one dataclass and one `section` line; nothing else was written to parse it."""
    path = tmp_path / "rel-eng.toml"
    path.write_text(f"[web]\n{body}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}: {problem}"]
    path.write_text('[web]\nbind = "[::1]:0"\npoll_ms = 500\n')
    assert (load_config(path).web.bind, load_config(path).web.poll_ms) == ("[::1]:0", 500)
