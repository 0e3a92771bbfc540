"""`[web]`: where `rel-eng serve` listens and how often its pages refresh (rel_eng.web)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from rel_eng.config.table import Section, setting
from rel_eng.errors import InputError

DEFAULT_BIND = "127.0.0.1:8080"


class BadBind(InputError):
    """A malformed HOST:PORT; `what` is the problem alone, for the caller to say where it was."""

    def __init__(self, what: str, hint: str | None = None):
        super().__init__(what, hint)
        self.what = what


def split_bind(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[V6]:PORT' -> (host, port). HOST is an IP address or 'localhost'."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port:
        raise BadBind(f"expected HOST:PORT, e.g. {DEFAULT_BIND} or [::1]:8080")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise BadBind(f"'{host}' is not an IP address",
                          "use an address of this host, e.g. 127.0.0.1") from None
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise BadBind(f"port '{port}' is not a number 0..65535")
    return host, int(port)


def _bind(text: str) -> str | None:
    try:
        split_bind(text)
    except BadBind as exc:
        return exc.what
    return None


def _hosts(values) -> str | None:
    for name in values:
        if not name or any(c in name for c in "/:@ \t[]") or name != name.strip("."):
            return f"'{name}' is not a host name (e.g. releng.example.org)"
    return None


@dataclass(frozen=True)
class WebConfig(Section):
    bind: str = setting(DEFAULT_BIND, "the dashboard's HOST:PORT (--bind overrides it; port 0 "
                        "picks a free one)", valid=_bind)
    poll_ms: int = setting(2000, "how often open pages fetch live status (--poll-ms overrides it)",
                           low=100, high=600_000)
    allowed_hosts: tuple[str, ...] = setting((), "host names the dashboard answers to besides its "
                                             "bind address (the Host: header; DNS rebinding "
                                             "cannot read it)", valid=_hosts)
