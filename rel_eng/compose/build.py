"""The build step: submit, watch (or re-watch recorded builds) and collect raw disks."""

from __future__ import annotations

from rel_eng import logfile
from rel_eng.builders import BUILDERS, BuildHandle, BuildOutcome, BuildRequest
from rel_eng.compose.create import epoch_of
from rel_eng.compose.locks import step_locks
from rel_eng.compose.model import Compose, recorded
from rel_eng.compose.signals import cancel_on_signal
from rel_eng.pipeline import step_key
from rel_eng.progress import Progress


def build_request(c: Compose, job_key: str) -> BuildRequest:
    job = c.job(job_key)
    wd = c.workdir(job_key)
    return BuildRequest(compose_id=c.plan.compose_id, job=job, kickstart=wd / f"{job.nvra}.ks",
                        tdl=wd / f"{job.nvra}.tdl", workdir=wd, logdir=c.logdir / job_key,
                        topdir=c.topdir, epoch=epoch_of(c.plan), weekly=c.plan.weekly)


def build_inputs(c: Compose, job_key: str) -> tuple:
    """What an image's build is keyed by (rel_eng.pipeline): builder, compose, job, inputs."""
    return _inputs(c, build_request(c, job_key))


def _inputs(c: Compose, req: BuildRequest) -> tuple:
    return (c.plan.builder, c.plan.compose_id, req.job, req.kickstart.read_text(),
            req.tdl.read_text())


def _build_digest(c: Compose, req: BuildRequest) -> str:
    return step_key("build", *_inputs(c, req))


def build_step(c: Compose, keys: list[str], progress: Progress) -> dict[str, dict]:
    """The pipeline's build step over `keys`: {image: result}, each failure noted in the log."""
    outcomes = build(c, keys, progress=progress)
    for key, outcome in sorted(outcomes.items()):
        if not outcome.ok:
            with logfile.step("build", key):
                progress.note(f"build failed: {key}: {outcome.reason}"
                              + (" (optional arch, compose goes on)" if c.job(key).optional else ""))
    # The same value however often it runs: Celery keys chord parts by task id and result.
    return {k: {"job": k, "ok": o.ok, **({} if o.ok else {"reason": o.reason})}
            for k, o in outcomes.items()}


def build(c: Compose, job_keys: list[str] | None = None, progress: Progress | None = None,
          builder_factory=None) -> dict[str, BuildOutcome]:
    """Build images not built yet; returns outcomes for every requested image.

    Builds a resumable builder (Koji) already started for the same inputs are watched again
    from their recorded ids instead of being submitted a second time.
    """
    keys = job_keys or [j.key for j in c.plan.images]
    # The same per-step locks as the Celery tasks: two runs of one compose never build one
    # image at once, and the second finds the first's builds recorded done.
    with step_locks(c.topdir, [f"build:{k}" for k in keys]), \
            logfile.step("build", keys[0] if len(keys) == 1 else logfile.NONE):
        return _build(c, keys, progress or Progress(False), builder_factory)


def _build(c: Compose, keys: list[str], progress: Progress, builder_factory) -> dict[str, BuildOutcome]:
    manifest = recorded(c, c.recorder)  # builder ids, raw disks and steps reach the store too
    requests, outcomes = [], {}
    for key in keys:
        req = build_request(c, key)
        digest = _build_digest(c, req)
        if manifest.step_done(f"build:{key}", digest) and manifest.artifacts(job_key=key, kind="raw-disk"):
            outcomes[key] = BuildOutcome(key, True, "already built")
        else:
            requests.append((req, digest))
    if not requests:
        return outcomes
    by_key = {r.job.key: (r, d) for r, d in requests}
    live: list[BuildHandle] = []  # everything cancel may stop, filled the moment ids exist

    def record(handle: BuildHandle) -> None:
        live.append(handle)
        manifest.set_build(handle.job_key, builder=c.plan.builder, external_id=handle.external_id,
                           digest=by_key[handle.job_key][1], data=handle.data)

    factory = builder_factory or BUILDERS[c.plan.builder]
    builder = factory(c.config, on_submitted=record)
    resumed = _resumable_handles(c, builder, by_key) if getattr(builder, "resumable", False) else []
    live.extend(resumed)
    fresh = [r for r, _ in requests if r.job.key not in {h.job_key for h in resumed}]
    with cancel_on_signal(builder, lambda: list(live), progress):
        with progress.step(f"building {len(requests)} image(s) with {c.plan.builder}"
                           + (f" ({len(resumed)} resumed)" if resumed else "")):
            handles = resumed + (builder.submit(fresh) if fresh else [])
            results = {o.job_key: o for o in builder.wait(handles)}
    for handle in handles:
        req, digest = by_key[handle.job_key]
        outcome = results[handle.job_key]
        with logfile.step("build", handle.job_key):
            if outcome.ok:
                manifest.add_artifacts(builder.collect(handle, req))
                manifest.set_step(f"build:{handle.job_key}", digest, "done")
                logfile.file_only.info("built (%s %s)", c.plan.builder, handle.external_id)
            else:
                manifest.set_step(f"build:{handle.job_key}", digest, "failed", outcome.reason)
                logfile.file_only.error("build failed (%s %s): %s", c.plan.builder,
                                        handle.external_id, outcome.reason)
        outcomes[handle.job_key] = outcome
    return outcomes


def _resumable_handles(c: Compose, builder, by_key: dict) -> list[BuildHandle]:
    """Handles recorded by an earlier run for these very inputs, whose build has not failed."""
    steps = c.manifest.read()["steps"]
    handles = []
    for key, rec in c.manifest.builds().items():
        if key not in by_key or rec.get("builder") != c.plan.builder or not rec.get("external_id"):
            continue
        digest = by_key[key][1]
        step = steps.get(f"build:{key}", {})
        if rec.get("digest") != digest or (step.get("state") == "failed" and step.get("digest") == digest):
            continue  # other inputs, or a failure to retry with a fresh build
        handles.append(BuildHandle(key, rec["external_id"], dict(rec.get("data", {}))))
    cancelled = getattr(builder, "cancelled", None)  # a TERMINATED compose's cancelled builds
    gone = cancelled(handles) if cancelled and handles else set()
    return [h for h in handles if h.job_key not in gone]  # ... are submitted afresh
