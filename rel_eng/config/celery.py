"""`[celery]`: the broker, queues and routes of distributed composes (rel_eng.distributed).

Nothing here imports Celery, so loading a config never pulls in the task queue. Routing rules
are validated at load time, so an unknown queue is reported with its file and key by
`rel-eng validate` and at start.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from rel_eng.builder_names import BUILDER_CLASSES  # the registry's table: a leaf, no backend
from rel_eng.config.problems import Problems
from rel_eng.config.table import NOTHING, Section, setting
from rel_eng.naming import ARCHES
from rel_eng.redact import check_urls, redact

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


def _routes(value: Any, problems: Problems, key: str, base_dir) -> Any:
    """[celery.routes] on top of the defaults: a route not named keeps its default queue."""
    if not isinstance(value, dict):
        problems.add(key, f"expected dict, got {type(value).__name__} {value!r}")
        return NOTHING
    merged = dict(DEFAULT_ROUTES)
    for route, queue in value.items():
        if not isinstance(queue, str):
            problems.add(f"{key}.{route}", f"expected a queue name, got {queue!r}")
            continue
        merged[route] = queue
    return tuple(sorted(merged.items()))


def _redis_url(url: str) -> str | None:
    if url and not url.startswith(URL_SCHEMES):
        return f"'{redact(url)}' is not a Redis URL (use {', '.join(s + '...' for s in URL_SCHEMES)})"
    return None


@dataclass(frozen=True)
class CelerySettings(Section):
    broker_url: str = setting(DEFAULT_URL, f"Redis URL of the broker ({ENV_BROKER} overrides it)",
                              valid=_redis_url)
    result_backend: str = setting("", f'"" = the broker\'s URL ({ENV_BACKEND} overrides it)',
                                  valid=_redis_url)
    # Longer than the longest build, or a healthy build gets a twin.
    visibility_timeout: int = setting(6 * 3600, "seconds before an unacknowledged task is handed "
                                      "to another worker", low=5, high=7 * 86400)
    queues: tuple[str, ...] = setting(DEFAULT_QUEUES, "the queues workers may serve")
    routes: tuple[tuple[str, str], ...] = setting(DEFAULT_ROUTES, "route key -> queue",
                                                  convert=_routes)
    max_retries: int = setting(3, "per task, after the first attempt", low=0, high=20)
    retry_backoff: int = setting(30, "s before the first retry; doubles each time", low=1, high=3600)
    retry_backoff_max: int = setting(600, "the longest wait between retries", low=1, high=86400)
    connect_timeout: int = setting(5, "s for one broker connect / round trip", low=1, high=120)

    @property
    def backend_url(self) -> str:
        return self.result_backend or self.broker_url

    def route_map(self) -> dict[str, str]:
        return dict(self.routes)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "routes": dict(self.routes)}

    def check(self, problems: Problems, where: str = "celery.") -> None:
        check_urls(problems, [(f"{where}{k}", getattr(self, k)) for k in ("broker_url", "result_backend")],
                   f"set {ENV_BROKER} / {ENV_BACKEND} in the environment of the workers and "
                   "submitters instead")
        # A retry is a message with an ETA held unacknowledged by a worker: waiting longer than
        # the visibility timeout would make the broker hand it out twice.
        if self.retry_backoff_max >= self.visibility_timeout:
            problems.add(f"{where}retry_backoff_max",
                         f"must be shorter than celery.visibility_timeout ({self.visibility_timeout}s)")
        for q in self.queues:
            if not QUEUE_NAME.match(q):
                problems.add(f"{where}queues", f"'{q}' is not a valid queue name (letters, digits, . _ -)")
        if len(set(self.queues)) != len(self.queues):
            problems.add(f"{where}queues", "lists a queue twice")
        for key, message in route_problems(self):
            problems.add(key, message)


def route_problems(s: CelerySettings) -> list[tuple[str, str]]:
    """(config key, message) for every route whose key or queue is unknown."""
    out = []
    known = ", ".join(s.queues)
    for key, queue in s.routes:
        parts = key.split(".")
        if parts[0] == "build" and len(parts) <= 3:
            if len(parts) >= 2 and parts[1] not in BUILDER_CLASSES and parts[1] != "koji":
                out.append((f"celery.routes.{key}", f"unknown builder '{parts[1]}' "
                            f"(known: {', '.join(sorted({*BUILDER_CLASSES, 'koji'}))})"))
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
