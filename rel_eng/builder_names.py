"""The builder registry's table: name -> "module:Class". A leaf: it imports nothing of rel_eng.

Config checks a builder name here (`name in BUILDER_CLASSES`) without importing the registry,
the Builder interface or a backend, so the settings layer never reaches up into the builders.
rel_eng.builders.BUILDERS is a view of this same dict: a builder registered there at run time
(`BUILDERS[name] = cls`, a test's `monkeypatch.setitem`) is a name config accepts too.
"""

from __future__ import annotations

BUILDER_CLASSES: dict[str, str] = {
    "synthetic": "rel_eng.builders.synthetic:SyntheticBuilder",
    "oz": "rel_eng.builders.oz:OzBuilder",
    "koji": "rel_eng.builders.koji:KojiBuilder",
}
