"""A test backend that "builds" each job by copying a Debian test appliance disk (really
bootable), so a compose's boot gate boots real guests. Which appliance each job gets is set
per job key in APPLIANCES before the compose runs, or, in a Celery worker process, in the
environment (APPLIANCES_ENV: a JSON object of job key -> disk path)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rel_eng import runner
from rel_eng.builders.base import BuildOutcome
from rel_eng.builders.synthetic import SyntheticBuilder, raw_path
from rel_eng.digest import raw_digest
from rel_eng.manifest import Artifact

APPLIANCES: dict[str, Path] = {}
APPLIANCES_ENV = "REL_ENG_TEST_APPLIANCES"


def appliance_for(job_key: str) -> Path:
    if job_key in APPLIANCES:
        return APPLIANCES[job_key]
    return Path(json.loads(os.environ.get(APPLIANCES_ENV, "{}"))[job_key])


class ApplianceBuilder(SyntheticBuilder):
    name = "appliance"
    tools = ("qemu-img",)

    def submit(self, requests):
        self.requests = {r.job.key: r for r in requests}  # its own record, not the base's
        return super().submit(requests)

    def wait(self, handles, timeout=None):
        outcomes = []
        for handle in handles:
            req = self.requests[handle.job_key]
            src = appliance_for(handle.job_key)
            dest = raw_path(req)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fmt = "qcow2" if src.suffix == ".qcow2" else "raw"
            runner.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", src, dest])
            outcomes.append(BuildOutcome(handle.job_key, True))
        return outcomes

    def collect(self, handle, request):
        raw = raw_path(request)
        # handed over with its digest
        return [Artifact.raw_disk(request.job, raw, request.topdir, raw_digest(raw), bootable=True)]
