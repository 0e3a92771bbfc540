"""One table per section, one parser for all of them, one JSON round trip.

A section is a frozen dataclass whose fields are declared with `setting(...)`: the key's default
(its type follows from it), help, range, choices, list item type and path rule. `parse_table`
walks those declarations, so every section reports the same mistakes the same way, and
`Section.to_dict`/`from_dict` carry any section through JSON (manifests, task queues) by its
fields' types. Rules that tie several keys together live in the section's `check`.
Adding a section is one such dataclass and one `section(...)` field on config.model.Config.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rel_eng.config.problems import Problems, bad_value, short

NOTHING = object()  # a converter's "leave the default" (the problem is already recorded)


@dataclass(frozen=True)
class Rule:
    """What one key must be; see `setting`."""

    help: str
    low: float | None = None
    high: float | None = None
    unit: str = ""  # shown after a range: "must be 10..3600 seconds, got 5"
    choices: tuple = ()
    noun: str = ""  # "compression": "unknown compression 'lz4' (use zlib, zstd, none)"
    item: type | None = None  # the type of a list's items (tuple fields; str by default)
    path: str = ""  # "relative": resolved against the config file's dir; "absolute": required
    why_absolute: str = ""
    valid: Callable[[Any], str | None] | None = None  # value -> what is wrong with it, or None
    convert: Callable[..., Any] | None = None  # (value, problems, key, base_dir) -> value
    in_table: bool = True  # False: filled from elsewhere, never a key of the TOML table
    octal: bool = False  # a file mode: shown as 0o700 (TOML's octal integers)


def setting(default: Any, help: str, **rule: Any) -> Any:
    """A dataclass field declaring one config key."""
    return dataclasses.field(default=default, metadata={"rule": Rule(help=help, **rule)})


def derived(default: Any, help: str) -> Any:
    """A field that is not a key of the table (set from another file or by the loader)."""
    return setting(default, help, in_table=False)


def section(kind: type, name: str, parse: Callable[..., Any] | None = None,
            default: Callable[[], Any] | None = None) -> Any:
    """A field of Config holding the `[name]` table: parsed by `parse(table, problems, where,
    base_dir)` when given, else by parse_table into `kind`."""
    return dataclasses.field(default_factory=default or kind,
                             metadata={"section": name, "kind": kind, "parse": parse})


def sections(cls: type) -> dict[str, dataclasses.Field]:
    """Table name -> the field of `cls` that holds it, in declaration order."""
    return {f.metadata["section"]: f for f in dataclasses.fields(cls) if "section" in f.metadata}


def parse_section(f: dataclasses.Field, table: Any, problems: Problems, base_dir: Path | None) -> Any:
    where = f"{f.metadata['section']}."
    if f.metadata["parse"] is not None:
        return f.metadata["parse"](table, problems, where, base_dir)
    return parse_table(f.metadata["kind"], table, problems, where, base_dir)


def rules(cls: type) -> dict[str, Rule]:
    """The table keys of a section, in declaration order."""
    return {f.name: f.metadata["rule"] for f in dataclasses.fields(cls)
            if "rule" in f.metadata and f.metadata["rule"].in_table}


class Section:
    """What every section dataclass offers: JSON round trip and a hook for cross-key rules."""

    def check(self, problems: Problems, where: str) -> None:
        """Rules that involve more than one key, or the world outside the file."""

    def problems(self, source: str, where: str) -> list[str]:
        """Every value rule of the table, for a section built in code rather than loaded."""
        found = Problems(source)
        check_values(self, found, where)
        return found.items

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return from_json(cls, data)


def parse_table(cls: type, table: Any, problems: Problems, where: str,
                base_dir: Path | None = None, base: Any = None) -> Any:
    """`table` -> an instance of `cls`; every mistake goes to `problems` with its key.

    Order of reports: unknown keys, wrong types, ranges, choices, `valid`, paths, then `check`.
    """
    base = cls() if base is None else base
    if not isinstance(table, dict):
        problems.add(where.rstrip("."), f"expected a table, got {type(table).__name__} {short(table)}")
        return base
    keys = rules(cls)
    problems.unknown(table, set(keys), where)
    values: dict[str, Any] = {}
    for name in sorted(set(keys) & set(table)):
        value = _take(keys[name], table, name, getattr(base, name), problems, where, base_dir)
        if value is not NOTHING:
            values[name] = value
    cfg = dataclasses.replace(base, **values)
    check_values(cfg, problems, where)
    return cfg


def check_values(cfg: Any, problems: Problems, where: str) -> None:
    """The value rules of `cfg`'s table (ranges, choices, `valid`, paths, then `check`): what
    parse_table applies after reading, and what a section built in code is checked with."""
    keys = rules(type(cfg))
    for name, rule in keys.items():
        _check_range(rule, name, getattr(cfg, name), problems, where)
    for name, rule in keys.items():
        value = getattr(cfg, name)
        if rule.choices and value not in rule.choices:
            problems.add(f"{where}{name}", _choice_message(rule, value))
    for name, rule in keys.items():
        bad = rule.valid(getattr(cfg, name)) if rule.valid else None
        if bad:
            problems.add(f"{where}{name}", bad)
    for name, rule in keys.items():
        value = getattr(cfg, name)
        if rule.path == "absolute" and value and not Path(value).is_absolute():
            why = f" ({rule.why_absolute})" if rule.why_absolute else ""
            problems.add(f"{where}{name}", f"must be an absolute path{why}, got '{value}'")
    if isinstance(cfg, Section):
        cfg.check(problems, where)


def _take(rule: Rule, table: dict, name: str, default: Any, problems: Problems, where: str,
          base_dir: Path | None) -> Any:
    if rule.convert is not None:
        bad = bad_value(table[name], None)
        if bad:
            problems.add(f"{where}{name}", bad)
            return NOTHING
        return rule.convert(table[name], problems, f"{where}{name}", base_dir)
    if isinstance(default, tuple):
        value = problems.take(table, name, list, NOTHING, where, item=rule.item or str)
        return NOTHING if value is NOTHING else tuple(value)
    kind = (int, float) if isinstance(default, float) else type(default)
    value = problems.take(table, name, kind, NOTHING, where)
    if value is NOTHING:
        return NOTHING
    if isinstance(default, float):
        value = float(value)
    if rule.path == "relative" and value and base_dir is not None and not Path(value).is_absolute():
        value = str((base_dir / value).resolve())
    return value


def _number(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _check_range(rule: Rule, name: str, value: Any, problems: Problems, where: str) -> None:
    if rule.low is None and rule.high is None:
        return
    low = rule.low if rule.low is not None else float("-inf")
    high = rule.high if rule.high is not None else float("inf")
    if low <= value <= high:
        return
    unit = f" {rule.unit}" if rule.unit else ""
    if rule.high is None:
        problems.add(f"{where}{name}", f"must be at least {_number(low)}{unit}")
    else:
        problems.add(f"{where}{name}", f"must be {_number(low)}..{_number(high)}{unit}, got {value}")


def _choice_message(rule: Rule, value: Any) -> str:
    quote = "" in rule.choices  # an empty choice must show
    shown = [repr(c) if quote else str(c) for c in rule.choices]
    if rule.noun:
        return f"unknown {rule.noun} {value!r} (use {', '.join(shown)})"
    return f"must be one of {', '.join(shown)}, got {value!r}"


def from_json(cls: type, data: dict[str, Any]) -> Any:
    """The inverse of dataclasses.asdict for a dataclass with typed fields."""
    hints = typing.get_type_hints(cls)
    # An unknown key stays in and fails as a TypeError: never silently dropped.
    return cls(**{k: _value(hints[k], v) if k in hints else v for k, v in data.items()})


def _value(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if isinstance(value, dict):  # a mapping saved as a JSON object: its sorted items
            value = sorted(value.items())
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v) for v in value)
        return tuple(_value(a, v) for a, v in zip(args, value))
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return hint.from_dict(value) if hasattr(hint, "from_dict") else from_json(hint, value)
    return value
