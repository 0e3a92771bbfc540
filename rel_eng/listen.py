"""The one way this project opens a TCP listening socket (the dashboard, and any server of ours).

The socket is made with proto IPPROTO_TCP, not 0: asyncio switches Nagle off (TCP_NODELAY) only
on sockets whose proto is IPPROTO_TCP, and an accepted socket inherits its listener's proto.
With proto 0 every kept-alive response's second write waits for the client's delayed ACK
(40 ms on Linux). Servers that do not run on asyncio (socketserver, threads) must still set
TCP_NODELAY on each accepted connection: `no_delay` does that.
"""

from __future__ import annotations

import socket

BACKLOG = 128


def tcp_listener(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A bound, listening TCP socket on host:port (an IPv6 literal when host has a ':').
    Raises OSError as bind/listen did; nothing is left open then."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def no_delay(sock: socket.socket) -> socket.socket:
    """Nagle off on one accepted connection (for servers outside asyncio)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
