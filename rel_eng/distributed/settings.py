"""The `[celery]` table of the pipeline config, parsed into a frozen CelerySettings.

Imports nothing from rel_eng.config (config.py imports this module) and nothing from Celery, so
loading a config never pulls in the task queue. Routing rules are validated here, at load time,
so an unknown queue is reported with its file and key by `rel-eng validate` and at start.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from rel_eng.builders import BUILDERS  # the lazy registry: names only, no backend imported
from rel_eng.naming import ARCHES
from rel_eng.redact import check_urls, redact  # noqa: F401 (redact: used by importers)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
URL_SCHEMES = ("redis://", "rediss://", "unix://")
ENV_BROKER = "REL_ENG_BROKER_URL"
ENV_BACKEND = "REL_ENG_RESULT_BACKEND"

DEFAULT_QUEUES = ("oz.x86_64", "oz.i686", "koji", "process", "boottest", "publish")
# Route key -> queue; "$arch" is the image's arch. A build looks up build.<builder>.<arch>,
# then build.<builder>, then build. Builds on a local VM need the bare-metal host of their
# arch; Koji builds only poll a hub, so they share one light queue.
DEFAULT_ROUTES = (  # sorted by key, as parse and from_dict keep them
    ("boottest", "boottest"),  # boot tests want hosts with a hardware KVM
    ("build", "oz.$arch"),
    ("build.koji", "koji"),
    ("finalize", "publish"),
    ("process", "process"),
)
STEPS = ("process", "boottest", "finalize")
QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class CelerySettings:
    broker_url: str = DEFAULT_URL
    result_backend: str = ""  # "" = the broker's URL
    # Seconds before an unacknowledged task is handed to another worker. Longer than the
    # longest build, or a healthy build gets a twin.
    visibility_timeout: int = 6 * 3600
    queues: tuple[str, ...] = DEFAULT_QUEUES
    routes: tuple[tuple[str, str], ...] = DEFAULT_ROUTES
    max_retries: int = 3  # per task, after the first attempt
    retry_backoff: int = 30  # s before the first retry; doubles each time
    retry_backoff_max: int = 600
    connect_timeout: int = 5  # s for one broker connect / round trip

    @property
    def backend_url(self) -> str:
        return self.result_backend or self.broker_url

    def route_map(self) -> dict[str, str]:
        return dict(self.routes)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "routes": dict(self.routes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CelerySettings":
        routes = data.get("routes", dict(DEFAULT_ROUTES))
        return cls(**{**data, "queues": tuple(data.get("queues", DEFAULT_QUEUES)),
                      "routes": tuple(sorted(dict(routes).items()))})


class ProblemSink(Protocol):
    """What rel_eng.config._Problems offers."""

    def add(self, key: str, message: str) -> None: ...

    def take(self, table: dict, key: str, kind: type | tuple, default: Any, where: str) -> Any: ...

    def unknown(self, table: dict, allowed: set[str], where: str) -> None: ...


def parse_celery(table: Any, problems: ProblemSink) -> CelerySettings:
    """Parse `[celery]`; every problem goes to `problems` as `celery.<key>: ...`."""
    base = CelerySettings()
    if not isinstance(table, dict):
        problems.add("celery", "expected a table")
        return base
    fields = {f.name for f in dataclasses.fields(CelerySettings)}
    problems.unknown(table, fields, "celery.")
    values: dict[str, Any] = {}
    for key in ("broker_url", "result_backend"):
        values[key] = problems.take(table, key, str, getattr(base, key), "celery.")
    for key in ("visibility_timeout", "max_retries", "retry_backoff", "retry_backoff_max",
                "connect_timeout"):
        values[key] = problems.take(table, key, int, getattr(base, key), "celery.")
    queues = problems.take(table, "queues", list, list(base.queues), "celery.")
    if not all(isinstance(q, str) for q in queues):
        problems.add("celery.queues", "expected a list of queue names (strings)")
        queues = list(base.queues)
    values["queues"] = tuple(queues)
    routes = problems.take(table, "routes", dict, {}, "celery.")
    merged = dict(DEFAULT_ROUTES)
    for key, queue in routes.items():
        if not isinstance(queue, str):
            problems.add(f"celery.routes.{key}", f"expected a queue name, got {queue!r}")
            continue
        merged[key] = queue
    values["routes"] = tuple(sorted(merged.items()))
    check_urls(problems, [(f"celery.{k}", values[k]) for k in ("broker_url", "result_backend")],
               f"set {ENV_BROKER} / {ENV_BACKEND} in the environment of the workers and "
               "submitters instead")
    settings = dataclasses.replace(base, **values)
    check_celery(settings, problems)
    return settings


def check_celery(s: CelerySettings, problems: ProblemSink) -> None:
    for key in ("broker_url", "result_backend"):
        url = getattr(s, key)
        if url and not url.startswith(URL_SCHEMES):
            problems.add(f"celery.{key}", f"'{redact(url)}' is not a Redis URL "
                                          f"(use {', '.join(s + '...' for s in URL_SCHEMES)})")
    ranges = {"visibility_timeout": (5, 7 * 86400), "max_retries": (0, 20),
              "retry_backoff": (1, 3600), "retry_backoff_max": (1, 86400),
              "connect_timeout": (1, 120)}
    for key, (low, high) in ranges.items():
        value = getattr(s, key)
        if not low <= value <= high:
            problems.add(f"celery.{key}", f"must be {low}..{high}, got {value}")
    # A retry is a message with an ETA held unacknowledged by a worker: waiting longer than
    # the visibility timeout would make the broker hand it out twice.
    if s.retry_backoff_max >= s.visibility_timeout:
        problems.add("celery.retry_backoff_max",
                     f"must be shorter than celery.visibility_timeout ({s.visibility_timeout}s)")
    for q in s.queues:
        if not QUEUE_NAME.match(q):
            problems.add("celery.queues", f"'{q}' is not a valid queue name (letters, digits, . _ -)")
    if len(set(s.queues)) != len(s.queues):
        problems.add("celery.queues", "lists a queue twice")
    for key, message in route_problems(s):
        problems.add(key, message)


def route_problems(s: CelerySettings) -> list[tuple[str, str]]:
    """(config key, message) for every route whose key or queue is unknown."""
    out = []
    known = ", ".join(s.queues)
    for key, queue in s.routes:
        parts = key.split(".")
        if parts[0] == "build" and len(parts) <= 3:
            if len(parts) >= 2 and parts[1] not in BUILDERS and parts[1] != "koji":
                out.append((f"celery.routes.{key}", f"unknown builder '{parts[1]}' "
                            f"(known: {', '.join(sorted({*BUILDERS, 'koji'}))})"))
            if len(parts) == 3 and parts[2] not in ARCHES:
                out.append((f"celery.routes.{key}", f"unknown arch '{parts[2]}' "
                            f"(use {', '.join(ARCHES)})"))
            arches = [parts[2]] if len(parts) == 3 else ARCHES
        elif key in STEPS:
            arches = ("",)
            if "$arch" in queue:
                out.append((f"celery.routes.{key}", "$arch only applies to build routes"))
                continue
        else:
            out.append((f"celery.routes.{key}", "unknown route (use build, build.<builder>, "
                        "build.<builder>.<arch>, process, boottest or finalize)"))
            continue
        for arch in arches:
            name = queue.replace("$arch", arch)
            if name not in s.queues:
                out.append((f"celery.routes.{key}", f"unknown queue '{name}' "
                            f"(declared in celery.queues: {known})"))
                break
    return out


def effective(s: CelerySettings, environ: Mapping[str, str] | None = None) -> CelerySettings:
    """The settings with the environment's overrides applied (containers set URLs this way)."""
    env = os.environ if environ is None else environ
    changes = {}
    if env.get(ENV_BROKER):
        changes["broker_url"] = env[ENV_BROKER]
    if env.get(ENV_BACKEND):
        changes["result_backend"] = env[ENV_BACKEND]
    return dataclasses.replace(s, **changes) if changes else s


def origin(key: str, source: str, environ: Mapping[str, str] | None = None) -> str:
    """Where a URL setting came from, for error messages."""
    env = os.environ if environ is None else environ
    var = {"broker_url": ENV_BROKER, "result_backend": ENV_BACKEND}[key]
    if env.get(var):
        return f"environment variable {var}"
    return f"{source}: celery.{key}"
