"""The test doubles shared by several tests keep the signatures of the real code they replace,
and reach into none of its private state (a renamed private attribute would break them silently
or, worse, leave them testing something else).

Doubles defined inside one test check themselves there (tests.signatures). Koji hub methods in
tests/kojihub/hub.py follow the hub's API, which is not importable here (no koji-hub package):
the real koji.ClientSession calling them over XML-RPC is what checks those.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import appliance_builder  # noqa: E402
import distributed_builders  # noqa: E402
import web_fixtures  # noqa: E402
from signatures import assert_overrides_match, assert_same_signature, params  # noqa: E402

from rel_eng.builders.base import Builder  # noqa: E402
from rel_eng.builders.synthetic import SyntheticBuilder  # noqa: E402


SHARED_FAKES = [distributed_builders.SlowBuilder, distributed_builders.BrokenBuilder,
                web_fixtures.KojiLikeBuilder, web_fixtures.FailingI686,
                appliance_builder.ApplianceBuilder]


@pytest.mark.parametrize("fake", SHARED_FAKES, ids=lambda f: f.__name__)
def test_distributed_test_builders_match_the_builder_interface(fake):
    assert assert_overrides_match(fake) >= 1
    for name in ("submit", "wait", "collect", "cancel"):
        assert_same_signature(getattr(fake, name), getattr(Builder, name))


def test_store_recorder_broken_builder_matches():
    from test_store_recorder import BrokenI686

    assert assert_overrides_match(BrokenI686) == 1


def test_a_drifted_fake_is_caught():
    class Drifted(SyntheticBuilder):
        def wait(self, handles, deadline=None):  # renamed keyword: callers passing timeout= break
            return []

    with pytest.raises(AssertionError, match="does not match"):
        assert_overrides_match(Drifted)
    assert params(Drifted.wait) != params(SyntheticBuilder.wait)


def _product_privates(tree: ast.Module, name: str) -> set[str]:
    """The `self._x` names used inside the rel_eng class `name` imported by this module (and its
    rel_eng bases)."""
    import importlib
    import inspect
    import re

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rel_eng"):
            if any((a.asname or a.name) == name for a in node.names):
                real = getattr(importlib.import_module(node.module),
                               next(a.name for a in node.names if (a.asname or a.name) == name))
                return {m for cls in real.__mro__ if cls.__module__.startswith("rel_eng.")
                        for m in re.findall(r"self\.(_[a-z]\w*)", inspect.getsource(cls))}
    return set()


def _private_reads_of_bases(tree: ast.Module) -> list[str]:
    """`self._x` that a class of this module reads without it or a base of this module setting
    or defining it, or reads or writes while the rel_eng class it extends uses the same name:
    private state of the real class."""
    classes = {c.name: c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)}

    def own(cls: ast.ClassDef) -> tuple[set, set, set]:
        sets, reads, stores = set(), set(), set()
        for node in ast.walk(cls):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node in cls.body:
                sets.add(node.name)
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "self" and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                if isinstance(node.ctx, ast.Store):
                    sets.add(node.attr)
                    stores.add(node.attr)
                else:
                    reads.add(node.attr)
        for stmt in cls.body:
            for target in getattr(stmt, "targets", [getattr(stmt, "target", None)]):
                if isinstance(target, ast.Name):
                    sets.add(target.id)
        return sets, reads, stores

    bad = []
    for cls in classes.values():
        sets, reads, stores = own(cls)
        product = set()
        todo = [b.id for b in cls.bases if isinstance(b, ast.Name)]
        while todo:
            name = todo.pop()
            base = classes.get(name)
            if base is None:
                product |= _product_privates(tree, name)
                continue
            sets |= own(base)[0]
            todo += [b.id for b in base.bases if isinstance(b, ast.Name)]
        touched = (reads - sets) | ((reads | stores) & product)
        bad += [f"{cls.name}.{attr}" for attr in sorted(touched)]
    return bad


def test_no_test_double_touches_private_state_of_the_class_it_extends():
    here = Path(__file__).resolve().parent
    found = {}
    for path in sorted(here.glob("*.py")) + sorted(here.glob("*/*.py")):
        bad = _private_reads_of_bases(ast.parse(path.read_text()))
        if bad:
            found[str(path.relative_to(here))] = bad
    assert found == {}


@pytest.mark.parametrize("body", [
    "    def wait(self, handles, timeout=None):\n"
    "        return [self._requests[h.job_key] for h in handles]\n",
    "    def submit(self, requests):\n"
    "        self._requests = {}\n        return []\n",
], ids=["reads", "writes"])
def test_the_private_state_check_catches_a_reach_in(body):
    tree = ast.parse("from rel_eng.builders.synthetic import SyntheticBuilder\n"
                     "class Fake(SyntheticBuilder):\n" + body)
    assert _private_reads_of_bases(tree) == ["Fake._requests"]
