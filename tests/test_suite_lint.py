"""Assertions that cannot fail are kept out of the suite, read from its source:

- an `or` at the top of an assert: one branch true is enough, so the other is never checked
  (write two asserts, or one exact expectation);
- `assert x is not None` alone: proves only that something was returned;
- an assert inside a `for` over something that may be empty: zero iterations pass silently. The
  loop's iterable must be a literal, an uppercase constant, the plan's images, or a name the
  test asserts on (its length, its contents); else say why it is never empty in a
  `# non-empty: ...` comment on the `for` line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# (file, start of the assert's source) -> why its `or` is right. Short, with reasons.
ALLOWED_OR = {
    ("test_boot_test_vm.py", "not Path(f'/proc/{pid}').exists() or b'qemu' not in"):
        "a qemu pid that is gone, or reused by another program, is a qemu that was killed",
    ("test_boot_gate_compose.py", "not (out / 'mirror').exists() or not any("):
        "nothing staged: no mirror, or a mirror without any qcow2",
}


def _test_functions(tree):
    return [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")]


def _asserted(f) -> set[str]:
    out = set()
    for a in ast.walk(f):
        if isinstance(a, ast.Assert):
            for n in ast.walk(a.test):
                if isinstance(n, (ast.Name, ast.Attribute, ast.Subscript)):
                    out.add(ast.unparse(n))
    return out


def _never_empty(it, asserted: set[str]) -> bool:
    src = ast.unparse(it)
    if isinstance(it, (ast.List, ast.Tuple, ast.Set)):
        return bool(it.elts)
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) \
            and it.func.attr in ("items", "values", "keys"):
        return _never_empty(it.func.value, asserted)
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name):
        if it.func.id == "range":
            return True
        if it.func.id in ("enumerate", "zip", "sorted", "reversed", "list"):
            return bool(it.args) and all(_never_empty(a, asserted) for a in it.args[:1])
    if isinstance(it, ast.Name):
        return it.id.isupper() or src in asserted
    if isinstance(it, (ast.Attribute, ast.Subscript)):
        last = src.rsplit(".", 1)[-1]
        return src in asserted or src.endswith("plan.images") or last.isupper()
    return False


def problems(source: str, name: str) -> list[str]:
    tree = ast.parse(source)
    lines = source.splitlines()
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        test = node.test
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
            text = ast.unparse(test)
            if not any(f == name and text.startswith(start) for f, start in ALLOWED_OR):
                out.append(f"{name}:{node.lineno}: `or` in an assert: {text[:80]}")
        if (isinstance(test, ast.Compare) and len(test.ops) == 1
                and isinstance(test.ops[0], ast.IsNot)
                and isinstance(test.comparators[0], ast.Constant)
                and test.comparators[0].value is None):
            out.append(f"{name}:{node.lineno}: assert ... is not None proves only that something "
                       f"was returned: {ast.unparse(test)[:80]}")
    for f in _test_functions(tree):
        asserted = _asserted(f)
        for loop in ast.walk(f):
            if not isinstance(loop, ast.For):
                continue
            if not any(isinstance(x, ast.Assert) for s in loop.body for x in ast.walk(s)):
                continue
            if "# non-empty:" in lines[loop.lineno - 1]:
                continue
            if not _never_empty(loop.iter, asserted):
                out.append(f"{name}:{loop.lineno}: asserts in a loop over "
                           f"`{ast.unparse(loop.iter)[:60]}`, which may be empty")
    return out


def test_the_suite_has_no_assertion_that_cannot_fail():
    found = []
    for path in sorted(HERE.glob("test_*.py")):
        found += problems(path.read_text(), path.name)
    assert found == []


@pytest.mark.parametrize("source, what", [
    ("def test_a(r):\n    assert r.ok or r.status == 'fail'\n", "`or` in an assert"),
    ("def test_a(r):\n    assert r.calls is not None\n", "is not None"),
    ("def test_a(d):\n    for p in d.glob('*'):\n        assert p.stat().st_size\n", "may be empty"),
    ("def test_a(rows):\n    for r in rows:\n        assert r['x'] or 'x' not in r\n", "may be empty"),
])
def test_the_lint_catches_each_kind(source, what):
    assert any(what in p for p in problems(source, "test_x.py"))


@pytest.mark.parametrize("source", [
    "def test_a(rows):\n    assert len(rows) == 4\n    for r in rows:\n        assert r\n",
    "def test_a(c):\n    for j in c.plan.images:\n        assert j\n",
    "def test_a(d):\n    for p in d.glob('*'):  # non-empty: made above\n        assert p\n",
    "def test_a():\n    for x in [1, 2]:\n        assert x\n",
])
def test_the_lint_accepts_loops_that_run(source):
    assert problems(source, "test_x.py") == []
