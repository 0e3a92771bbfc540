"""Starting `rel-eng serve`: the bind address is parsed and bound before uvicorn starts, so a
bad or taken address is one clear line (exit 2) rather than a server log."""

from __future__ import annotations

import errno
import logging
import socket

from rel_eng.config.web import BadBind, split_bind
from rel_eng.errors import InputError
from rel_eng.listen import tcp_listener

log = logging.getLogger(__name__)


def parse_bind(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[V6]:PORT' -> (host, port); a bad address is one line naming --bind."""
    try:
        return split_bind(text)
    except BadBind as exc:
        raise InputError(f"--bind '{text}': {exc.what}", hint=exc.hint) from None


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, made by rel_eng.listen (proto IPPROTO_TCP, so uvicorn's asyncio
    transports switch Nagle off on every accepted connection)."""
    try:
        return tcp_listener(host, port)
    except OSError as exc:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"--bind {shown}: the address is already in use",
                             hint="stop what listens there or pick another port") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise InputError(f"--bind {shown}: this host has no such address") from None
        if exc.errno == errno.EACCES:
            raise InputError(f"--bind {shown}: permission denied (ports below 1024 need root)") from None
        raise InputError(f"--bind {shown}: cannot listen: {exc.strerror}") from None


def make_server(app, *, log_level: str = "warning"):
    """The uvicorn server `serve` runs (tests run the same one in a thread)."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(app, sock: socket.socket, *, log_level: str = "warning") -> None:
    make_server(app, log_level=log_level).run(sockets=[sock])
