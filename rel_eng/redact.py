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

A credential may also ride in a query parameter (`?password=`, which libpq and redis-py honour,
`sslpassword`, Koji's `session-key`, a presigned URL's `X-Amz-Signature`...), percent-encoded
names included (`pass%77ord`, which both decode): config refuses those as it refuses
user:password, and `redact` masks their values anywhere in a text. Credential headers
(`Authorization`, `X-Amz-Security-Token`, `Koji-Session-Key`...) and AWS secrets in the
dict reprs, canonical requests and response bodies that botocore, urllib3 and koji log at DEBUG
are masked the same way, so `--debug` means tracebacks, never credentials.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from urllib.parse import unquote_plus

MASK = "***"
# scheme://user:password@ ; the token ends at whitespace, a quote or angle bracket. The
# password runs to the token's last "@" (greedy), the user stops at the first ":" or "/".
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"<>`]*:)"
    r"(?P<password>[^\s'\"<>`]*)@")


# Query (or key=value) parameters whose value is a credential for some driver: libpq
# (password, sslpassword), redis-py and kombu (password), MySQL drivers (passwd, pwd), Koji's
# old-style session URLs (session-key), presigned S3/EC2 URLs (X-Amz-*), and generic tokens.
CREDENTIAL_PARAMS = frozenset({
    "password", "passwd", "pass", "pwd", "sslpassword", "secret", "client_secret", "token",
    "access_token", "auth_token", "refresh_token", "api_key", "apikey", "session-key",
    "session_key", "x-amz-security-token", "x-amz-signature", "x-amz-credential", "signature",
    "aws_secret_access_key", "aws_session_token", "private_key", "passphrase",
})
# name=value: the name percent-decoded and lower-cased before it is looked up; the value runs
# to the next separator of a query string, a quote or white space.
_PARAM = re.compile(r"(?P<head>(?:^|(?<=[?&;\s\"'(,{\[]))(?P<name>[A-Za-z0-9_.%+-]+)=)"
                    r"(?P<value>[^&;\s'\"<>`#)}\]]*)")
# Credential headers and AWS secret fields as libraries log them: `Name: value`,
# `'Name': b'value'`, `('Name', 'value')`, `"Name": "value"`, `<Name>value</Name>`.
CREDENTIAL_FIELDS = ("authorization", "proxy-authorization", "x-amz-security-token",
                     "koji-session-key", "x-auth-token", "cookie", "set-cookie",
                     "secretaccesskey", "sessiontoken", "secret_access_key", "session_token",
                     "aws_secret_access_key", "aws_session_token", "token", "signature")
_FIELD_NAMES = "|".join(re.escape(n) for n in CREDENTIAL_FIELDS)
_QUOTED_FIELD = re.compile(
    r"(?P<head>(?P<q>['\"])(?P<name>" + _FIELD_NAMES + r")(?P=q)\s*[:=,]\s*)"
    r"(?P<value>b?'(?:[^'\\]|\\.)*'|b?\"(?:[^\"\\]|\\.)*\"|[^\s,}\])]+)", re.IGNORECASE)
_BARE_HEADER = re.compile(
    r"(?P<head>(?<![\w-])(?P<name>" + _FIELD_NAMES + r")\s*:\s*)(?P<value>[^\r\n'\"]+)",
    re.IGNORECASE)
# An XML-RPC struct member (koji's sslLogin answer, logged with debug_xmlrpc, maybe as a repr
# with escaped newlines): <name>session-key</name><value><string>KEY</string></value>.
_SPACE = r"(?:\s|\\n|\\r|\\t)*"
_XMLRPC_MEMBER = re.compile(r"(?P<head><name>(?P<name>[^<]{1,64})</name>" + _SPACE + r"<value>"
                            + _SPACE + r"(?:<string>)?)(?P<value>[^<]+)", re.IGNORECASE)
_XML_FIELD = re.compile(r"(?P<head><(?P<name>SecretAccessKey|SessionToken|Token)>)[^<]*(?=</)",
                        re.IGNORECASE)


def password_of(url: str) -> str:
    """The password an URL-shaped string carries, raw as written ("" when none): its
    userinfo password, else the first credential query parameter's value."""
    m = _URL_PASSWORD.search(url)
    if m and m.group("password"):
        return m.group("password")
    found = credential_params(url)
    return found[0][1] if found else ""


def credential_params(text: str) -> list[tuple[str, str]]:
    """(name as written, value) of each credential query parameter with a value."""
    if "=" not in text:
        return []
    return [(m.group("name"), m.group("value")) for m in _PARAM.finditer(text)
            if m.group("value") and _is_credential(m.group("name"))]


def _is_credential(name: str) -> bool:
    return unquote_plus(name).strip().lower() in CREDENTIAL_PARAMS


def _mask_param(m: re.Match) -> str:
    if m.group("value") and _is_credential(m.group("name")):
        return f"{m.group('head')}{MASK}"
    return m.group(0)


def _mask_quoted(m: re.Match) -> str:
    value = m.group("value")
    if value[:1] == "b":
        value = value[1:]
    quote = value[:1] if value[:1] in "'\"" else ""
    return f"{m.group('head')}{quote}{MASK}{quote}"


def redact(text: str) -> str:
    """`text` with every URL password, credential parameter and credential header masked."""
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@" if m.group("password")
                                 else m.group(0), text)
    if "=" in text:
        text = _PARAM.sub(_mask_param, text)
    lowered = text.lower()
    if any(n in lowered for n in CREDENTIAL_FIELDS):
        text = _QUOTED_FIELD.sub(_mask_quoted, text)
        text = _BARE_HEADER.sub(lambda m: f"{m.group('head')}{MASK}", text)
        text = _XML_FIELD.sub(lambda m: f"{m.group('head')}{MASK}", text)
    if "<name>" in text:
        text = _XMLRPC_MEMBER.sub(_mask_member, text)
    return text


def _mask_member(m: re.Match) -> str:
    name = m.group("name").strip().lower()
    if _is_credential(name) or name in CREDENTIAL_FIELDS:
        return f"{m.group('head')}{MASK}"
    return m.group(0)


def password_problem(url: str, instead: str) -> str:
    """The one line config gives a URL that holds a password ("" when it holds none)."""
    m = _URL_PASSWORD.search(url)
    if m and m.group("password"):
        where = "holds a password"
    elif credential_params(url):
        names = ", ".join(sorted({n for n, _ in credential_params(url)}))
        where = f"holds a credential in its query ({names})"
    else:
        return ""
    return (f"'{redact(url)}' {where}; config is copied into every compose, so "
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
