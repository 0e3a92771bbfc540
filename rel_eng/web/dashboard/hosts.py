"""The dashboard answers only requests whose `Host:` names it (DNS rebinding).

A page on evil.example whose name is re-pointed at 127.0.0.1 would let a browser read the
dashboard as if it were evil.example's own: the browser still sends `Host: evil.example`. So a
request is served only when its Host is the bind address, a loopback name when it listens on
loopback, any IP literal when it listens on every address (a rebinding attack needs a name),
or a name listed in `[web] allowed_hosts`. Anything else is a 421 with one plain line.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def host_name(header: str) -> str:
    """The name or address of a Host header value, without port, brackets or a final dot."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".")


def _ip(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class HostCheck:
    bind_host: str
    allowed: frozenset[str] = frozenset()

    def accepts(self, header: str | None) -> bool:
        if not header:
            return False  # HTTP/1.1 requires it; a browser always sends one
        name = host_name(header)
        if not name or name in self.allowed:
            return bool(name)
        bind = _ip(self.bind_host)
        ip = _ip(name)
        if name == self.bind_host.lower() or (ip is not None and ip == bind):
            return True
        if bind is None or bind.is_loopback:  # bound to "localhost" or a loopback address
            return name in LOOPBACK_NAMES or (ip is not None and ip.is_loopback)
        if bind.is_unspecified:  # 0.0.0.0 or ::
            return ip is not None
        return False


class HostCheckMiddleware:
    """ASGI middleware: a request with a Host the check refuses never reaches a route."""

    def __init__(self, app, check: HostCheck):
        self.app = app
        self.check = check

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = [v for k, v in scope.get("headers", []) if k == b"host"]
        header = headers[0].decode("latin-1") if len(headers) == 1 else None
        if self.check.accepts(header):
            return await self.app(scope, receive, send)
        body = (b"421 Misdirected Request: this dashboard does not answer to that Host "
                b"(add the name to [web] allowed_hosts)\n")
        await send({"type": "http.response.start", "status": 421,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})
