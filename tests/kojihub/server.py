"""The test hub on the wire: XML-RPC over HTTPS on 127.0.0.1, uploads, and files with Range.

    POST /kojihub            XML-RPC (koji.xmlrpcplus), multiCall / system.multicall included
    POST /kojihub/ssllogin   sslLogin, the client certificate's CN names the user
    POST /kojihub?filename=  rawUpload (application/octet-stream), as kojixmlrpc routes it
    GET  /kojifiles/<path>   the hub's topdir (work/, scratch/, packages/), Range supported

Every POST to the hub is one round trip and is counted (`rpc_log`). `restart()` stops the
server - listening socket and open connections - and brings it back on the same port with the
same state, as a hub restart looks to a client.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
import urllib.parse
import xmlrpc.client
from pathlib import Path

import koji
from koji.xmlrpcplus import dumps

from .assets import Certs, Images
from .hub import Hub, _as_fault

HUB_PATH = "/kojihub"
FILES_PATH = "/kojifiles"
WEB_PATH = "/koji"
FILE_CHUNK = 64 * 1024


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, port: int, app: "KojiTestHub"):
        self.app = app
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def get_request(self):
        sock, addr = super().get_request()
        # The handshake runs in the handler thread, not in the accept loop.
        return self.app.tls.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), addr

    def process_request(self, request, client_address):
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # Clients that hang up (and connections a restart drops) are routine here.
        import sys

        if not isinstance(sys.exc_info()[1], (OSError, ssl.SSLError)):
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
            self.connections.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as koji's requests session expects
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server: _Server

    def setup(self):
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format, *args):  # quiet: tests read rpc_log / get_log instead
        pass

    # --- XML-RPC and uploads ------------------------------------------------------------------

    def do_POST(self):
        app = self.server.app
        url = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path not in (HUB_PATH, HUB_PATH + "/ssllogin"):
            return self._plain(404, "not found\n")
        headers = {k: self.headers[k] for k in
                   ("Koji-Session-Id", "Koji-Session-Key", "Koji-Session-Callnum")
                   if self.headers.get(k) is not None}
        user = self._client_user()
        if self.headers.get("Content-Type") == "application/octet-stream":
            app.record_rpc("rawUpload", [])
            try:
                app.hub.begin("rawUpload", headers, user, False)
                query = urllib.parse.parse_qs(url.query, strict_parsing=True)
                payload = dumps((app.hub.raw_upload(query, body),), methodresponse=1,
                                allow_none=1)
            except Exception as exc:
                payload = dumps(_as_fault(exc), allow_none=1)
            return self._xml(payload)
        try:
            params, method = xmlrpc.client.loads(body)
        except Exception as exc:
            return self._plain(400, f"Invalid request: {exc}\n")
        inner = [c.get("methodName") for c in params[0]] if method in (
            "multiCall", "system.multicall") and params else []
        app.record_rpc(method, inner)
        try:
            app.hub.begin(method, headers, user, url.path.endswith("/ssllogin"))
            if inner or method in ("multiCall", "system.multicall"):
                result = self._multicall(params[0])
            else:
                result = app.hub.call(method, params)
            payload = dumps((result,), methodresponse=1, allow_none=1)
        except Exception as exc:
            payload = dumps(_as_fault(exc), allow_none=1)
        self._xml(payload)
        if "getTaskInfo" in inner:
            app.after_watch_round()

    def _multicall(self, calls: list) -> list:
        """kojixmlrpc.multiCall: each call's result as [value], or its fault as a dict."""
        hub = self.server.app.hub
        results = []
        for call in calls:
            try:
                if call["methodName"] in ("multiCall", "system.multicall"):
                    raise koji.GenericError("multicall cannot be nested")
                results.append([hub.call(call["methodName"], tuple(call["params"]))])
            except Exception as exc:
                fault = _as_fault(exc)
                results.append({"faultCode": fault.faultCode, "faultString": fault.faultString})
        return results

    def _client_user(self) -> str | None:
        cert = self.request.getpeercert()
        if not cert:
            return None
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return None

    def _xml(self, payload: str) -> None:
        data = payload.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Koji-Version", koji.__version__)
        self.end_headers()
        self.wfile.write(data)

    def _plain(self, code: int, text: str, extra: dict | None = None) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # --- files ------------------------------------------------------------------------------

    def do_GET(self):
        app = self.server.app
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith(WEB_PATH + "/"):
            return self._plain(200, f"koji web (test hub): {url.path}?{url.query}\n")
        if not url.path.startswith(FILES_PATH + "/"):
            return self._plain(404, "not found\n")
        rel = urllib.parse.unquote(url.path[len(FILES_PATH) + 1:])
        range_header = self.headers.get("Range")
        app.record_get(rel, range_header)
        top = app.hub.topdir.resolve()
        path = (top / rel).resolve()  # like httpd with FollowSymLinks inside the topdir
        if not path.is_relative_to(top) or not path.is_file():
            return self._plain(404, "not found\n")
        total = path.stat().st_size
        start, end = 0, total - 1
        status = 200
        if range_header:
            spec = range_header.removeprefix("bytes=")
            first, _, last = spec.partition("-")
            try:
                start = int(first)
                end = int(last) if last else total - 1
            except ValueError:
                return self._plain(416, "bad range\n", {"Content-Range": f"bytes */{total}"})
            if start >= total or end < start:
                return self._plain(416, "range not satisfiable\n",
                                   {"Content-Range": f"bytes */{total}"})
            end = min(end, total - 1)
            status = 206
        cut = app.truncation_for(rel)
        flip = app.corruption_for(rel)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        self.end_headers()
        with open(path, "rb") as fh:
            fh.seek(start)
            left = end - start + 1 if cut is None else min(cut, end - start + 1)
            while left > 0:
                at = fh.tell()
                chunk = fh.read(min(FILE_CHUNK, left))
                if not chunk:
                    break
                if flip is not None and at <= flip < at + len(chunk):
                    chunk = bytearray(chunk)
                    chunk[flip - at] ^= 0xFF
                    chunk = bytes(chunk)
                self.wfile.write(chunk)
                app.record_sent(rel, len(chunk))
                left -= len(chunk)
        if cut is not None:
            # Promised the whole range, sent part of it: drop the connection like a dead proxy.
            self.wfile.flush()
            self.close_connection = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class KojiTestHub:
    """The hub state plus its HTTPS server; `with KojiTestHub(...) as hub:` always stops it."""

    def __init__(self, topdir: Path, certs: Certs, images: Images, **hub_opts):
        self.certs = certs
        self.hub = Hub(topdir, images, **hub_opts)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(certs.server_cert, certs.server_key)
        self.tls.load_verify_locations(certs.ca)
        self.tls.verify_mode = ssl.CERT_OPTIONAL  # anonymous reads; sslLogin needs a cert
        self.port = 0
        self.restarts = 0
        self.rpc_log: list[tuple[str, list[str]]] = []
        self.get_log: list[tuple[str, str | None]] = []
        self.bytes_sent: dict[str, int] = {}  # file (relative to topdir) -> body bytes written
        self._log_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._restart_thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "KojiTestHub":
        self.hub.start()
        self._serve()
        return self

    def _serve(self) -> None:
        self._server = _Server(self.port, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"test-hub-{self.port}", daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join(timeout=5)
        self._server = None

    def restart(self, down_for: float = 1.0) -> None:
        """Stop answering (connections refused), then come back on the same port."""
        self._halt()
        time.sleep(down_for)
        self._serve()
        self.restarts += 1

    def stop(self) -> None:
        if self._restart_thread is not None:
            self._restart_thread.join(timeout=30)
        self._halt()
        self.hub.stop()

    def __enter__(self) -> "KojiTestHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- addresses ----------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def server_url(self) -> str:
        return self.base + HUB_PATH

    @property
    def weburl(self) -> str:
        return self.base + WEB_PATH

    @property
    def topurl(self) -> str:
        return self.base + FILES_PATH

    def client_config(self, profile: str = "test-hub", user: str = "releng",
                      authtype: str = "ssl") -> str:
        """A koji client config section for this hub (what ~/.koji/config would hold)."""
        lines = [f"[{profile}]", f"server = {self.server_url}", f"weburl = {self.weburl}",
                 f"topurl = {self.topurl}", f"serverca = {self.certs.ca}",
                 f"authtype = {authtype}"]
        if authtype == "ssl":
            lines.append(f"cert = {self.certs.clients[user]}")
        return "\n".join(lines) + "\n"

    # --- counters and injections --------------------------------------------------------------

    @property
    def inject(self):
        return self.hub.inject

    def record_rpc(self, method: str, inner: list[str]) -> None:
        with self._log_lock:
            self.rpc_log.append((method, inner))

    def record_get(self, rel: str, range_header: str | None) -> None:
        with self._log_lock:
            self.get_log.append((rel, range_header))

    def record_sent(self, rel: str, n: int) -> None:
        with self._log_lock:
            self.bytes_sent[rel] = self.bytes_sent.get(rel, 0) + n

    def formats_not_downloaded(self) -> dict[str, str]:
        """Image files the hub made that no GET ever fetched: file name -> format.

        Each one is a format a client asked kojid to convert and upload, and then never used.
        """
        with self._log_lock:
            fetched = {rel.rsplit("/", 1)[-1] for rel, _ in self.get_log}
        return {name: fmt for name, fmt in sorted(self.hub.images_made.items())
                if name not in fetched}

    @property
    def round_trips(self) -> int:
        return len(self.rpc_log)

    def truncation_for(self, rel: str) -> int | None:
        rule = self.hub.inject.truncate
        with self._log_lock:
            if rule and rule.get("times", 0) > 0 and rel.endswith(rule["suffix"]):
                rule["times"] -= 1
                return rule["at"]
        return None

    def corruption_for(self, rel: str) -> int | None:
        """The offset served with its bits flipped (a bad disk or proxy on the hub's side)."""
        rule = self.hub.inject.corrupt
        if rule and rel.endswith(rule["suffix"]):
            return rule["at"]
        return None

    def after_watch_round(self) -> None:
        with self._log_lock:
            self.hub.watch_rounds += 1
            due = self.hub.inject.restart_after_rounds
            if not due or self.hub.watch_rounds != due:
                return
        # From another thread: shutdown() waits for serve_forever, which this request is under.
        self._restart_thread = threading.Thread(
            target=self.restart, args=(self.hub.inject.down_for,), name="test-hub-restart")
        self._restart_thread.start()


__all__ = ["KojiTestHub"]
