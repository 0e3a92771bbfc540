"""Kept-alive dashboard connections have Nagle off (TCP_NODELAY), without timing anything.

A response goes out in more than one write; with Nagle on, the second write of a response on a
kept-alive connection waits for the client's delayed ACK (40 ms on Linux), so every poll of
the page paid 40 ms. asyncio switches Nagle off only on sockets whose proto is IPPROTO_TCP and
an accepted socket inherits its listener's proto, so the listener must be made with it. The
tests read the option off the server's own accepted sockets, after requests on one connection
(the dashboard's, and the Koji test hub's, which koji's client keeps alive too).
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading

import pytest

from rel_eng.listen import no_delay, tcp_listener
from rel_eng.store.engine import open_engine
from rel_eng.web.dashboard.app import create_app
from rel_eng.web.dashboard.server import bind_socket, make_server
from web_fixtures import fill_store
from kojihub.fixtures import hub_assets  # noqa: F401  (fixture)


def _nodelay(sock) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HOSTS = ["127.0.0.1", pytest.param("::1", marks=pytest.mark.skipif(
    not _has_ipv6_loopback(), reason="this host has no IPv6 loopback"))]


@pytest.mark.parametrize("host", HOSTS)
def test_the_dashboard_listener_is_a_tcp_socket(host):
    sock = bind_socket(host, 0)
    with sock:
        assert (sock.type, sock.proto) == (socket.SOCK_STREAM, socket.IPPROTO_TCP)
        assert sock.getsockname()[0] == host


def _accepted_nodelay(listener: socket.socket) -> bool:
    """Serve one connection with asyncio on `listener`; whether the accepted socket had Nagle off."""
    seen: list[bool] = []

    async def main() -> None:
        async def handle(reader, writer):
            seen.append(_nodelay(writer.get_extra_info("socket")))
            writer.close()

        server = await asyncio.start_server(handle, sock=listener)
        host, port = listener.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        while not seen:
            await asyncio.sleep(0)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    return seen[0]


@pytest.mark.parametrize("host", HOSTS)
def test_asyncio_switches_nagle_off_on_what_our_listener_accepts(host):
    assert _accepted_nodelay(tcp_listener(host, 0))


def test_a_listener_made_with_proto_0_would_keep_nagle_on():
    """The cause, shown: the same server on a socket made the old way keeps Nagle on. If this
    ever fails, asyncio sets the option itself and the listener's proto no longer matters."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    assert not _accepted_nodelay(sock)


def test_no_delay_switches_nagle_off_on_a_plain_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        assert not _nodelay(s)
        assert _nodelay(no_delay(s))


def test_every_kept_alive_dashboard_connection_has_nagle_off(tmp_path):
    """The real app and the uvicorn server `rel-eng serve` runs, on the socket it binds: after
    several requests on each of two kept-alive connections, every connection the server holds
    has TCP_NODELAY set."""
    engine = open_engine(f"sqlite:///{tmp_path / 'rel-eng.db'}")
    ids = fill_store(engine, 3, 2)
    server = make_server(create_app(engine))
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    clients = []
    try:
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            clients.append(conn)
            for path in ("/", "/api/composes", f"/composes/{ids[0]}", f"/api/composes/{ids[1]}"):
                conn.request("GET", path)
                r = conn.getresponse()
                assert r.status == 200 and r.read()
                assert r.getheader("connection", "").lower() != "close"
        conns = list(server.server_state.connections)
        assert len(conns) == 2  # both kept alive: each served all its requests
        assert all(_nodelay(c.transport.get_extra_info("socket")) for c in conns)
    finally:
        for conn in clients:
            conn.close()
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        engine.dispose()
    assert not thread.is_alive()


def test_the_koji_test_hubs_kept_alive_connections_have_nagle_off(tmp_path, hub_assets):
    """The other HTTP server the suite talks keep-alive to with a real client: koji's own
    ClientSession over HTTPS. socketserver, not asyncio: its handler switches Nagle off."""
    from rel_eng.builders.koji_session import login, new_session, read_profile
    from rel_eng.config.koji import KojiConfig
    from kojihub import KojiTestHub

    certs, images = hub_assets
    with KojiTestHub(tmp_path / "hub", certs, images) as hub:
        cfg = tmp_path / "koji.conf"
        cfg.write_text(hub.client_config("keepalive"))
        profile = read_profile(KojiConfig(profile="keepalive", config_file=str(cfg)))
        session = new_session(profile)
        login(session, profile)
        for _ in range(3):
            session.getAPIVersion()
        with hub._server.conn_lock:
            conns = list(hub._server.connections)
        assert conns and all(_nodelay(c) for c in conns)
        session.logout()
