"""One place starts subprocesses: rel_eng/runner.py. A module elsewhere that imports the
subprocess module (at the top or inside a function) fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rel_eng"


def imports_subprocess(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "subprocess"
                                                for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "subprocess":
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_runner_imports_subprocess():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        if rel == "runner.py":
            continue
        if imports_subprocess(path):
            found[rel] = imports_subprocess(path)
    assert found == {}, f"start processes through rel_eng.runner instead: {found}"
    assert imports_subprocess(PACKAGE / "runner.py")  # the check can see an import at all


def test_the_check_sees_late_and_from_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\ndef f():\n    import subprocess\nfrom subprocess import run\n")
    assert imports_subprocess(f) == [3, 4]
