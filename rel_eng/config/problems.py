"""The one collector of problems: every parser and `rel-eng validate` report through it.

A problem is "file: key: what is wrong"; all of them are gathered and reported together
(ConfigError, exit 2), so one run shows every mistake instead of the first.
"""

from __future__ import annotations

import re
from typing import Any

from rel_eng.naming import path_component_problem

INT_MAX = 2**63 - 1  # what SQLite, JSON consumers and C time functions take


class Problems:
    """Collects problems; `source` (a file, or "(defaults)") prefixes those added with a key."""

    def __init__(self, source: str = ""):
        self.source = source
        self.items: list[str] = []
        self._keys: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, key: str, message: str) -> None:
        if key in self._keys:  # one bad value, one line: what follows from it is not repeated
            return
        self._keys.add(key)
        self.items.append(f"{self.source}: {key}: {message}" if self.source else f"{key}: {message}")

    def line(self, text: str) -> None:
        """A problem already written in full (e.g. an InputError's one line)."""
        self.items.append(text)

    def extend(self, lines) -> None:
        self.items.extend(lines)

    def take(self, table: dict, key: str, kind: type | tuple, default: Any, where: str,
             item: type | None = None) -> Any:
        """table[key] if it has the right type (lists: of `item`), else default and a problem."""
        if key not in table:
            return default
        value = table[key]
        ok = isinstance(value, kind) and not (_is_int_kind(kind) and isinstance(value, bool))
        if not ok:
            self.add(f"{where}{key}", f"expected {type_name(kind)}, got {type(value).__name__} "
                                      f"{short(value)}")
            return default
        bad = bad_value(value, item)
        if bad:
            self.add(f"{where}{key}", bad)
            return default
        return value

    def table(self, doc: dict, key: str, where: str = "") -> dict:
        """doc[key] when it is a table (or absent: {}); anything else is a problem."""
        value = doc.get(key, {})
        if not isinstance(value, dict):
            self.add(f"{where}{key}", f"expected a table, got {type(value).__name__} {short(value)}")
            return {}
        return value

    def name(self, key: str, value: str) -> None:
        """`value` becomes a file or directory name: one rule for all of them."""
        bad = path_component_problem(value)
        if bad:
            self.add(key, f"{bad} (it becomes part of a path)")

    def unknown(self, table: dict, allowed: set[str], where: str) -> None:
        for key in sorted(set(table) - set(allowed)):
            self.add(f"{where}{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _is_int_kind(kind: type | tuple) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return int in kinds or float in kinds


def type_name(kind: type | tuple) -> str:
    if isinstance(kind, tuple):
        return "a number" if set(kind) == {int, float} else " or ".join(k.__name__ for k in kind)
    return kind.__name__


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def bad_value(value: Any, item: type | None) -> str | None:
    """Values of the right TOML type that no consumer can take: NUL bytes, 64-bit overflow,
    list items of the wrong type."""
    if isinstance(value, str) and "\0" in value:
        return "contains a NUL character"
    if isinstance(value, str) and (ctl := _CONTROL.search(value)):
        # A newline or an ESC would break the one-line files, logs and errors it reaches.
        return f"contains a control character ({ctl.group()!r}); a value is one line of text"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_MAX:
        return f"{value} is too large (at most {INT_MAX})"
    if isinstance(value, list):
        for i, v in enumerate(value):
            if item is not None and (not isinstance(v, item) or isinstance(v, bool) and item is not bool):
                return f"item {i}: expected {item.__name__}, got {type(v).__name__} {short(v)}"
            bad = bad_value(v, None)
            if bad:
                return f"item {i}: {bad}"
    return None
