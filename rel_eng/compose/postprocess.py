"""The process step: one raw disk into its deliverables ([compose] outputs)."""

from __future__ import annotations

import dataclasses

from rel_eng import logfile
from rel_eng.compose.create import epoch_of
from rel_eng.compose.locks import step_lock
from rel_eng.compose.model import Compose, recorded
from rel_eng.errors import RelEngError
from rel_eng.manifest import Artifact
from rel_eng.pipeline import step_key
from rel_eng.process import ProcessOptions, process_image
from rel_eng.progress import Progress


def process(c: Compose, job_key: str, progress: Progress | None = None) -> list[Artifact]:
    """raw disk -> the job's outputs for one image; skipped when already done for this raw."""
    with step_lock(c.topdir, f"process:{job_key}"), logfile.step("process", job_key):  # the Celery task's lock too
        return _process(c, job_key, progress or Progress(False))


def process_step(c: Compose, keys: list[str], progress: Progress) -> dict[str, dict]:
    """The pipeline's process step over `keys`: {image: the files it made}."""
    return {key: {"job": key, "files": sorted(a.path for a in process(c, key, progress))}
            for key in keys}


def _raw(manifest, job_key: str) -> Artifact:
    raws = manifest.artifacts(job_key=job_key, kind="raw-disk")
    if not raws:
        raise RelEngError(f"{job_key}: no raw disk in the manifest; build it first")
    return raws[0]


def _options(c: Compose) -> ProcessOptions:
    return ProcessOptions(xz_preset=c.config.xz_preset,
                          qcow2_compression=c.config.qcow2_compression, epoch=epoch_of(c.plan))


def process_inputs(c: Compose, job_key: str) -> tuple:
    """What post-processing is keyed by (rel_eng.pipeline): the raw disk, options, outputs."""
    return (_raw(c.manifest, job_key), _options(c), [o.suffix for o in c.job(job_key).outputs])


def _process(c: Compose, job_key: str, progress: Progress) -> list[Artifact]:
    manifest = recorded(c, c.recorder)  # the deliverables and the step reach the store too
    raw = _raw(manifest, job_key)
    job = c.job(job_key)
    opts = _options(c)
    digest = step_key("process", raw, opts, [o.suffix for o in job.outputs])
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
