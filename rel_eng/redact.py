"""URL passwords: one rule to refuse them in config and one redaction for everything printed.

Every compose copies its config into work/config.json, plans and TDLs carry install trees and
repos, and the manifest records hub URLs, so a password in any URL a config holds would end up
in files on shared storage. Config therefore refuses them (`password_problem`); the one
password-bearing URL allowed is the Celery broker's, from the environment of the process that
needs it. Everything a process prints or logs goes through `redact`, which also covers URLs
that arrive in exception messages from libraries.

A password may be written raw (`redis://:p/w@x@host`) or percent-encoded (`p%2Fw%40x`): the
userinfo is taken to end at the last `@` of the URL-shaped token, so `/`, `@`, `:` and `+` in a
password never leave a piece of it behind. Erring towards hiding a little more is safe.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback

MASK = "***"
# scheme://user:password@ ; the token ends at whitespace, a quote or angle bracket. The
# password runs to the token's last "@" (greedy), the user stops at the first ":" or "/".
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"<>`]*:)"
    r"(?P<password>[^\s'\"<>`]*)@")


def password_of(url: str) -> str:
    """The password an URL-shaped string carries, raw as written ("" when none)."""
    m = _URL_PASSWORD.search(url)
    return m.group("password") if m else ""


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    if "://" not in text:
        return text
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@" if m.group("password")
                             else m.group(0), text)


def password_problem(url: str, instead: str) -> str:
    """The one line config gives a URL that holds a password ("" when it holds none)."""
    if not password_of(url):
        return ""
    return (f"'{redact(url)}' holds a password; config is copied into every compose, so "
            f"{instead}")


def check_urls(problems, items, instead: str) -> None:
    """Add a problem for each (key, url) in `items` whose URL holds a password."""
    for key, url in items:
        message = password_problem(url, instead) if isinstance(url, str) else ""
        if message:
            problems.add(key, message)


def _scrub(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a record's message and traceback text once, when it is made."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: the handler reports it as usual
        return record
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    return record


def _excepthook(kind, value, tb) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))


def install() -> None:
    """Redact every log record and uncaught traceback of this process (and its forks)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return
    def factory(*args, **kwargs):
        return _scrub(make(*args, **kwargs))

    factory.redacts = True
    logging.setLogRecordFactory(factory)
    sys.excepthook = _excepthook
