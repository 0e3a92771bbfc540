"""Every key of every table, rendered from the tables themselves: `rel-eng validate --keys`.

The output is a TOML file of the defaults with each key's help, type and bounds as a comment,
so it can be copied as a starting config and can never drift from what the parser accepts.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from rel_eng.config.model import Config
from rel_eng.config.table import Rule, rules, sections


_KINDS = {str: "string", bool: "bool", int: "integer", float: "number", tuple: "list"}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def _bounds(rule: Rule) -> str:
    unit = f" {rule.unit}" if rule.unit else ""
    if rule.octal and rule.low is not None and rule.high is not None:
        return f"0o{int(rule.low):o}..0o{int(rule.high):o}{unit}"
    if rule.low is not None and rule.high is not None:
        return f"{rule.low:g}..{rule.high:g}{unit}"
    if rule.low is not None:
        return f"at least {rule.low:g}{unit}"
    if rule.choices:
        return "one of " + ", ".join(json.dumps(c) for c in rule.choices)
    return ""


def _lines(obj: Any, data: dict[str, Any]) -> list[str]:
    out = []
    defaults = type(obj)()
    for name, rule in rules(type(obj)).items():
        kind = _KINDS.get(type(getattr(defaults, name)), "")
        notes = "; ".join(n for n in (kind, _bounds(rule), rule.help) if n)
        value = f"0o{data[name]:o}" if rule.octal else _toml(data[name])
        out.append(f"{name} = {value}  # {notes}")
    return out


def render(config: Config | None = None) -> str:
    """The reference of `config`'s values (the defaults when None)."""
    config = config or Config()
    out = ["# rel-eng configuration: every key, its default, type, bounds and meaning", "",
           "[compose]", *_lines(config, config.to_dict())]
    for table, f in sections(Config).items():
        value = getattr(config, f.name)
        if isinstance(value, tuple):  # [images.<key>]: one table per entry
            for item in value:
                out += ["", f"[{table}.{item.key}]", *_lines(item, dataclasses.asdict(item))]
            continue
        out += ["", f"[{table}]", *_lines(value, value.to_dict())]
    return "\n".join(out) + "\n"
