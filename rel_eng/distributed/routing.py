"""Which queue each task goes to: pure functions of the settings, the builder and the job.

Builds that run a VM locally (Oz, synthetic) go to the bare-metal host of their arch
(`oz.x86_64`, `oz.i686`); Koji builds only poll a hub and share the light `koji` queue.
Post-processing and finalize (metadata, publishing, staging) have their own queues so a build
host is never blocked behind an upload.
"""

from __future__ import annotations

from rel_eng.config.celery import CelerySettings
from rel_eng.errors import InputError
from rel_eng.plan import ImageJob


def build_queue(settings: CelerySettings, builder: str, job: ImageJob) -> str:
    routes = settings.route_map()
    for key in (f"build.{builder}.{job.arch}", f"build.{builder}", "build"):
        if key in routes:
            return routes[key].replace("$arch", job.arch)
    raise InputError(f"no [celery] route for builds with {builder} on {job.arch}")


def step_queue(settings: CelerySettings, step: str) -> str:
    """Queue of `process`, `boottest` or `finalize`."""
    return settings.route_map()[step]


def check_worker_queues(settings: CelerySettings, queues: list[str], source: str) -> list[str]:
    """The queues a worker was asked to serve, each one declared in [celery] queues."""
    unknown = [q for q in queues if q not in settings.queues]
    if unknown or not queues:
        raise InputError(
            f"--queues: unknown queue '{unknown[0]}'" if unknown else "--queues: no queue given",
            hint=f"queues declared in {source} [celery] queues: {', '.join(settings.queues)}")
    return list(dict.fromkeys(queues))
