"""The process step: one raw disk into its deliverables ([compose] outputs)."""

from __future__ import annotations

import dataclasses

from rel_eng import logfile
from rel_eng.compose.create import epoch_of
from rel_eng.compose.locks import step_lock
from rel_eng.compose.model import Compose
from rel_eng.errors import RelEngError
from rel_eng.manifest import Artifact, step_digest
from rel_eng.process import ProcessOptions, process_image
from rel_eng.progress import Progress


def process(c: Compose, job_key: str, progress: Progress | None = None) -> list[Artifact]:
    """raw disk -> the job's outputs for one image; skipped when already done for this raw."""
    with step_lock(c.topdir, f"process:{job_key}"), logfile.step("process", job_key):  # the Celery task's lock too
        return _process(c, job_key, progress or Progress(False))


def _process(c: Compose, job_key: str, progress: Progress) -> list[Artifact]:
    manifest = c.manifest
    raws = manifest.artifacts(job_key=job_key, kind="raw-disk")
    if not raws:
        raise RelEngError(f"{job_key}: no raw disk in the manifest; build it first")
    raw = raws[0]
    job = c.job(job_key)
    opts = ProcessOptions(xz_preset=c.config.xz_preset,
                          qcow2_compression=c.config.qcow2_compression, epoch=epoch_of(c.plan))
    digest = step_digest("process", raw, opts, [o.suffix for o in job.outputs])
    done = [a for a in manifest.artifacts(job_key=job_key, intent="deliverable")
            if (c.topdir / a.path).is_file()]
    if manifest.step_done(f"process:{job_key}", digest) and len(done) == len(c.job(job_key).outputs):
        return done
    with progress.step(f"post-processing {job.nvra}"):
        arts = process_image(c.topdir / raw.path, job, c.images_dir(job.arch), c.topdir, opts,
                             raw_sha256=raw.sha256)
    arts = [dataclasses.replace(a, bootable=raw.bootable) for a in arts]
    manifest.add_artifacts(arts)
    manifest.set_step(f"process:{job_key}", digest, "done")
    return arts
