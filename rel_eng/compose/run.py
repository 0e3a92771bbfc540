"""A whole compose in-process: allocate, check inputs, create, then every step not yet done."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rel_eng import runner
from rel_eng.compose.allocate import allocate
from rel_eng.compose.boot_gate import run_gate
from rel_eng.compose.build import build
from rel_eng.compose.create import create
from rel_eng.compose.finalize import finalize
from rel_eng.compose.inputs import prepare_inputs, required_tools
from rel_eng.compose.model import DOOMED, STARTED, TERMINATED, Compose, ComposeDoomed, Recorder, Terminated
from rel_eng.compose.postprocess import process
from rel_eng.config import Config
from rel_eng.progress import Progress


def run_compose(config: Config, output: Path, release: str, milestone: str | None,
                date: dt.date, *, label: str | None = None, builder: str | None = None,
                mirror_root: Path | None = None, progress: Progress | None = None,
                recorder: Recorder | None = None) -> Compose:
    progress = progress or Progress(False)
    plan = allocate(config, output, release, milestone, date, label=label, builder=builder)
    runner.require_all(required_tools(config, plan.builder))
    inputs = prepare_inputs(config, plan)  # every input checked before anything is written
    c = create(config, plan, output, inputs, recorder)
    progress.note(f"compose {plan.compose_id} started in {c.topdir}")
    return resume(c, mirror_root or output / "mirror", progress)


def resume(c: Compose, mirror_root: Path, progress: Progress | None = None) -> Compose:
    """Run every step not yet done. A fresh compose and a crashed one go through the same path."""
    progress = progress or Progress(False)
    try:
        outcomes = build(c, progress=progress)
        for key, outcome in sorted(outcomes.items()):
            if outcome.ok:
                process(c, key, progress)
            else:
                progress.note(f"build failed: {key}: {outcome.reason}"
                              + (" (optional arch, compose goes on)" if c.job(key).optional else ""))
        # The boot gate: after post-processing, before anything is published or staged.
        run_gate(c, [k for k, o in sorted(outcomes.items()) if o.ok], progress)
        status = finalize(c, mirror_root, progress)
    except (Terminated, KeyboardInterrupt):
        c.set_status(TERMINATED)
        raise
    except ComposeDoomed:
        raise
    except BaseException:
        if c.status == STARTED:
            c.set_status(DOOMED)
        raise
    progress.note(f"compose {c.plan.compose_id}: {status}")
    return c
