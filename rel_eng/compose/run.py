"""A whole compose in-process: allocate, check inputs, create, then every step of the pipeline
(rel_eng.pipeline) not yet done."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rel_eng import atomic, logfile, pipeline, runner
from rel_eng.builders import BUILDERS
from rel_eng.compose.allocate import allocate_and_create
from rel_eng.compose.finalize import failures
from rel_eng.compose.inputs import required_tools
from rel_eng.compose.model import DOOMED, STARTED, TERMINATED, Compose, ComposeDoomed, Recorder, Terminated
from rel_eng.compose.signals import terminate_on_signal
from rel_eng.config import Config
from rel_eng.errors import WriteFailed
from rel_eng.progress import Progress


def run_compose(config: Config, output: Path, release: str, milestone: str | None,
                date: dt.date, *, label: str | None = None, builder: str | None = None,
                mirror_root: Path | None = None, progress: Progress | None = None,
                recorder: Recorder | None = None) -> Compose:
    progress = progress or Progress(False)
    mirror_root = mirror_root or output / "mirror"
    with terminate_on_signal():
        # Every input checked before anything is written; the respin is allocated and the
        # compose dir created under the output dir's lock.
        c = allocate_and_create(
            config, output, release, milestone, date, label=label, builder=builder,
            mirror_root=mirror_root, recorder=recorder,
            check=lambda plan: _check_plan(config, plan))
        with logfile.attached(c.topdir), logfile.step("compose"):
            progress.note(f"compose {c.plan.compose_id} started in {c.topdir}")
            return resume(c, mirror_root, progress)


def children(c: Compose) -> Path:
    """Where the runner writes down this compose's running children (rel_eng.runner.reap)."""
    return c.topdir / "work" / "children"


def _check_plan(config: Config, plan) -> None:
    """What must hold before anything is written: the tools, and the builder's own preflight
    (koji: the target, the tag's arches, the package list)."""
    runner.require_all(required_tools(config, plan.builder))
    check = getattr(BUILDERS[plan.builder], "preflight", None)
    if check:
        check(plan, config)


def resume(c: Compose, mirror_root: Path, progress: Progress | None = None) -> Compose:
    """Run every step not yet done. A fresh compose and a crashed one go through the same path."""
    progress = progress or Progress(False)
    with terminate_on_signal(), logfile.attached(c.topdir), logfile.step("compose"):
        # A SIGKILLed run's children (a qemu-img still writing) die before anything is written.
        reaped = runner.reap(children(c))
        if reaped:
            progress.note(f"killed {len(reaped)} leftover process(es) of an interrupted run")
        with runner.recording(children(c)):
            return _resume(c, mirror_root, progress)


def run_steps(c: Compose, mirror_root: Path, progress: Progress) -> str:
    """The pipeline's steps in their declared order (rel_eng.pipeline): each per-image step over
    every image still in the running (the first over all), then the per-compose steps. The boot
    gate is one of them: after post-processing, before anything is published or staged."""
    everyone = [j.key for j in c.plan.images]
    for i, step in enumerate(pipeline.IMAGE_STEPS):
        failed = failures(c) if i else {}
        keys = [k for k in everyone if k not in failed]
        if keys:
            # The log names the step as the list declares it (a step may name its images inside).
            with logfile.step(step.name, keys[0] if len(keys) == 1 else logfile.NONE):
                logfile.file_only.info("%s: %s", step.name, ", ".join(keys))
                step(c, keys, progress)
    status = ""
    for step in pipeline.COMPOSE_STEPS:
        with logfile.step(step.name):
            logfile.file_only.info("%s of the compose", step.name)
            status = step(c, mirror_root, progress)
    return status


def sweep_leftovers(c: Compose, mirror_root: Path) -> list[Path]:
    """Temp files and staging dirs that killed runs (SIGKILL included) left behind: this
    host's by pid; in the mirror, another host's too, under the mirror's lock and only once
    older than any staging (atomic.FOREIGN_AFTER_S)."""
    from rel_eng.compose.locks import mirror_lock

    drop = mirror_root / c.plan.mirror_path
    swept = atomic.sweep(c.topdir)
    if not drop.parent.is_dir():
        return swept
    with mirror_lock(mirror_root):
        foreign = {"foreign_after_s": atomic.FOREIGN_AFTER_S}
        return [*swept, *atomic.sweep(drop.parent, recursive=False, **foreign),
                *atomic.sweep(drop, **foreign)]


def _resume(c: Compose, mirror_root: Path, progress: Progress) -> Compose:
    try:
        swept = sweep_leftovers(c, mirror_root)
        if swept:
            progress.note(f"removed {len(swept)} leftover(s) of interrupted runs")
        status = run_steps(c, mirror_root, progress)
    except (Terminated, KeyboardInterrupt):
        c.set_status(TERMINATED, c.recorder)
        raise
    except ComposeDoomed:
        raise
    except BaseException as exc:
        if c.read_status() == STARTED:
            try:
                c.set_status(DOOMED, c.recorder)
            except OSError:
                pass  # e.g. still no space even for STATUS: the first error is the one to show
        if isinstance(exc, OSError):  # files exist by now: a full disk is not bad input
            raise WriteFailed(exc) from exc
        raise
    progress.note(f"compose {c.plan.compose_id}: {status}")
    return c
