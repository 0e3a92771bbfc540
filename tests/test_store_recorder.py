"""Composes mirrored into the store as they run, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_clock import FakeClock  # noqa: E402
from store_support import store_url  # noqa: E402,F401

from rel_eng import compose  # noqa: E402
from rel_eng.builders import BUILDERS, BuildOutcome  # noqa: E402
from rel_eng.builders.synthetic import SyntheticBuilder  # noqa: E402
from rel_eng.config import load_config  # noqa: E402
from rel_eng.manifest import Manifest  # noqa: E402
from rel_eng.store import queries  # noqa: E402
from rel_eng.store import recorder as store_recorder  # noqa: E402
from rel_eng.store.engine import StoreUnavailable, open_engine  # noqa: E402
from rel_eng.store.recorder import StoreRecorder, recorder_for  # noqa: E402
from rel_eng.config.store import StoreConfig  # noqa: E402

DATE = dt.date(2013, 5, 28)


@pytest.fixture
def recorder(store_url):  # noqa: F811
    rec = StoreRecorder(store_url)
    yield rec
    rec.close()


def detail(url: str, compose_id: str) -> dict:
    engine = open_engine(url)
    try:
        return queries.compose_detail(engine, compose_id)
    finally:
        engine.dispose()


def test_a_compose_is_recorded_with_images_task_ids_artifacts_and_history(tmp_path, recorder):
    c = compose.run_compose(load_config(), tmp_path / "out", "19", "Beta", DATE, recorder=recorder)
    d = detail(recorder.url, c.plan.compose_id)
    assert (d["status"], d["reason"], d["milestone"], d["label"]) == ("FINISHED", "", "Beta", "Beta-1.1")
    assert d["topdir"] == str(c.topdir.resolve())
    assert [h["status"] for h in d["history"]] == ["STARTED", "FINISHED"]
    times = [dt.datetime.fromisoformat(h["at"]) for h in d["history"]]
    assert times == sorted(times) and all(t.tzinfo == dt.timezone.utc for t in times)
    assert [i["job_key"] for i in d["images"]] == sorted(j.key for j in c.plan.images)
    for image in d["images"]:
        job = c.job(image["job_key"])
        assert image["nvra"] == job.nvra
        assert {k: s["state"] for k, s in image["steps"].items()} == {"build": "done", "process": "done",
                                                                     "boottest": "skipped"}
        assert image["build"]["builder"] == "synthetic"
        assert image["build"]["external_id"] == f"synthetic:{job.nvra}"
    deliverables = c.manifest.artifacts(intent="deliverable")
    recorded = {a["path"]: a for a in d["artifacts"] if a["intent"] == "deliverable"}
    assert sorted(recorded) == sorted(a.path for a in deliverables) and len(recorded) == 8
    for path, a in recorded.items():
        data = (c.topdir / path).read_bytes()
        assert (a["size"], a["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    engine = open_engine(recorder.url)
    try:
        [row] = queries.list_composes(engine)
    finally:
        engine.dispose()
    assert (row["compose_id"], row["status"], row["images"], row["built"], row["failed"],
            row["processed"]) == (c.plan.compose_id, "FINISHED", 4, 4, 0, 4)


class BrokenI686(SyntheticBuilder):
    """Fails every i686 image, like a builder host whose installs time out."""

    name = "broken-i686"

    def wait(self, handles, timeout=None):
        good = super().wait([h for h in handles if not h.job_key.endswith("i686")], timeout)
        return good + [BuildOutcome(h.job_key, False, "install timed out")
                       for h in handles if h.job_key.endswith("i686")]


def test_a_doomed_compose_records_its_reason(tmp_path, recorder, monkeypatch):
    monkeypatch.setitem(BUILDERS, BrokenI686.name, BrokenI686)
    with pytest.raises(compose.ComposeDoomed):
        compose.run_compose(load_config(), tmp_path / "out", "19", "Beta", DATE,
                            builder=BrokenI686.name, recorder=recorder)
    [cid] = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("Fedora")]
    d = detail(recorder.url, cid)
    reason = "ec2-i686: install timed out; generic-i686: install timed out"
    assert (d["status"], d["reason"]) == ("DOOMED", reason)
    assert [(h["status"], h["reason"]) for h in d["history"]] == [("STARTED", ""), ("DOOMED", reason)]
    failed = {i["job_key"]: i["steps"]["build"] for i in d["images"] if i["arch"] == "i686"}
    assert {k: (s["state"], s["reason"]) for k, s in failed.items()} == {
        "ec2-i686": ("failed", "install timed out"), "generic-i686": ("failed", "install timed out")}


def test_an_unreachable_store_never_stops_a_compose(tmp_path, caplog):
    clock = FakeClock()  # stands still: however long the compose takes, it is within the back-off
    rec = StoreRecorder("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", monotonic=clock)
    with caplog.at_level(logging.WARNING, logger="rel_eng.store.recorder"):
        c = compose.run_compose(load_config(), tmp_path / "out", "19", "Beta", DATE, recorder=rec)
    rec.close()
    assert c.read_status() == compose.FINISHED
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings and all("could not record" in w for w in warnings)
    # step writes are skipped while the store is down; only the two status changes tried
    assert len(warnings) == 2, warnings
    clock.now += store_recorder.BACKOFF_S  # after the back-off, a step write tries again
    rec.step(c, "build:generic-x86_64", "d", "done", "")
    assert len([r for r in caplog.records if "could not record" in r.getMessage()]) == 3


def test_a_store_added_later_catches_up_at_the_next_status_change(tmp_path, recorder):
    c = compose.run_compose(load_config(), tmp_path / "out", "19", "Beta", DATE)  # no store
    recorded = compose.Compose.load(c.topdir, recorder)
    recorded.set_status(compose.FINISHED, recorded.recorder)
    d = detail(recorder.url, c.plan.compose_id)
    assert d["status"] == "FINISHED"
    assert all(i["steps"]["process"]["state"] == "done" and i["build"] for i in d["images"])
    assert len([a for a in d["artifacts"] if a["intent"] == "deliverable"]) == 8


def test_the_default_store_is_a_sqlite_file_beside_the_composes(tmp_path):
    config = load_config()
    rec = recorder_for(config, tmp_path / "out")
    assert rec.url == f"sqlite:///{(tmp_path / 'out').resolve()}/rel-eng.db"
    rec.close()
    off = dataclasses.replace(config, store=StoreConfig(enabled=False))
    assert recorder_for(off, tmp_path / "out") is None


def test_a_sqlite_store_that_cannot_be_opened_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable, match=f"cannot create {blocker}/sub for the compose store"):
        open_engine(f"sqlite:///{blocker}/sub/rel-eng.db")


def test_artifacts_the_boot_gate_rejects_leave_the_store(tmp_path, recorder):
    """A rejected image's disks are not shippable: `rel-eng status` must not list them, whether the
    store saw the rejection as it happened or catches up on it at the next status change."""
    c = compose.run_compose(load_config(), tmp_path / "out", "19", "Beta", DATE, recorder=recorder)
    cid = c.plan.compose_id

    def kinds(key):
        return sorted(a["kind"] for a in detail(recorder.url, cid)["artifacts"] if a["job_key"] == key)

    before = kinds("generic-x86_64")
    assert before and kinds("ec2-x86_64")
    recorded = compose.Compose.load(c.topdir, recorder)
    gone = compose.recorded(recorded, recorded.recorder).reject_artifacts("generic-x86_64")
    assert sorted(a.kind for a in gone) == [k for k in before if k != "log"]
    assert kinds("generic-x86_64") == [k for k in before if k == "log"]
    assert kinds("ec2-x86_64")  # other images keep theirs
    assert [a["kind"] for a in Manifest(c.topdir).read()["rejected"]["generic-x86_64"]] == \
        [a.kind for a in gone]
    # the store missed this one (written without the recorder): the next status change prunes it
    compose.Compose.load(c.topdir).manifest.reject_artifacts("ec2-x86_64")
    assert kinds("ec2-x86_64")
    recorded.set_status(compose.INCOMPLETE, recorded.recorder)
    assert set(kinds("ec2-x86_64")) <= {"log"}
    left = {(a["job_key"], a["kind"]) for a in detail(recorder.url, cid)["artifacts"]}
    assert left == {(a.job_key, a.kind) for a in Manifest(c.topdir).artifacts()}
