"""Builders behind one small interface (base.Builder), in a lazy registry by name.

`BUILDER_CLASSES` (rel_eng.builder_names, a leaf) maps each name to "module:Class", as
rel_eng.cli.COMMAND_MODULES does for subcommands: a backend (and koji, requests, lxml...) is
imported only when its name is looked up in `BUILDERS`. Config validates builder names against
that table, importing neither this package nor a backend, so loading a config or a plan never
pulls in Koji. No builder knows about another.

`BUILDERS` is a small mutable mapping: `BUILDERS[name]` gives the class, and an assignment
(`BUILDERS[name] = cls`, or pytest's `monkeypatch.setitem`) adds or overrides one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from rel_eng.builder_names import BUILDER_CLASSES
from rel_eng.builders.base import Builder, BuildHandle, BuildOutcome, BuildRequest


class Registry(MutableMapping):
    """name -> Builder class, each entry "module:Class" until first asked for.

    The names live in `targets`, which is shared, not copied: the table config reads is the
    registry's own, so a name added here is a name config accepts.
    """

    def __init__(self, targets: dict[str, str]):
        self._targets = targets
        self._classes: dict[str, type[Builder]] = {}

    def __getitem__(self, name: str) -> type[Builder]:
        target = self._targets[name]
        if name not in self._classes:
            module, _, attr = target.partition(":")
            self._classes[name] = getattr(importlib.import_module(module), attr)
        return self._classes[name]

    def __setitem__(self, name: str, cls: type[Builder] | str) -> None:
        self._classes.pop(name, None)
        if isinstance(cls, str):
            self._targets[name] = cls
        else:
            self._targets[name] = f"{cls.__module__}:{cls.__qualname__}"
            self._classes[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._targets[name]
        self._classes.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __contains__(self, name: object) -> bool:  # never imports
        return name in self._targets

    def loaded(self, name: str) -> bool:
        """Whether `name`'s class has been imported yet."""
        return name in self._classes

    def __repr__(self) -> str:
        return f"Registry({sorted(self._targets)})"


BUILDERS = Registry(BUILDER_CLASSES)

__all__ = ["BUILDERS", "BUILDER_CLASSES", "Builder", "BuildHandle", "BuildOutcome", "BuildRequest",
           "Registry"]
