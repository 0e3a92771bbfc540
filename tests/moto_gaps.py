"""The EC2 actions moto's server lacks, answered in front of it from state a test sets.

moto 5.2.6 answers GetImageBlockPublicAccessState, GetSnapshotBlockPublicAccessState and
EnableImageDeprecation with HTTP 500 ("not implemented"). This WSGI layer sits between the
socket and moto's app: those three actions get the answer AWS documents, built from the
per-region settings the test chose, and every such request is kept so the test checks what
was sent. Every other request goes to moto untouched. Its state is reset with moto's.
"""

from __future__ import annotations

import io
import threading
import urllib.parse
from typing import Any, Callable

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
IMAGE_BPA = "GetImageBlockPublicAccessState"
SNAPSHOT_BPA = "GetSnapshotBlockPublicAccessState"
DEPRECATE = "EnableImageDeprecation"
ANSWERED = (IMAGE_BPA, SNAPSHOT_BPA, DEPRECATE)


class MotoGaps:
    """WSGI middleware: the missing actions from `image_bpa` / `snapshot_bpa` (region -> state,
    "unblocked" when unset) and `managed_by` (region -> "account" | "declarative-policy")."""

    def __init__(self, app: Callable):
        self.app = app
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.image_bpa: dict[str, str] = {}
            self.snapshot_bpa: dict[str, str] = {}
            self.managed_by: dict[str, str] = {}
            self.requests: list[tuple[str, str, dict[str, str]]] = []  # (action, region, params)

    def sent(self, action: str) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return [(region, params) for a, region, params in self.requests if a == action]

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("latin-1")).items()}
        action = params.get("Action", "")
        if action not in ANSWERED:
            return self.app(environ, start_response)
        region = _region(environ.get("HTTP_AUTHORIZATION", ""))
        with self._lock:
            self.requests.append((action, region, params))
            if action == IMAGE_BPA:
                fields = {"imageBlockPublicAccessState": self.image_bpa.get(region, "unblocked"),
                          "managedBy": self.managed_by.get(region, "account")}
            elif action == SNAPSHOT_BPA:
                fields = {"state": self.snapshot_bpa.get(region, "unblocked"),
                          "managedBy": self.managed_by.get(region, "account")}
            else:
                fields = {"return": "true"}
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
        xml = (f'<?xml version="1.0" encoding="UTF-8"?><{action}Response xmlns="{EC2_NS}">'
               f"<requestId>moto-gaps</requestId>{inner}</{action}Response>").encode()
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))])
        return [xml]


def _region(authorization: str) -> str:
    """The region of the SigV4 credential scope: `Credential=AKID/date/<region>/ec2/...`."""
    scope = authorization.partition("Credential=")[2].split(",")[0].split("/")
    return scope[2] if len(scope) > 2 else ""


class GapFillingMotoServer:
    """moto's own WSGI app with MotoGaps in front, served from a thread on 127.0.0.1 (what
    moto's ThreadedMotoServer does, without reaching into it); `gaps` holds the state and the
    requests."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        self.gaps = MotoGaps(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(ip_address, port, self.gaps, True,
                                   request_handler=MotoRequestHandler)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
