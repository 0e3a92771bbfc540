"""Test-only builders for the distributed tests, registered into rel_eng.builders.BUILDERS.

Loaded by the test process and by distributed_worker.py in each worker process; production code
knows nothing about them. Each writes one line per event to <topdir>/work/builds.log (O_APPEND
lines are atomic), so a test can prove how often each image was really built.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rel_eng import runner
from rel_eng.builders import BUILDERS
from rel_eng.builders.synthetic import PART_START_SECTOR, SyntheticBuilder, raw_path

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


class ReproducibleBuilder(SyntheticBuilder):
    """The synthetic builder with inode ctimes and atimes pinned to the compose date.

    mke2fs 1.47.0 `-d` copies each source file's ctime (the wall clock when the builder wrote
    it, which utime cannot set) and the directories' atime (updated as mke2fs reads them) into
    the image, so two synthetic builds of one job differ in those bytes. Pinning them
    makes the image depend on the job only, so local and distributed drops compare exactly.
    """

    name = "reproducible-synthetic"

    def wait(self, handles, timeout=None):
        outcomes = super().wait(handles)
        for o in outcomes:
            if o.ok:
                pin_ctimes(self._requests[o.job_key])
        return outcomes


def pin_ctimes(req) -> None:
    paths = ["/", "/etc", "/etc/os-release", "/etc/rel-eng", "/etc/rel-eng/manifest.json",
             "/NOT-BOOTABLE", "/root", "/root/anaconda-ks.cfg", f"/root/{req.job.nvra}.tdl"]
    script = req.workdir / "pin-ctimes.debugfs"
    # atime too: mke2fs reading a source directory updates that directory's atime.
    script.write_text("".join(f"sif {p} {field} @{req.epoch}\n"
                              for p in paths for field in ("ctime", "atime")))
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": str(req.epoch)}
    runner.run(["debugfs", "-w", "-f", str(script),
                f"{raw_path(req)}?offset={PART_START_SECTOR * 512}"], env=env)
    script.unlink()


class SlowBuilder(ReproducibleBuilder):
    """Takes a fixed time per image (like a VM install would)."""

    name = "slow-synthetic"

    def wait(self, handles, timeout=None):
        outcomes = []
        for handle in handles:
            req = self._requests[handle.job_key]
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
    for cls in (ReproducibleBuilder, SlowBuilder, BrokenBuilder):
        BUILDERS.setdefault(cls.name, cls)
