"""No test passes by skipping where it counts: under CI=true, or REL_ENG_NO_SKIPS=1 (`make test`),
a skipped test fails the run unless ALLOWED names it with the reason the skip is right.

Loaded by tests/conftest.py (its hooks are imported there). Every skip is listed at the end
either way, with its reason, so a run elsewhere shows what it did not prove.
"""

from __future__ import annotations

import fnmatch
import os

import pytest

# node id pattern -> why skipping it on some machines is right. Keep it short: everything the
# README promises must run on the machine `make test` sets up.
ALLOWED: dict[str, str] = {
    "tests/test_boot_test_accel.py::test_accel_kvm_is_refused_where_kvm_is_not_usable":
        "this host has usable KVM, so there is no refusal to see (the probe said yes)",
    "tests/test_boot_test_accel.py::test_accel_kvm_boots_where_kvm_is_usable":
        "this host has no usable KVM (no kvm_intel/kvm_amd, or the probe said no)",
}

_skipped: list[tuple[str, str]] = []


def strict() -> bool:
    return (os.environ.get("CI", "").lower() == "true"
            or os.environ.get("REL_ENG_NO_SKIPS") == "1")


def allowed(nodeid: str) -> str | None:
    return next((why for pat, why in ALLOWED.items() if fnmatch.fnmatchcase(nodeid, pat)), None)


def _reason(report) -> str:
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append((report.nodeid, _reason(report)))


def pytest_collectreport(report):
    if report.skipped:  # a whole module skipped at import (importorskip, allow_module_level)
        _skipped.append((report.nodeid, _reason(report)))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    if strict() and [n for n, _ in _skipped if not allowed(n)] and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _skipped:
        return
    tr = terminalreporter
    bad = [(n, r) for n, r in _skipped if not allowed(n)]
    tr.section("skipped tests")
    for nodeid, reason in _skipped:
        why = allowed(nodeid)
        tr.line(f"{'allowed' if why else 'NOT ALLOWED'}: {nodeid}: {reason}"
                + (f" (allowed: {why})" if why else ""))
    if bad and strict():
        tr.line(f"{len(bad)} skipped test(s) not in tests/skip_gate.py's ALLOWED: under CI=true "
                "or make test a skip is a failure; install what the skip names", red=True)
