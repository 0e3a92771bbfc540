"""`rel-eng serve`'s app over a real store (SQLite and PostgreSQL): pages, JSON API, filters,
logs served only from inside a compose's logs/, escaping, and queries that do not grow with
the number of images."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys

import pytest
from sqlalchemy import event, update
from starlette.testclient import TestClient

from rel_eng.config import load_config
from rel_eng.store import schema
from rel_eng.store.engine import open_engine
from rel_eng.store.recorder import StoreRecorder
from rel_eng.web.dashboard.app import create_app

from store_support import store_url  # noqa: F401  (fixture)
from web_fixtures import FAIL_REASON, KOJI_WEB, fill_store, populate, register_builders
from web_support import launch_target, links, strict_parse, text_of

NOW = dt.datetime(2013, 4, 20, 12, 0, tzinfo=dt.timezone.utc)
REL_ENG = [sys.executable, "-m", "rel_eng"]


def _populated(url, out):
    recorder = StoreRecorder(url)
    try:
        made = populate(load_config(), out, recorder)
    finally:
        recorder.close()
    return open_engine(url), made


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One SQLite store for the tests that only read."""
    mp = pytest.MonkeyPatch()
    register_builders(mp)
    tmp = tmp_path_factory.mktemp("dash")
    try:
        engine, made = _populated(f"sqlite:///{tmp / 'rel-eng.db'}", tmp / "out")
    finally:
        mp.undo()
    with TestClient(create_app(engine, load_config(), clock=lambda: NOW)) as c:
        yield c, made
    engine.dispose()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store the tests below may change, each a different part of it: hostile values into the
    doomed compose's rows, credentials into the finished one's, symlinks into the doomed logs."""
    mp = pytest.MonkeyPatch()
    register_builders(mp)
    tmp = tmp_path_factory.mktemp("changed")
    try:
        engine, made = _populated(f"sqlite:///{tmp / 'rel-eng.db'}", tmp / "out")
    finally:
        mp.undo()
    yield engine, made
    engine.dispose()


@pytest.fixture
def own(store):
    engine, made = store
    with TestClient(create_app(engine, load_config(), clock=lambda: NOW)) as c:
        yield c, made


@pytest.fixture
def both(store_url, tmp_path, monkeypatch):  # noqa: F811
    """SQLite and PostgreSQL: the queries behind the pages must agree."""
    register_builders(monkeypatch)
    engine, made = _populated(store_url, tmp_path / "out")
    with TestClient(create_app(engine, load_config(), clock=lambda: NOW)) as c:
        yield c, made
    engine.dispose()


def ids(client, query: str = "") -> list[str]:
    r = client.get("/api/composes" + query)
    assert r.status_code == 200
    return [row["compose_id"] for row in r.json()["composes"]]


def test_list_filters_by_release_type_and_status(both):
    c, made = both
    fin, doom, run = (made[k].plan.compose_id for k in ("finished", "doomed", "running"))
    assert sorted(ids(c)) == sorted([fin, doom, run])
    assert sorted(ids(c, "?release=19")) == sorted([fin, doom])
    assert ids(c, "?type=weekly") == [run]
    assert sorted(ids(c, "?type=milestone")) == sorted([fin, doom])
    assert ids(c, "?status=DOOMED") == [doom]
    assert ids(c, "?status=STARTED&release=rawhide") == [run]
    assert ids(c, "?status=FINISHED&type=weekly") == []
    page = c.get("/?status=DOOMED")
    assert page.status_code == 200
    rows = [h for h in links(page.content) if h.startswith("/composes/")]
    assert rows == [f"/composes/{doom}"]
    assert "No composes match." in c.get("/?release=nope").text


def test_compose_page_shows_timeline_tasks_amis_and_failure(both):
    c, made = both
    fin, doom = made["finished"], made["doomed"]
    page = c.get(f"/composes/{fin.plan.compose_id}")
    assert page.status_code == 200
    hrefs = links(page.content)
    tasks = [h for h in hrefs if h.startswith(KOJI_WEB)]
    assert len(tasks) == 4 and all("taskinfo?taskID=" in h for h in tasks)
    launches = {launch_target(h) for h in hrefs if h.startswith("https://console.aws")}
    assert launches == {(r, a) for i in made["ec2"]["images"].values() for r, a in i["regions"].items()}
    text = text_of(page.content)
    assert "Status FINISHED" in text and "4/4 built, 4/4 processed, 0 failed" in text
    data = c.get(f"/api/composes/{fin.plan.compose_id}").json()
    assert len(data["images"]) == 4
    for image in data["images"]:
        assert [t["step"] for t in image["timeline"]] == ["build", "process", "boottest"]
        build, process, boot = image["timeline"]
        assert build["start"] <= build["end"] == process["start"] <= process["end"]
        assert boot["state"] == "skipped" and image["boot"]["verdict"] == "skipped"
        assert build["duration"].endswith("s")
    assert [h["status"] for h in data["history"]] == ["STARTED", "FINISHED"]

    page = c.get(f"/composes/{doom.plan.compose_id}")
    text = text_of(page.content)
    assert "Status DOOMED" in text and f"build failed {FAIL_REASON}" in text
    assert "anaconda: No space left on device" in text  # the log excerpt
    assert "line 99: installing package 99" in text and "line 10:" not in text  # its tail only
    log_links = [h for h in links(page.content) if "/logs/" in h]
    assert log_links and all(c.get(h).status_code == 200 for h in log_links)
    log = c.get(log_links[0])
    assert log.headers["content-type"].startswith("text/plain") and "No space left" in log.text


def test_schedule_page_lists_next_firings(shared):
    c, _ = shared
    s = c.get("/api/schedule").json()
    assert s["now"] == NOW.isoformat()
    assert s["upcoming"] and all(u["due"] > NOW.isoformat() for u in s["upcoming"])
    text = text_of(c.get("/schedule").content)
    assert "weekly rawhide" in text and "19 Final" in text


def test_unknown_compose_is_a_404_page_and_a_json_error(shared):
    c, _ = shared
    r = c.get("/composes/Fedora-Cloud-99-20990101.0")
    assert r.status_code == 404 and "no compose 'Fedora-Cloud-99-20990101.0' in the store" in text_of(r.content)
    strict_parse(r.content)
    r = c.get("/api/composes/Fedora-Cloud-99-20990101.0")
    assert r.status_code == 404
    assert r.json() == {"error": "no compose 'Fedora-Cloud-99-20990101.0' in the store", "status": 404}


def test_nothing_changes_state(shared):
    c, made = shared
    cid = made["finished"].plan.compose_id
    for path in ("/", f"/composes/{cid}", "/api/composes", f"/api/composes/{cid}", "/schedule"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert c.request(method, path).status_code == 405, (method, path)


def test_logs_are_served_only_from_inside_the_compose_logs(own, tmp_path):
    c, made = own
    doom = made["doomed"]
    cid = doom.plan.compose_id
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n")
    (doom.topdir / "work" / "inside-topdir.txt").write_text("not a log\n")
    os.symlink(secret, doom.logdir / "escape.log")
    os.symlink(doom.logdir.parent / "work", doom.logdir / "workdir")
    good = next(p for p in doom.logdir.rglob("oz.log"))
    assert c.get(f"/composes/{cid}/logs/{good.relative_to(doom.logdir)}").status_code == 200
    for path in ("../work/inside-topdir.txt", "..%2Fwork%2Finside-topdir.txt", "escape.log",
                 "workdir/inside-topdir.txt", f"..%2F..%2F{secret.name}", "%2Fetc%2Fpasswd",
                 "generic-i686", "nope.log", "%00", "%2E%2E%2Fwork%2Finside-topdir.txt"):
        r = c.get(f"/composes/{cid}/logs/{path}")
        assert r.status_code == 404, path
        assert "TOP SECRET" not in r.text and "not a log" not in r.text
    assert c.get(f"/composes/nope/logs/{good.relative_to(doom.logdir)}").status_code == 404


def test_hostile_store_values_are_escaped(own, store):
    engine, made = store
    c, _ = own
    cid = made["doomed"].plan.compose_id
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    with engine.begin() as conn:
        conn.execute(update(schema.composes).where(schema.composes.c.compose_id == cid)
                     .values(reason=evil, release_key=evil, builder=evil))
        conn.execute(update(schema.steps).where(schema.steps.c.compose_id == cid)
                     .values(reason=evil))
        conn.execute(update(schema.builds).where(schema.builds.c.compose_id == cid)
                     .values(info='{"data": {"task_url": "javascript:alert(3)"}}', external_id=evil))
    for path in (f"/composes/{cid}", f"/?release={evil}", "/"):
        r = c.get(path)
        strict_parse(r.content)
        assert "<script>alert" not in r.text and "<img" not in r.text, path
    page = c.get(f"/composes/{cid}")
    assert evil in text_of(page.content)
    assert not any(h.startswith("javascript:") for h in links(page.content))
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_urls_with_credentials_never_reach_a_page(own, store):
    engine, made = store
    c, _ = own
    cid = made["finished"].plan.compose_id
    with engine.begin() as conn:
        conn.execute(update(schema.builds).where(schema.builds.c.compose_id == cid).values(
            info='{"data": {"task_url": "https://user:hunter2@koji.example.org/koji/taskinfo?taskID=1"}}'))
    for path in (f"/composes/{cid}", f"/api/composes/{cid}"):
        assert "hunter2" not in c.get(path).text


def test_pages_are_strict_html5(shared):
    c, made = shared
    for path in ("/", "/?type=weekly", "/schedule", "/composes/nope",
                 *(f"/composes/{made[k].plan.compose_id}" for k in ("finished", "doomed", "running"))):
        strict_parse(c.get(path).content)


def _count_queries(engine, fn) -> int:
    seen = []

    def count(*_args):
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


@pytest.mark.parametrize("path", ["/", "/api/composes", "/composes/{cid}", "/api/composes/{cid}"])
def test_queries_per_page_do_not_grow_with_images(tmp_path, path):
    counts = []
    for images in (2, 40):
        engine = open_engine(f"sqlite:///{tmp_path / f'{images}.db'}")
        [cid, *_] = fill_store(engine, 5, images)
        with TestClient(create_app(engine)) as c:
            c.get(path.format(cid=cid))  # warm up: the first query checks the tables
            counts.append(_count_queries(engine, lambda: c.get(path.format(cid=cid)).raise_for_status()))
        engine.dispose()
    assert counts[0] == counts[1], counts
    assert counts[0] <= 9  # the compose, its images, steps, builds, artifacts, history, AMIs, releases


def _serve(*args, cwd=None):
    return subprocess.run([*REL_ENG, "serve", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("bind, message", [
    ("127.0.0.1", "--bind '127.0.0.1': expected HOST:PORT"),
    ("127.0.0.1:http", "port 'http' is not a number 0..65535"),
    ("127.0.0.1:70000", "port '70000' is not a number 0..65535"),
    ("example.org:8080", "'example.org' is not an IP address"),
    ("192.0.2.1:8080", "this host has no such address"),
])
def test_a_bad_bind_address_is_one_line_exit_2(tmp_path, bind, message):
    open_engine(f"sqlite:///{tmp_path / 'rel-eng.db'}").dispose()
    r = _serve("--bind", bind, "--output", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr


def test_a_taken_port_is_one_line_exit_2(tmp_path):
    open_engine(f"sqlite:///{tmp_path / 'rel-eng.db'}").dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = _serve("--bind", f"127.0.0.1:{port}", "--output", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr == f"rel-eng: error: --bind 127.0.0.1:{port}: the address is already in use " \
                       "(stop what listens there or pick another port)\n"


def test_an_unreachable_store_is_one_line_exit_2(tmp_path):
    r = _serve("--bind", "127.0.0.1:0", "--output", str(tmp_path / "nothing"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert f"no compose store at {tmp_path / 'nothing' / 'rel-eng.db'}" in r.stderr
    (tmp_path / "pg.toml").write_text('[store]\nurl = "postgresql+psycopg://postgres@127.0.0.1:1/x"\n')
    r = _serve("--bind", "127.0.0.1:0", "--config", str(tmp_path / "pg.toml"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot open the compose store postgresql+psycopg://postgres@127.0.0.1:1/x" in r.stderr


def test_a_store_lost_after_start_up_is_a_503_with_one_line():
    from sqlalchemy import create_engine

    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/gone",
                           connect_args={"connect_timeout": 2})
    with TestClient(create_app(engine)) as c:
        page = c.get("/")
        assert page.status_code == 503
        assert text_of(page.content).startswith("Composes Schedule JSON API 503 the compose store cannot be read:")
        api = c.get("/api/composes/x")
        assert api.status_code == 503 and api.json()["error"].startswith("the compose store cannot be read:")
        assert "\n" not in api.json()["error"]
    engine.dispose()


def test_boot_verdicts_link_their_console_logs(own, store):
    import json

    from rel_eng.store.engine import upsert

    engine, made = store
    c, _ = own
    fin = made["finished"]
    cid = fin.plan.compose_id
    console = fin.logdir / "boottest" / "generic-x86_64.console.log"
    console.parent.mkdir(parents=True, exist_ok=True)
    console.write_text("Fedora release 19\nlocalhost login:\n")
    outside = fin.topdir.parent / "secret.log"
    outside.write_text("not a compose log\n")
    (fin.logdir / "boottest" / "link.console.log").symlink_to(outside)
    # What the gate writes to rel-eng.json: console logs relative to the compose's top dir;
    # one names a file outside the compose, one a symlink that leads out: neither is linked.
    summary = fin.metadir / "rel-eng.json"
    data = json.loads(summary.read_text())
    images = data["boot_test"]["images"]
    images["generic-x86_64"].update(status="fail", reason="no login prompt within 300 s",
                                    console_log="logs/boottest/generic-x86_64.console.log",
                                    platform={"name": "openstack", "label": "openstack (config drive)",
                                              "openstack": "config-drive"})
    images["ec2-x86_64"].update(status="pass", reason="", console_log="logs/../../secret.log")
    skipped = sorted(k for k in images if k not in ("generic-x86_64", "ec2-x86_64"))
    images[skipped[0]]["console_log"] = "logs/boottest/link.console.log"
    summary.write_text(json.dumps(data))
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:  # what the boot gate records: a step per image
        for key, state, reason in (("generic-x86_64", "failed", "no login prompt within 300 s"),
                                   ("ec2-x86_64", "done", "pass")):
            upsert(conn, schema.steps, dict(
                compose_id=cid, step=f"boottest:{key}", job_key=key, state=state, reason=reason,
                digest="", updated_at=now), ("compose_id", "step"))
    page = c.get(f"/composes/{cid}")
    text = text_of(page.content)
    assert ("Boot test: failed (booted as openstack (config drive)): no login prompt within 300 s "
            "console log") in text
    assert "Boot test: passed" in text
    assert text.count("Boot test: skipped : not bootable") == len(skipped)
    hrefs = links(page.content)
    [log] = {h for h in hrefs if h.endswith("/boottest/generic-x86_64.console.log")}
    assert c.get(log).text == console.read_text()
    assert not [h for h in hrefs if "secret" in h or "link.console" in h]
    api = {i["job_key"]: i for i in c.get(f"/api/composes/{cid}").json()["images"]}
    assert api["generic-x86_64"]["boot"] == {
        "verdict": "failed", "reason": "no login prompt within 300 s",
        "platform": "openstack (config drive)", "console_logs": ["boottest/generic-x86_64.console.log"]}
    assert api["ec2-x86_64"]["boot"] == {"verdict": "passed", "reason": "", "platform": "",
                                         "console_logs": []}
    for key in skipped:  # the synthetic builder's images: skipped, never passed
        assert api[key]["boot"] == {"verdict": "skipped", "reason": "not bootable", "platform": "",
                                    "console_logs": []}
        assert api[key]["state"] == "done" and api[key]["timeline"][-1]["step"] == "boottest"
    assert api["generic-x86_64"]["timeline"][-1]["step"] == "boottest"
