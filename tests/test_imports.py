"""The import structure: every module of rel_eng imports on its own, the light layers load no
backend library, and the import graph (imports inside functions included) has no cycle."""

from __future__ import annotations

import ast
import concurrent.futures as cf
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rel_eng"
# `python -m rel_eng` runs the CLI on import: it is checked by compiling, not importing.
RUNS_ON_IMPORT = {"rel_eng.__main__"}
# Run as a script by the system python, which has Debian's oz (rel_eng/tdl.py): imported there.
SYSTEM_PYTHON = {"rel_eng.ozcheck": "/usr/bin/python3"}
LIGHT = ("rel_eng.config", "rel_eng.plan", "rel_eng.builders")
BACKENDS = ("koji", "requests", "boto3", "botocore", "celery")


def module_names() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = module_names()


def python(code: str, executable: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([executable, "-c", code], capture_output=True, text=True, timeout=300)


def import_alone(module: str) -> subprocess.CompletedProcess:
    if module in SYSTEM_PYTHON:
        return python(f"import sys; sys.path.insert(0, {str(MODULES[module].parent)!r}); "
                      f"import {module.rpartition('.')[2]}", SYSTEM_PYTHON[module])
    return python(f"import {module}")


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """One interpreter per module, nothing imported before it: a module that works only when
    another happened to be imported first (a hidden cycle, a missing import) fails here."""
    names = sorted(set(MODULES) - RUNS_ON_IMPORT)
    assert len(names) > 50
    with cf.ThreadPoolExecutor(max_workers=4) as pool:  # the interpreters wait on I/O mostly
        results = dict(zip(names, pool.map(import_alone, names)))
    failed = {m: r.stderr.strip().splitlines()[-1] for m, r in results.items() if r.returncode}
    assert failed == {}
    compile(MODULES["rel_eng.__main__"].read_text(), "rel_eng/__main__.py", "exec")


@pytest.mark.parametrize("module", LIGHT)
def test_light_layers_load_no_backend_library(module):
    r = python(f"import sys, {module}\n"
               f"print(' '.join(m for m in {BACKENDS!r} if m in sys.modules))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"importing {module} loads {r.stdout.strip()}"


# What a command needs only once its input is good: the CLI loads none of it to build its
# parser or to refuse a bad config, so `--help` and a refusal stay quick.
HEAVY = (*BACKENDS, "sqlalchemy", "pykickstart", "rel_eng.compose", "rel_eng.boottest.engine")


def test_the_cli_parser_and_a_refusal_load_no_heavy_library(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("signing = 5\n")
    commands = [["compose", "--release", "19", "--weekly"], ["plan", "--release", "19", "--weekly"],
                ["validate"], ["verify", str(tmp_path)], ["boot-test", "x.qcow2"]]
    code = textwrap.dedent(f"""\
        import sys
        from rel_eng import cli
        loaded = lambda: " ".join(m for m in {HEAVY!r} if m in sys.modules)
        cli.build_parser()
        print("parser:", loaded())
        for argv in {commands!r}:
            assert cli.main([*argv, "--config", {str(bad)!r}]) == 2, argv
        print("refusal:", loaded())
        """)
    r = python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["parser: ", "refusal: "], r.stdout
    assert r.stderr.count("signing: expected a table, got int 5") == len(commands), r.stderr


def _resolve(name: str) -> str | None:
    """The rel_eng module an imported name lives in (a submodule if it is one)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> the rel_eng modules it imports: at the top, inside any function, and under
    `if TYPE_CHECKING:` (an annotation's import is still a dependency of the source)."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps.update(filter(None, (_resolve(a.name) for a in node.names)))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                for a in node.names:
                    full = f"{base}.{a.name}"
                    target = full if full in MODULES else _resolve(base)
                    if target:
                        deps.add(target)
        deps.discard(module)
        graph[module] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_import_graph_has_no_cycle_late_imports_included():
    graph = import_graph()
    assert graph["rel_eng.config.model"] >= {"rel_eng.builder_names"}  # the registry's table
    assert "rel_eng.plan" in graph["rel_eng.builders.base"]  # a TYPE_CHECKING import, counted
    found = cycles(graph)
    detail = [" <-> ".join(c) + "\n  " + "\n  ".join(
        f"{m} -> {sorted(graph[m] & set(c))}" for m in c) for c in found]
    assert found == [], "import cycles:\n" + "\n".join(detail)


def reach(graph: dict[str, set[str]], roots: set[str]) -> set[str]:
    """Every module the roots import, directly or through others."""
    seen, todo = set(), list(roots)
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_config_leans_only_on_leaf_modules_late_imports_included():
    """The settings package sits at the bottom: whatever it imports outside itself, at any depth
    and type-only imports included, is a leaf that imports nothing of rel_eng but the exception
    tree (rel_eng.errors, itself such a leaf)."""
    graph = import_graph()
    config = {m for m in graph if m == "rel_eng.config" or m.startswith("rel_eng.config.")}
    assert len(config) > 10
    below = reach(graph, config) - config
    assert "rel_eng.builder_names" in below and "rel_eng.builders" not in below
    assert graph["rel_eng.errors"] == set()
    assert {m: sorted(graph[m]) for m in sorted(below) if graph[m] - {"rel_eng.errors"}} == {}


def test_every_table_of_the_config_is_one_section_declared_with_help():
    """One parser walks one table per section: each key has its help, and each section its field."""
    import dataclasses

    from rel_eng.config.model import Config
    from rel_eng.config.table import rules, sections

    tables = sections(Config)
    assert set(tables) == {"signing", "celery", "ec2", "koji", "oz", "store", "schedule",
                           "messaging", "boot_test", "images", "web", "release"}
    for name, field in tables.items():
        kind = field.metadata["kind"]
        keys = rules(kind)
        assert keys, name
        assert all(rule.help for rule in keys.values()), name
        assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen, name
    assert all(rule.help for rule in rules(Config).values())


def test_the_cycle_check_sees_late_and_type_only_imports(tmp_path, monkeypatch):
    """A guard for the checker itself: a cycle closed by an import inside a function, or by one
    under `if TYPE_CHECKING:`, counts."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    pkg = tmp_path / "rel_eng"
    pkg.mkdir()
    (pkg / "x.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from rel_eng.y import Y\n")
    (pkg / "y.py").write_text("def f():\n    from rel_eng import x\n")
    monkeypatch.setitem(globals(), "MODULES", {"rel_eng.x": pkg / "x.py", "rel_eng.y": pkg / "y.py"})
    graph = import_graph()
    assert graph == {"rel_eng.x": {"rel_eng.y"}, "rel_eng.y": {"rel_eng.x"}}
    assert cycles(graph) == [["rel_eng.x", "rel_eng.y"]]
