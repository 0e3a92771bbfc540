"""One VM's metadata service: HTTP on a unix socket in that VM's 0700 work directory.

The guest reaches it only through its own slirp network: qemu's `guestfwd` rule for
169.254.169.254:80 runs `socat - UNIX-CONNECT:<socket>` for each connection the guest opens
(libslirp runs the command with qemu's working directory, the VM's work directory, so the
socket's name needs no quoting). Nothing listens on a host port, so no other guest and no
other host process on the network can reach it; it is closed when its VM is killed.

Every request is logged (method, path, whether it carried a token and whether that token was
valid, the status answered) for the verdict's evidence; the thread CPU time spent answering is
counted for the benchmark.
"""

from __future__ import annotations

import os
import socketserver
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from rel_eng import runner

ADDRESS = "169.254.169.254"
PORT = 80
SOCKET_NAME = "metadata.sock"
MAX_LOGGED = 2000  # a guest hammering the service cannot grow the verdict without bound
MAX_SUN_PATH = 107


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    token: str   # none | valid | invalid | ignored
    status: int

    def line(self) -> str:
        return f"{self.method} {self.path} token={self.token} -> {self.status}"


def guestfwd(socket_name: str = SOCKET_NAME) -> str:
    """The -nic user option that sends the guest's 169.254.169.254:80 to this server."""
    return f"guestfwd=tcp:{ADDRESS}:{PORT}-cmd:{runner.require('socat')} - UNIX-CONNECT:{socket_name}"


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False


class MetadataServer:
    """Serves `service.respond(method, path, headers)` until `stop()`."""

    def __init__(self, service, workdir: Path):
        self.service = service
        self.path = workdir / SOCKET_NAME
        if len(str(self.path)) > MAX_SUN_PATH:
            raise RuntimeError(f"metadata socket path too long for AF_UNIX: {self.path} "
                               "(set TMPDIR to a shorter directory)")
        self.requests: list[Request] = []
        self.dropped = 0
        self.cpu_s = 0.0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: socat ends with it
            server_version = "rel-eng-metadata"
            sys_version = ""

            def _answer(self):
                t = time.thread_time()
                headers = {k: v for k, v in self.headers.items()}
                token = owner.service.token_state(headers)
                resp = owner.service.respond(self.command, self.path, headers)
                body = resp.body.encode()
                self.send_response(resp.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                for k, v in resp.headers:
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                owner._log(Request(self.command, self.path[:300], token, resp.status),
                           time.thread_time() - t)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer

            def address_string(self):
                return "guest"

            def log_message(self, fmt, *args):  # the request log above is the record
                pass

        self._server = _Server(str(self.path), Handler)
        os.chmod(self.path, 0o600)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True, name="metadata-server")
        self._thread.start()

    def _log(self, req: Request, cpu: float) -> None:
        with self._lock:
            self.cpu_s += cpu
            if len(self.requests) < MAX_LOGGED:
                self.requests.append(req)
            else:
                self.dropped += 1

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        try:
            self.path.unlink()
        except OSError:
            pass
