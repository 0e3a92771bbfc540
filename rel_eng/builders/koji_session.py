"""A koji.ClientSession from the standard koji client config, login, and bounded retries.

The profile comes from koji's own files (/etc/koji.conf, /etc/koji.conf.d/, ~/.koji/config) via
`koji.read_config`. koji's built-in retry loop is switched off (max_retries=0): it retries at a
fixed interval and would swallow the exception a signal handler raises mid-call; polls retry
here instead, through rel_eng.retry, with exponential back-off. Credentials are never logged: only the profile name and
auth type are.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import koji
import requests
import urllib3

from rel_eng import retry
from rel_eng.errors import InputError, RelEngError
from rel_eng.config.koji import KojiConfig
from rel_eng.redact import password_of, redact

log = logging.getLogger(__name__)
T = TypeVar("T")

NOAUTH = ("noauth", "none")
GSSAPI = ("gssapi", "kerberos")


class HubError(RelEngError):
    """The hub answered with a fault, or could not be reached within the retry budget."""


class LoginRefused(HubError):
    """The hub refused the profile's credentials: bad input, nothing is submitted."""

    exit_code = 2


@dataclass(frozen=True)
class HubProfile:
    name: str
    server: str
    weburl: str
    topurl: str
    authtype: str  # "" = koji's own choice: ssl when the cert exists, else gssapi
    cert: str
    serverca: str
    principal: str
    keytab: str
    session_opts: dict

    def task_url(self, task_id: int) -> str:
        return f"{self.weburl.rstrip('/')}/taskinfo?taskID={task_id}"

    def pathinfo(self) -> koji.PathInfo:
        return koji.PathInfo(topdir=self.topurl.rstrip("/"))

    @property
    def verify(self) -> str | bool:
        """TLS trust for downloads from topurl: the profile's serverca, else the system's."""
        return self.serverca or True


def read_profile(kcfg: KojiConfig) -> HubProfile:
    """The koji client profile `kcfg.profile`, or InputError saying where it was looked for."""
    user_config = os.path.expanduser(kcfg.config_file) if kcfg.config_file else None
    try:
        opts = koji.read_config(kcfg.profile, user_config=user_config)
    except koji.ConfigurationError as exc:
        where = user_config or "~/.koji/config, /etc/koji.conf, /etc/koji.conf.d/"
        raise InputError(f"koji profile '{kcfg.profile}': {exc} (looked in {where})",
                         hint=f"add a [{kcfg.profile}] section with server, weburl and topurl, "
                              "or pick another with --koji-profile") from None
    if not opts.get("topurl"):
        raise InputError(f"koji profile '{kcfg.profile}' has no topurl",
                         hint="set topurl (e.g. https://kojipkgs.fedoraproject.org/) in that "
                              "section: image files are downloaded from it")
    for key in ("server", "weburl", "topurl"):
        # Hub and task URLs are recorded in the manifest and printed in messages.
        if password_of(str(opts.get(key) or "")):
            raise InputError(f"koji profile '{kcfg.profile}': {key} "
                             f"{redact(str(opts[key]))} holds a password",
                             hint="authenticate with authtype ssl or gssapi and serve topurl "
                                  "without credentials")
    authtype = (opts.get("authtype") or "").lower()
    if authtype and authtype not in (*NOAUTH, *GSSAPI, "ssl"):
        raise InputError(f"koji profile '{kcfg.profile}': authtype '{authtype}' is not supported",
                         hint="use ssl, gssapi (kerberos) or noauth")
    session_opts = koji.grab_session_options(opts)
    session_opts.update(max_retries=0, anon_retry=False, offline_retry=False,
                        timeout=min(float(opts.get("timeout") or kcfg.call_timeout),
                                    kcfg.call_timeout))
    return HubProfile(
        name=kcfg.profile, server=opts["server"], weburl=opts.get("weburl") or "",
        topurl=opts["topurl"], authtype=authtype, cert=opts.get("cert") or "",
        serverca=opts.get("serverca") or "", principal=opts.get("principal") or "",
        keytab=opts.get("keytab") or "", session_opts=session_opts,
    )


def new_session(profile: HubProfile) -> koji.ClientSession:
    return koji.ClientSession(profile.server, dict(profile.session_opts))


def login(session: koji.ClientSession, profile: HubProfile) -> None:
    """Log in the way koji's CLI (activate_session) does for the profile's authtype."""
    if session.logged_in or profile.authtype in NOAUTH:
        return
    use_ssl = profile.authtype == "ssl" or (
        not profile.authtype and profile.cert and os.path.isfile(profile.cert))
    method = "ssl" if use_ssl else "gssapi"
    try:
        if use_ssl:
            session.ssl_login(profile.cert, None, profile.serverca or None)
        else:
            kwargs = {}
            if profile.principal:
                kwargs["principal"] = profile.principal
                if profile.keytab:
                    kwargs["keytab"] = profile.keytab
            # gssapi_login makes max_retries attempts: with our 0 it would never try once.
            session.opts["max_retries"] = 1
            try:
                session.gssapi_login(**kwargs)
            finally:
                session.opts["max_retries"] = 0
    except koji.AuthError as exc:
        if _unreachable(exc):  # not a refusal: the hub never answered; retried as such
            raise requests.exceptions.ConnectionError(_one_line(exc)) from None
        raise LoginRefused(f"cannot log in to koji hub {profile.server} (profile {profile.name}, "
                           f"{method} auth): {_one_line(exc)}",
                           hint="check the credentials that profile names"
                                + (" (cert, serverca)" if use_ssl else " (kinit, principal, keytab)")
                           ) from None
    except koji.PythonImportError as exc:
        raise LoginRefused(f"cannot log in to koji hub {profile.server} (profile {profile.name}, "
                       f"{method} auth): {_one_line(exc)}",
                       hint="check the credentials that profile names"
                            + (" (cert, serverca)" if use_ssl else " (kinit, principal, keytab)")
                       ) from None
    log.info("logged in to koji hub %s (profile %s, %s auth)", profile.server, profile.name, method)


