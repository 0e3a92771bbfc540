"""Builders behind one small interface (base.Builder), in a lazy registry by name.

`BUILDER_CLASSES` maps each name to "module:Class", as rel_eng.cli.COMMAND_MODULES does for
subcommands: a backend (and koji, requests, lxml...) is imported only when its name is looked
up in `BUILDERS`. Config validates builder names against the registry's keys, which imports no
backend, so loading a config or a plan never pulls in Koji. No builder knows about another.

`BUILDERS` is a small mutable mapping: `BUILDERS[name]` gives the class, and an assignment
(`BUILDERS[name] = cls`, or pytest's `monkeypatch.setitem`) adds or overrides one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from rel_eng.builders.base import Builder, BuildHandle, BuildOutcome, BuildRequest

BUILDER_CLASSES: dict[str, str] = {
    "synthetic": "rel_eng.builders.synthetic:SyntheticBuilder",
    "oz": "rel_eng.builders.oz:OzBuilder",
    "koji": "rel_eng.builders.koji:KojiBuilder",
}


class Registry(MutableMapping):
    """name -> Builder class, each entry "module:Class" until first asked for."""

    def __init__(self, targets: dict[str, str]):
        self._entries: dict[str, str | type[Builder]] = dict(targets)

    def __getitem__(self, name: str) -> type[Builder]:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = self._entries[name] = getattr(importlib.import_module(module), attr)
        return entry

    def __setitem__(self, name: str, cls: type[Builder] | str) -> None:
        self._entries[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:  # never imports
        return name in self._entries

    def loaded(self, name: str) -> bool:
        """Whether `name`'s class has been imported yet."""
        return not isinstance(self._entries.get(name, ""), str)

    def __repr__(self) -> str:
        return f"Registry({sorted(self._entries)})"


BUILDERS = Registry(BUILDER_CLASSES)

__all__ = ["BUILDERS", "BUILDER_CLASSES", "Builder", "BuildHandle", "BuildOutcome", "BuildRequest",
           "Registry"]
