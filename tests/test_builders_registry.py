"""The builder registry: names known without importing a backend, classes imported on demand."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from rel_eng.builders import BUILDER_CLASSES, BUILDERS, Registry
from rel_eng.builders.synthetic import SyntheticBuilder


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_names_are_known_before_any_backend_is_imported():
    out = run("""
        import sys
        from rel_eng.builders import BUILDERS
        import rel_eng.config
        print(sorted(BUILDERS), "koji" in BUILDERS, "nope" in BUILDERS,
              [m for m in ("koji", "requests", "rel_eng.builders.koji", "rel_eng.builders.oz")
               if m in sys.modules])
        cls = BUILDERS["koji"]
        print(cls.__name__, "koji" in sys.modules, "rel_eng.builders.oz" in sys.modules)
    """)
    assert out.splitlines() == ["['koji', 'oz', 'synthetic'] True False []",
                                "KojiBuilder True False"]


def test_every_entry_resolves_to_a_builder_of_that_name():
    for name in BUILDER_CLASSES:
        assert BUILDERS[name].name == name


def test_overrides_and_new_names_come_and_go(monkeypatch):
    class Other(SyntheticBuilder):
        name = "other"

    with monkeypatch.context() as m:
        m.setitem(BUILDERS, "synthetic", Other)
        m.setitem(BUILDERS, "other", Other)
        assert BUILDERS["synthetic"] is Other and "other" in BUILDERS
    assert BUILDERS["synthetic"] is SyntheticBuilder and "other" not in BUILDERS


def test_an_unknown_name_is_a_key_error_and_a_bad_target_says_which():
    reg = Registry({"gone": "rel_eng.builders.nonexistent:Gone"})
    with pytest.raises(KeyError):
        reg["nope"]
    assert not reg.loaded("gone")
    with pytest.raises(ModuleNotFoundError, match="rel_eng.builders.nonexistent"):
        reg["gone"]


def test_config_reads_the_registrys_own_table(monkeypatch):
    """Config checks names in rel_eng.builder_names without importing the registry; a builder
    registered at run time is a name it accepts, and unregistered again one it refuses."""
    from rel_eng.builder_names import BUILDER_CLASSES as TABLE
    from rel_eng.config.model import _builder

    class Other(SyntheticBuilder):
        name = "other"

    assert TABLE is BUILDER_CLASSES
    refused = _builder("other")  # other tests may have registered names of their own
    assert refused.startswith("unknown builder 'other' (known: ")
    assert {"koji", "oz", "synthetic"} <= set(refused.partition("known: ")[2][:-1].split(", "))
    with monkeypatch.context() as m:
        m.setitem(BUILDERS, "other", Other)
        assert _builder("other") is None and BUILDERS.loaded("other")
        assert TABLE["other"].endswith(":test_config_reads_the_registrys_own_table.<locals>.Other")
    assert "other" not in TABLE and _builder("other") is not None
    assert TABLE["synthetic"] == "rel_eng.builders.synthetic:SyntheticBuilder"
