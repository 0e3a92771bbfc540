"""The dashboard answers only a Host that names it: DNS rebinding cannot read it."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time

import pytest

from rel_eng.web.dashboard.hosts import HostCheck, host_name

REL_ENG = [sys.executable, "-m", "rel_eng"]


@pytest.mark.parametrize("header,name", [
    ("127.0.0.1:8080", "127.0.0.1"), ("[::1]:8080", "::1"), ("[::1]", "::1"),
    ("LocalHost.", "localhost"), ("Evil.Example:80", "evil.example"), ("::1", "::1"),
])
def test_host_name_drops_port_brackets_case_and_final_dot(header, name):
    assert host_name(header) == name


LOOPBACK = HostCheck("127.0.0.1")
ANY = HostCheck("0.0.0.0", frozenset({"releng.example.org"}))
ONE = HostCheck("10.1.2.3", frozenset({"releng.example.org"}))


@pytest.mark.parametrize("check,header,ok", [
    (LOOPBACK, "127.0.0.1:8080", True), (LOOPBACK, "localhost:8080", True),
    (LOOPBACK, "[::1]:8080", True), (LOOPBACK, "127.0.0.2", True),
    (LOOPBACK, "evil.example", False), (LOOPBACK, "127.0.0.1.nip.io", False),
    (LOOPBACK, "localhost.evil.example", False), (LOOPBACK, "", False), (LOOPBACK, None, False),
    (LOOPBACK, "10.0.0.1", False), (LOOPBACK, "[evil]", False),
    (ANY, "192.0.2.7:8080", True), (ANY, "[2001:db8::1]", True), (ANY, "releng.example.org", True),
    (ANY, "RELENG.example.org.:443", True), (ANY, "evil.example", False),
    (ANY, "releng.example.org.evil.example", False),
    (ONE, "10.1.2.3:8080", True), (ONE, "releng.example.org", True), (ONE, "10.1.2.4", False),
    (ONE, "localhost", False), (ONE, "127.0.0.1", False),
])
def test_host_check(check, header, ok):
    assert check.accepts(header) is ok


@pytest.fixture()
def server(tmp_path):
    """`rel-eng serve` on a free loopback port over an empty store, with one allowed name."""
    out = tmp_path / "out"
    subprocess.run([*REL_ENG, "compose", "--release", "19", "--weekly", "--date", "2013-04-05",
                    "--output", str(out)], check=True, capture_output=True)
    cfg = tmp_path / "web.toml"
    cfg.write_text('[web]\nallowed_hosts = ["releng.example.org"]\n')
    proc = subprocess.Popen([*REL_ENG, "serve", "--bind", "127.0.0.1:0", "--output", str(out),
                             "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1))
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def _get(port: int, host: str | None, path: str = "/api/composes") -> tuple[int, bytes]:
    for _ in range(100):  # uvicorn accepts once it runs; the socket is bound already
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest("GET", path, skip_host=True)
            if host is not None:
                conn.putheader("Host", host)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, resp.read()
        except ConnectionError:
            time.sleep(0.1)
        finally:
            conn.close()
    raise AssertionError("the dashboard never answered")


def test_serve_refuses_a_rebound_host_and_answers_its_own(server):
    status, body = _get(server, f"127.0.0.1:{server}")
    assert status == 200 and b"Fedora-Cloud-19-20130405.n.0" in body
    assert _get(server, f"localhost:{server}")[0] == 200
    assert _get(server, "releng.example.org")[0] == 200  # [web] allowed_hosts
    for host in ("evil.example", f"evil.example:{server}", "127.0.0.1.nip.io",
                 "releng.example.org.evil.example", None):
        for path in ("/", "/api/composes", "/static/style.css", "/schedule"):
            status, body = _get(server, host, path)
            if host is None:  # HTTP/1.1 without Host: the HTTP parser refuses it first
                assert status == 400 and b"Fedora-Cloud" not in body
                continue
            assert status == 421, (host, path, status)
            assert b"Fedora-Cloud" not in body and b"allowed_hosts" in body
