"""Test-only builders for the distributed tests, registered into rel_eng.builders.BUILDERS.

Loaded by the test process and by distributed_worker.py in each worker process; production code
knows nothing about them. Each writes one line per event to <topdir>/work/builds.log (O_APPEND
lines are atomic), so a test can prove how often each image was really built.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rel_eng.builders import BUILDERS
from rel_eng.builders.synthetic import SyntheticBuilder

BUILD_SECONDS_ENV = "REL_ENG_TEST_BUILD_SECONDS"


def log_event(topdir: Path, event: str, key: str) -> None:
    line = f"{event} {key} pgid={os.getpgid(0)} pid={os.getpid()}\n"
    fd = os.open(topdir / "work" / "builds.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_events(topdir: Path) -> list[tuple[str, str, int]]:
    """(event, job key, process group) per logged line."""
    path = topdir / "work" / "builds.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        event, key, pgid, _ = line.split()
        out.append((event, key, int(pgid.split("=")[1])))
    return out


class SlowBuilder(SyntheticBuilder):
    """Takes a fixed time per image (like a VM install would)."""

    name = "slow-synthetic"

    def submit(self, requests):
        self.requests = {r.job.key: r for r in requests}  # its own record, not the base's
        return super().submit(requests)

    def wait(self, handles, timeout=None):
        outcomes = []
        for handle in handles:
            req = self.requests[handle.job_key]
            log_event(req.topdir, "start", handle.job_key)
            time.sleep(float(os.environ.get(BUILD_SECONDS_ENV, "2")))
            outcomes += super().wait([handle])
            log_event(req.topdir, "done", handle.job_key)
        return outcomes


class BrokenBuilder(SyntheticBuilder):
    """Fails every time with an exception (not a build outcome): a host that cannot build."""

    name = "broken"

    def submit(self, requests):
        for req in requests:
            log_event(req.topdir, "attempt", req.job.key)
        raise OSError("simulated: cannot connect to libvirt at qemu:///system")


def register() -> None:
    for cls in (SlowBuilder, BrokenBuilder):
        BUILDERS.setdefault(cls.name, cls)
