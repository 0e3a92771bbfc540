"""`rel-eng schedule` (what fires next, what fired) and `rel-eng trigger` (a real redis broker)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from distributed_support import RedisServer  # noqa: E402
from store_support import store_toml, store_url  # noqa: E402,F401

from rel_eng.cli import main  # noqa: E402
from rel_eng.compose import Compose  # noqa: E402
from rel_eng.store.engine import open_engine  # noqa: E402
from rel_eng.store.firings import FiringLedger  # noqa: E402

UTC = dt.timezone.utc


def test_schedule_lists_next_firings_and_what_fired(tmp_path, store_url, capsys):  # noqa: F811
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(store_toml(store_url))
    engine = open_engine(store_url)
    try:
        beta = dt.datetime(2013, 5, 28, 4, tzinfo=UTC)
        ledger = FiringLedger(engine)
        assert ledger.claim("milestone", "19", "Beta", due=beta, now=beta)
        ledger.settle("milestone", "19", "Beta", "Fedora-Cloud-19-20130528.0")
    finally:
        engine.dispose()
    assert main(["schedule", "--config", str(cfg), "--at", "2013-05-29T00:00", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(f["due"], f["what"]) for f in data["upcoming"]] == [
        ("2013-05-29T06:00:00+00:00", "weekly branched"),
        ("2013-06-03T06:00:00+00:00", "weekly rawhide"),
        ("2013-07-02T04:00:00+00:00", "19 Final"),
    ]
    states = {m["milestone"]: m["state"] for m in data["milestones"]}
    assert states["Beta"].startswith("fired 2013-05-28T04:00:00+00:00: Fedora-Cloud-19-20130528.0")
    assert states["Alpha"] == ("missed (older than catch_up_hours): rel-eng trigger --release 19 "
                               "--milestone Alpha")
    assert states["Final"] == "upcoming"
    branched = next(s for s in data["streams"] if s["name"] == "branched")
    assert (branched["release"], branched["koji_target"], branched["cron"]) == ("19", "f19-candidate", "0 6 * * 3")
    assert branched["install_tree"].endswith("/releases/19/Fedora/$arch/os/")

    assert main(["schedule", "--config", str(cfg), "--at", "2013-05-28T03:00", "--count", "2"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[:5] == ["next firings after 2013-05-28 03:00 UTC:",
                        "  2013-05-28 04:00  19 Beta",
                        "  2013-05-29 06:00  weekly branched",
                        "  2013-06-03 06:00  weekly rawhide",
                        "  2013-06-05 06:00  weekly branched"]


def test_schedule_needs_no_store_to_list(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["schedule", "--at", "2013-05-01T00:00"]) == 0
    out = capsys.readouterr().out
    assert "  19       Alpha  2013-05-07 04:00  upcoming" in out
    assert f"(no record of past firings: no compose store at {tmp_path / 'out' / 'rel-eng.db'})" in out
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        main(["schedule", "--at", "yesterday"])
    assert exited.value.code == 2
    assert "'yesterday' is not a time (YYYY-MM-DDTHH:MM, UTC)" in capsys.readouterr().err


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_trigger_queues_a_milestone_compose_and_counts_the_respin_up(tmp_path, redis_server, capsys,
                                                                    monkeypatch):
    from rel_eng.schedule import beat

    # Pinned: the compose id carries the date, and midnight must not fall between the two.
    ticks = iter(dt.datetime(2013, 5, 28, 23, 59, s, tzinfo=UTC) for s in range(50, 60))
    monkeypatch.setattr(beat, "utcnow", lambda: next(ticks))  # one second per trigger
    # The builds must wait in their queues here, so no worker runs; the workers' answer to the
    # liveness check is injected (test_worker_liveness.py asks real workers).
    from rel_eng.distributed import liveness

    monkeypatch.setattr(liveness, "served_queues",
                        lambda s, timeout=0, inspect=None: {q: ["idle@test"] for q in s.queues})
    out = tmp_path / "out"
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(f'[celery]\nbroker_url = "{redis_server.url}"\n'
                   f'[schedule]\noutput = "{out}"\n')
    today = "20130528"
    ids = []
    for _ in range(2):
        assert main(["trigger", "--config", str(cfg), "--release", "19", "--milestone", "Beta"]) == 0
        cid, state, path = capsys.readouterr().out.split()
        assert state == "QUEUED" and Path(path) == out / cid
        ids.append(cid)
    assert ids == [f"Fedora-Cloud-19-{today}.0", f"Fedora-Cloud-19-{today}.1"]
    assert [Compose.load(out / cid).plan.label for cid in ids] == ["Beta-1.1", "Beta-1.2"]
    assert [Compose.load(out / cid).read_status() for cid in ids] == ["STARTED", "STARTED"]
    with redis_server.client() as client:  # each compose's builds wait in the per-arch queues
        assert (client.llen("oz.x86_64"), client.llen("oz.i686")) == (4, 4)
    engine = open_engine(f"sqlite:///{out / 'rel-eng.db'}", must_exist=True)
    try:
        assert [(r["kind"], r["compose_id"]) for r in FiringLedger(engine).all()] == \
            [("manual", ids[0]), ("manual", ids[1])]
    finally:
        engine.dispose()