# ClientSession.ssl_login (koji 1.35) turns every exception of the sslLogin call, a refused
# connection included, into AuthError("unable to obtain a session (ssl auth failed: <class>:
# ...)"): these classes in it mean the hub was not reached, not that it said no.
_UNREACHED = ("requests.exceptions.ConnectionError", "requests.exceptions.ConnectTimeout",
              "requests.exceptions.ReadTimeout", "requests.exceptions.Timeout",
              "koji.ServerOffline")


def _unreachable(exc: BaseException) -> bool:
    return any(name in str(exc) for name in _UNREACHED)


def transient(exc: BaseException) -> bool:
    """Worth retrying: the hub is restarting, overloaded or briefly unreachable."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # certificate trouble does not heal by waiting
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        requests.exceptions.ChunkedEncodingError, koji.ServerOffline)):
        return True
    if isinstance(exc, requests.exceptions.HTTPError):
        return getattr(exc.response, "status_code", 0) in (502, 503, 504)
    return False


def never_sent(exc: BaseException) -> bool:
    """The request cannot have reached the hub (no connection was made): safe to send again."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", exc.args[0])
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


NOTHING_SUBMITTED = "nothing was submitted to koji; rerun the compose once the hub answers"
TASKS_KEPT = "koji keeps the tasks; rerun the compose to resume watching them"


def with_retries(call: Callable[[], T], what: str, profile: HubProfile, kcfg: KojiConfig, *,
                 retryable: Callable[[BaseException], bool] = transient,
                 deadline: float | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 hint: str = NOTHING_SUBMITTED) -> T:
    """`call()`, retried with exponential back-off on `retryable` errors, within the budget
    ([koji] retries, retry_backoff, retry_backoff_max) and before `deadline` (on `clock`).
    `hint` says what giving up leaves behind: TASKS_KEPT only once a task exists."""
    def retrying(exc: BaseException, attempt: int, delay: float) -> None:
        log.warning("koji hub %s: %s failed (%s); retry %d/%d in %.1fs", profile.server,
                    what, type(exc).__name__, attempt, kcfg.retries, delay)
        if on_retry:
            on_retry()

    def unreachable(exc: BaseException, attempts: int) -> HubError:
        return HubError(f"koji hub {profile.server} unreachable for {what} after "
                        f"{attempts} attempt(s): {_one_line(exc)}",
                        hint=hint)

    return retry.call(call, hub_policy(kcfg), transient=retryable, deadline=deadline, clock=clock,
                      sleep=sleep, on_retry=retrying, give_up=unreachable)


def hub_policy(kcfg: KojiConfig) -> retry.Policy:
    return retry.Policy(kcfg.retries, kcfg.retry_backoff, kcfg.retry_backoff_max)


def fault_text(exc: BaseException) -> str:
    """`ApplianceError: Image status is FAILED: ...` for a converted koji fault; for kojid's
    Fault 1 (a Python traceback), the traceback's last line: the exception that ended it."""
    if isinstance(exc, koji.GenericError):
        return f"{type(exc).__name__}: {_one_line(exc)}"
    if isinstance(exc, koji.xmlrpcplus.Fault):
        return f"kojid fault {exc.faultCode}: {_one_line(exc)}"
    return _one_line(exc)


def fault_from_result(result: Any) -> str:
    """A getTaskResult(raise_fault=False) fault dict, named by its koji error class."""
    fault = koji.xmlrpcplus.Fault(result["faultCode"], result["faultString"])
    return fault_text(koji.convertFault(fault))


def full_fault(result: Any) -> str:
    """The whole fault text of a getTaskResult(raise_fault=False) dict, real newlines."""
    return str(result.get("faultString", "")).replace("\\n", "\n")


TRACEBACK = "Traceback (most recent call last)"
MAX_LINE = 500


def _one_line(exc: BaseException) -> str:
    """One line for a person. A fault holding a traceback (kojid's Fault 1 for any non-koji
    exception, with real or escaped newlines) gives its last non-empty line, the cause."""
    raw = exc.faultString if isinstance(exc, koji.xmlrpcplus.Fault) else str(exc)
    raw = str(raw).replace("\\n", "\n")
    if TRACEBACK in raw:
        lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
        raw = lines[-1] if lines else raw
    text = " ".join(raw.split())
    return text[:MAX_LINE] + ("..." if len(text) > MAX_LINE else "")
