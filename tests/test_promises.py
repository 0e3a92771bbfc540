"""tests/PROMISES.md: every promise of the README with the tests that prove it. A promise with
no test, a quote the README no longer says, a test that does not exist, or a command, boot-test
check, message topic or builder of the README without a row fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PROMISES = ROOT / "tests" / "PROMISES.md"


def _flat(text: str) -> str:
    return " ".join(text.split())


def rows(text: str) -> list[tuple[str, list[str]]]:
    out = []
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith(("| README", "| ---")):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        assert len(cells) == 2, f"PROMISES.md: a row has {len(cells)} cells, not 2: {line}"
        quote = cells[0].replace("\\|", "|")
        tests = [t.strip() for t in cells[1].split(",") if t.strip()]
        out.append((quote, tests))
    return out


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def problems(promises: str, readme: str, root: Path = ROOT) -> list[str]:
    flat = _flat(readme)
    found, quotes = [], []
    for quote, tests in rows(promises):
        quotes.append(quote)
        if _flat(quote) not in flat:
            found.append(f"not in the README: {quote}")
        if not tests:
            found.append(f"no test for: {quote}")
        for t in tests:
            path, _, name = t.partition("::")
            if not (root / path).is_file() or name.split("[")[0] not in _functions(root / path):
                found.append(f"no such test: {t} (for: {quote})")
    quoted = _flat(" ".join(quotes))
    for kind, name in promised_names(readme):
        if name not in quoted:
            found.append(f"the README's {kind} `{name}` has no row")
    return found


def promised_names(readme: str) -> list[tuple[str, str]]:
    """What the README names one by one: commands, boot-test checks, message topics, builders."""
    out = []
    lines = readme.splitlines()
    for line in lines:
        m = re.match(r"    rel-eng ([a-z0-9-]+(?: (?:publish|prune|flush))?)", line)
        if m:
            out.append(("command", f"rel-eng {m.group(1)}"))
    start = next(i for i, ln in enumerate(lines) if re.search(r"[Cc]hecks(\*\*)?, each with a result", ln))
    checks: list[str] = []
    for line in lines[start + 1:]:
        m = re.match(r"    ([a-z][a-z:-]+)\s{2,}\S", line)
        if m:
            checks.append(m.group(1))
        elif checks and line.strip() and not line.startswith("     "):
            break  # the end of the indented list
    out += [("boot-test check", c) for c in checks]
    for line in lines:
        m = re.match(r"\| `([a-z_0-9]+\.[a-z_.0-9<>]+)` \|", line)
        if m:
            out.append(("message topic", m.group(1)))
        m = re.match(r"- `([a-z]+)`[ :(]", line)
        if m:
            out.append(("builder", f"`{m.group(1)}`"))
    return out


def test_every_promise_has_a_test_and_every_quote_is_the_readme():
    assert problems(PROMISES.read_text(), README.read_text()) == []


def test_the_readme_lists_are_read():
    names = promised_names(README.read_text())
    kinds = {k for k, _ in names}
    assert kinds == {"command", "boot-test check", "message topic", "builder"}
    assert ("boot-test check", "anaconda-install") in names and ("builder", "`oz`") in names
    assert ("command", "rel-eng ec2 prune") in names
    assert len([n for k, n in names if k == "boot-test check"]) == 20


def test_a_promise_without_a_test_fails():
    readme = "Intro.\n\n    rel-eng plan --x\n\nThe checks, each with a result:\n\n    ssh   logs in\n"
    good = ("| README | tests |\n| --- | --- |\n"
            "| rel-eng plan --x | tests/test_promises.py::test_a_promise_without_a_test_fails |\n"
            "| ssh logs in | tests/test_promises.py::test_the_readme_lists_are_read |\n")
    assert problems(good, readme) == []
    no_test = good.replace("tests/test_promises.py::test_the_readme_lists_are_read", "")
    assert problems(no_test, readme) == ["no test for: ssh logs in"]
    gone = good.replace("test_a_promise_without_a_test_fails", "test_nope")
    assert problems(gone, readme)[0].startswith("no such test: tests/test_promises.py::test_nope")
    missing_row = good.splitlines()[:3]
    assert problems("\n".join(missing_row), readme) == ["the README's boot-test check `ssh` has no row"]
    changed = problems(good, readme.replace("rel-eng plan --x", "rel-eng plan --y"))
    assert "not in the README: rel-eng plan --x" in changed
