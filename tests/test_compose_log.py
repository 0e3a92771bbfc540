"""Every compose keeps its own log, logs/rel-eng.log: time (UTC), step and image on every line,
failures written where they happened, local runs and Celery tasks appending to the same file."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rel_eng import compose, logfile, pipeline  # noqa: E402
from rel_eng.builders import BUILDERS, BuildOutcome  # noqa: E402
from rel_eng.builders.synthetic import SyntheticBuilder  # noqa: E402
from rel_eng.errors import RelEngError  # noqa: E402

DATE = dt.date(2013, 5, 28)
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
                  r"step=(?P<step>\S+) image=(?P<image>\S+) (?P<message>.*)$")


class BrokenI686(SyntheticBuilder):
    name = "broken-i686-log"

    def wait(self, handles, timeout=None):
        good = super().wait([h for h in handles if not h.job_key.endswith("i686")], timeout)
        return good + [BuildOutcome(h.job_key, False, "oz-install: install timed out")
                       for h in handles if h.job_key.endswith("i686")]


class LeakyHub(SyntheticBuilder):
    """Fails the way a library does: an exception whose message holds a URL password."""

    name = "leaky-hub-log"

    def wait(self, handles, timeout=None):
        raise RelEngError("hub https://builder:s3cr3t-pw@127.0.0.1:1/kojihub refused the call")


def records(topdir: Path) -> list[dict]:
    """Every line of the compose log, parsed; a line in any other shape fails the test."""
    text = (topdir / "logs" / "rel-eng.log").read_text()
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith((" ", "Traceback", "\t")) or not line[:1].isdigit():
            continue  # traceback continuation lines
        m = LINE.match(line)
        assert m, f"log line without time/step/image: {line!r}"
        out.append(m.groupdict())
    return out


def only_compose(out: Path) -> Path:
    [topdir] = [p for p in out.iterdir() if p.name.startswith("Fedora")]
    return topdir


def test_a_doomed_compose_logs_each_failure_with_its_step_and_image(tmp_path, config, monkeypatch):
    monkeypatch.setitem(BUILDERS, BrokenI686.name, BrokenI686)
    with pytest.raises(compose.ComposeDoomed):
        compose.run_compose(config, tmp_path / "out", "19", "Beta", DATE, builder=BrokenI686.name)
    recs = records(only_compose(tmp_path / "out"))
    failed = {(r["step"], r["image"]) for r in recs if "install timed out" in r["message"]
              and r["message"].startswith("build failed")}
    assert failed == {("build", "generic-i686"), ("build", "ec2-i686")}
    doomed = [r for r in recs if "DOOMED" in r["message"]]
    assert doomed and doomed[0]["step"] == "finalize"
    assert "generic-i686: oz-install: install timed out" in doomed[0]["message"]
    # the good images' steps are there too, each under its own image
    assert ("process", "generic-x86_64") in {(r["step"], r["image"]) for r in recs}
    assert any(r["step"] == "compose" and "started" in r["message"] for r in recs)


def test_the_terminal_keeps_its_one_line_error_and_the_file_gets_it_redacted(tmp_path, config,
                                                                              monkeypatch, capsys):
    monkeypatch.setitem(BUILDERS, LeakyHub.name, LeakyHub)
    with pytest.raises(RelEngError):
        compose.run_compose(config, tmp_path / "out", "19", "Beta", DATE, builder=LeakyHub.name)
    topdir = only_compose(tmp_path / "out")
    text = (topdir / "logs" / "rel-eng.log").read_text()
    assert "s3cr3t-pw" not in text
    [line] = [r for r in records(topdir) if "refused the call" in r["message"]]
    assert line["step"] == "build" and "https://builder:***@127.0.0.1:1/kojihub" in line["message"]
    # the terminal's one line comes from the CLI, as before; the file adds nothing to stderr
    assert "refused the call" not in capsys.readouterr().err
    # outside any compose, file-only records go nowhere (not to logging's last resort)
    logfile.file_only.error("stray")
    assert "stray" not in capsys.readouterr().err


def test_a_rerun_appends_to_the_same_file(tmp_path, config):
    c = compose.run_compose(config, tmp_path / "out", "19", "Beta", DATE)
    first = len(records(c.topdir))
    # Every step of the declared pipeline is named in the log, as the list names it.
    declared = {s.name for s in pipeline.PIPELINE} | {s.name for s in pipeline.FINALIZE_STEPS
                                                       if s.name not in ("publish", "share")}
    assert declared <= {r["step"] for r in records(c.topdir)}
    compose.resume(compose.Compose.load(c.topdir), tmp_path / "out" / "mirror")
    recs = records(c.topdir)
    assert len(recs) > first and recs[-1]["message"].endswith(c.read_status())


def test_distributed_tasks_append_to_the_compose_log(tmp_path, config, monkeypatch):
    from rel_eng.distributed import tasks

    monkeypatch.setitem(BUILDERS, BrokenI686.name, BrokenI686)
    plan = compose.allocate(config, tmp_path, "19", "Beta", DATE, builder=BrokenI686.name)
    c = compose.create(config, plan, tmp_path, compose.prepare_inputs(config, plan))
    assert tasks.run_step(str(c.topdir), "build", "generic-x86_64", 5)["ok"]
    assert not tasks.run_step(str(c.topdir), "build", "generic-i686", 5)["ok"]
    tasks.run_step(str(c.topdir), "process", "generic-x86_64", 5)
    recs = records(c.topdir)
    steps = {(r["step"], r["image"]) for r in recs}
    assert {("build", "generic-x86_64"), ("build", "generic-i686"),
            ("process", "generic-x86_64")} <= steps
    assert any(r["image"] == "generic-i686" and "install timed out" in r["message"]
               and r["step"] == "build" for r in recs)
    assert sum("task on" in r["message"] for r in recs) == 3
    # no handler is left behind once the tasks return
    import logging
    assert not any(isinstance(h, logging.FileHandler) for h in logging.getLogger("rel_eng").handlers)


def test_two_composes_at_once_keep_to_their_own_files(tmp_path):
    import logging

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "logs").mkdir(parents=True)
    log = logging.getLogger("rel_eng.test")
    with logfile.attached(a):
        with logfile.step("build", "one"):
            log.warning("for a")
        with logfile.attached(b):
            with logfile.step("process", "two"):
                log.warning("for b")
    assert "for b" not in (a / "logs" / "rel-eng.log").read_text()
    assert "for a" not in (b / "logs" / "rel-eng.log").read_text()
    assert "step=build image=one for a" in (a / "logs" / "rel-eng.log").read_text()
    with pytest.raises(FileNotFoundError):  # never creates a compose dir of its own
        with logfile.attached(tmp_path / "missing"):
            pass


def test_a_terminal_spinner_still_leaves_its_lines_in_the_file(tmp_path):
    from rel_eng.progress import Progress

    (tmp_path / "logs").mkdir()
    progress = Progress(True)  # rich on stderr, as on a terminal
    with logfile.attached(tmp_path), logfile.step("process", "generic-x86_64"):
        with progress.step("post-processing something"):
            pass
        progress.note("a note")
    recs = records(tmp_path)
    assert [r["message"].split(" (")[0] for r in recs] == [
        "start: post-processing something", "done: post-processing something", "a note"]
    assert all((r["step"], r["image"]) == ("process", "generic-x86_64") for r in recs)
