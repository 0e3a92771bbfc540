"""Real browser tests: Playwright driving Debian's Chromium over `rel-eng serve` (a real
subprocess) and over the static pages of staged drops, from file:// and over HTTP.

Screenshots of every page go to <this test's tmp dir>/screens/ (the path is printed)."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from rel_eng import compose
from rel_eng.config import load_config
from rel_eng.store.recorder import StoreRecorder

from web_fixtures import FAIL_REASON, populate, register_builders
from web_support import amis_in, launch_target

from playwright import sync_api as playwright_api
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
POLL_MS = 200
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser") / "screens"
    d.mkdir()
    print(f"\nscreenshots: {d}")
    return d


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # Nothing may leave 127.0.0.1 or the disk: a page that loads anything else fails here.
    context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]|file://|data:).*"),
                  lambda route: route.abort())
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A store with a finished (AMIs), a doomed and a running compose, and `rel-eng serve` on it."""
    mp = pytest.MonkeyPatch()
    register_builders(mp)
    out = tmp_path_factory.mktemp("served") / "out"
    config = load_config()
    recorder = StoreRecorder(config.store.url_for(out))
    try:
        made = populate(config, out, recorder)
    finally:
        mp.undo()
    proc = subprocess.Popen([sys.executable, "-m", "rel_eng", "serve", "--bind", "127.0.0.1:0",
                             "--output", str(out), "--poll-ms", str(POLL_MS)],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert m, f"rel-eng serve said: {line!r}"
        yield m.group(0).rstrip("/"), made, out, recorder
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()
        recorder.close()


def _rows(pg) -> list[str]:
    return pg.locator("#composes tbody tr").evaluate_all("rows => rows.map(r => r.dataset.compose)")


def test_list_filters(dashboard, page, screens):
    base, made, _, _ = dashboard
    fin, doom, run = (made[k].plan.compose_id for k in ("finished", "doomed", "running"))
    page.goto(base + "/")
    assert sorted(_rows(page)) == sorted([fin, doom, run])
    page.screenshot(path=screens / "dashboard-list.png", full_page=True)
    page.select_option("#f-status", "DOOMED")
    page.click("#f-apply")
    page.wait_for_url(re.compile(r"status=DOOMED"))
    assert _rows(page) == [doom]
    assert page.locator("#composes .status").all_inner_texts() == ["DOOMED"]
    page.select_option("#f-status", "")
    page.select_option("#f-type", "weekly")
    page.click("#f-apply")
    page.wait_for_url(re.compile(r"type=weekly"))
    assert _rows(page) == [run]
    page.select_option("#f-type", "")
    page.select_option("#f-release", "19")
    page.click("#f-apply")
    page.wait_for_url(re.compile(r"release=19"))
    assert sorted(_rows(page)) == sorted([fin, doom])
    page.screenshot(path=screens / "dashboard-list-release-19.png", full_page=True)
    # The polling refresh keeps the filter: rows stay the same after several rounds.
    page.wait_for_timeout(POLL_MS * 4)
    assert sorted(_rows(page)) == sorted([fin, doom])


def test_compose_pages_show_amis_and_failure(dashboard, page, screens):
    base, made, _, _ = dashboard
    page.goto(f"{base}/composes/{made['finished'].plan.compose_id}")
    rows = page.locator("#amis tbody tr")
    assert rows.count() == 4
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td").all_inner_texts()
        href = rows.nth(i).locator("a.launch").get_attribute("href")
        assert launch_target(href) == (cells[1], cells[2])
        assert (cells[1], cells[2]) in amis_in(made["ec2"])
    assert page.locator("#status").inner_text() == "FINISHED"
    assert page.locator("a.task").count() == 4
    page.screenshot(path=screens / "dashboard-compose-finished.png", full_page=True)

    page.goto(f"{base}/composes/{made['doomed'].plan.compose_id}")
    assert page.locator("#status").inner_text() == "DOOMED"
    assert page.locator(".failure-reason").all_inner_texts() == [FAIL_REASON, FAIL_REASON]
    assert "No space left on device" in page.locator("pre.excerpt").first.inner_text()
    log = page.locator(".failure a").first.get_attribute("href")
    r = page.request.get(base + log)
    assert r.status == 200 and "No space left on device" in r.text()
    page.screenshot(path=screens / "dashboard-compose-doomed.png", full_page=True)

    page.goto(f"{base}/schedule")
    assert page.locator("#upcoming tbody tr").count() >= 2
    page.screenshot(path=screens / "dashboard-schedule.png", full_page=True)

    page.goto(f"{base}/composes/Fedora-Cloud-99-20990101.0")
    assert page.locator("#error").inner_text() == "no compose 'Fedora-Cloud-99-20990101.0' in the store"
    page.screenshot(path=screens / "dashboard-404.png", full_page=True)


def test_a_running_compose_changes_state_without_a_reload(dashboard, browser, page, screens):
    base, made, out, _ = dashboard
    running = made["running"]
    cid = running.plan.compose_id
    page.goto(f"{base}/composes/{cid}")
    listing = page.context.new_page()
    listing.goto(base + "/?type=weekly")
    assert page.locator("#status").inner_text() == "STARTED"
    assert set(page.locator("#images .state").all_inner_texts()) == {"building"}
    assert listing.locator(f'tr[data-compose="{cid}"] .status').inner_text() == "STARTED"
    page.evaluate("window.__notReloaded = true")
    listing.evaluate("window.__notReloaded = true")
    page.screenshot(path=screens / "dashboard-compose-running-before.png", full_page=True)

    compose.resume(running, out / "mirror")  # the compose runs on while both pages are open

    expect(page.locator("#status")).to_have_text("FINISHED", timeout=WAIT_MS)
    assert page.evaluate("window.__notReloaded") is True
    assert set(page.locator("#images .state").all_inner_texts()) == {"done"}
    assert "4/4 built, 4/4 processed, 0 failed" in page.locator("#progress").inner_text()
    steps = page.locator("#images tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.image, r.dataset.step])")
    assert sorted(steps) == sorted([j.key, s] for j in running.plan.images for s in ("build", "process", "boottest"))
    assert page.locator("#images .end").all_inner_texts().count("-") == 0  # every step has ended
    assert page.locator("#history .status").all_inner_texts() == ["STARTED", "FINISHED"]
    page.screenshot(path=screens / "dashboard-compose-running-after.png", full_page=True)
    expect(listing.locator(f'tr[data-compose="{cid}"] .status')).to_have_text("FINISHED", timeout=WAIT_MS)
    assert listing.evaluate("window.__notReloaded") is True
    assert listing.locator(f'tr[data-compose="{cid}"] .built').inner_text() == "4/4"


def test_raw_dot_dot_paths_never_leave_the_logs(dashboard):
    base, made, _, _ = dashboard
    doom = made["doomed"]
    (doom.topdir / "work" / "secret.txt").write_text("SECRET\n")
    host, port = urlsplit(base).hostname, urlsplit(base).port
    for path in (f"/composes/{doom.plan.compose_id}/logs/../work/secret.txt",
                 f"/composes/{doom.plan.compose_id}/logs/generic-i686/../../work/secret.txt",
                 f"/composes/{doom.plan.compose_id}/logs/%2e%2e/work/secret.txt"):
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 404"), (path, data[:200])
        assert b"SECRET" not in data


@pytest.fixture(scope="module")
def drops(dashboard, tmp_path_factory):
    """A weekly stream and the finished milestone drop with its AMIs staged, served over HTTP."""
    _, made, out, _ = dashboard
    mirror = out / "mirror"
    compose.refresh_staged(made["finished"], mirror)  # as `rel-eng ec2 publish` does
    weekly_out = tmp_path_factory.mktemp("weekly-out")
    compose.run_compose(load_config(), weekly_out, "rawhide", None, dt.date(2013, 4, 1),
                        mirror_root=mirror)
    handler = functools.partial(_QuietHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror, f"http://127.0.0.1:{server.server_address[1]}", made
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _pages(mirror: Path, made) -> list[tuple[Path, Path, dict | None]]:
    """(page, the tree its links must stay in, ec2.json or None)."""
    alpha = mirror / made["finished"].plan.mirror_path
    stream = mirror / "alt" / "cloud" / "weekly" / "Rawhide"
    ec2 = json.loads((alpha / "metadata" / "ec2.json").read_text())
    weekly = next(p for p in stream.iterdir() if p.is_dir() and not p.is_symlink())
    return [(alpha / "index.html", alpha, ec2), (weekly / "index.html", weekly, None),
            (stream / "index.html", stream, None)]


def _check_browser_links(pg, root: Path, ec2, fetch) -> tuple[int, int]:
    anchors = pg.locator("a").evaluate_all("as => as.map(a => a.href)")
    files = launches = 0
    here = pg.url.split("#")[0]
    for href in anchors:
        if href.startswith("https://"):
            assert launch_target(href) in amis_in(ec2), href
            launches += 1
        elif href.split("#")[0] == here and "#" in href:
            assert pg.locator(f"[id='{href.split('#', 1)[1]}']").count() == 1, href
        else:
            fetch(href, root)
            files += 1
    return files, launches


def _file_exists(href: str, root: Path) -> None:
    parts = urlsplit(href)
    assert parts.scheme == "file", href
    path = Path(unquote(parts.path)).resolve()
    assert path.is_relative_to(root.resolve()) and path.is_file(), href


def test_download_pages_from_file_and_http(drops, page, screens):
    mirror, base, made = drops
    pages = list(_pages(mirror, made))
    assert pages
    for n, (html, root, ec2) in enumerate(pages):
        page.goto(html.as_uri())
        files, launches = _check_browser_links(page, root, ec2, _file_exists)
        assert files >= 3 and launches == (4 if ec2 else 0)
        page.screenshot(path=screens / f"static-{n}-{html.parent.name}-file.png", full_page=True)

        def over_http(href, _root):
            assert href.startswith(base + "/"), href
            r = page.request.get(href)
            assert r.status == 200, href
            local = mirror / unquote(urlsplit(href).path).lstrip("/")
            if local.is_file():
                assert len(r.body()) == local.stat().st_size, href

        page.goto(base + "/" + str(html.relative_to(mirror)))
        assert _check_browser_links(page, root, ec2, over_http) == (files, launches)
        page.screenshot(path=screens / f"static-{n}-{html.parent.name}-http.png", full_page=True)
    # The launch links name the region and AMI of the row they are in.
    page.goto(_pages(mirror, made)[0][0].as_uri())
    rows = page.locator("table.amis tbody tr")
    assert rows.count() == 4
    for i in range(rows.count()):
        region, ami = rows.nth(i).locator("td").all_inner_texts()[:2]
        href = rows.nth(i).locator("a.launch").get_attribute("href")
        assert launch_target(href) == (region, ami)
        url = page.evaluate("h => { const u = new URL(h); return [u.searchParams.get('region'), u.hash]; }", href)
        assert url == [region, f"#LaunchInstances:ami={ami}"]
    assert page.locator("#not-bootable").is_visible()
