"""The create step: the compose directory with its plan, config and per-image inputs."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from rel_eng import metadata
from rel_eng.compose.model import STARTED, Compose, Recorder
from rel_eng.config import Config
from rel_eng.errors import InputError
from rel_eng.atomic import atomic_write
from rel_eng.plan import DropPlan


def create(config: Config, plan: DropPlan, output: Path,
           inputs: dict[str, tuple[str, str]], recorder: Recorder | None = None) -> Compose:
    output.mkdir(parents=True, exist_ok=True)
    topdir = output / plan.compose_id
    try:
        topdir.mkdir()
    except FileExistsError:
        raise InputError(f"{output} already holds compose {plan.compose_id}",
                         hint="use another --output or let the respin count up") from None
    try:  # all or nothing: an error or a signal here leaves no half-made compose dir
        c = Compose(topdir, plan, config, recorder)
        atomic_write(topdir / "work" / "plan.json", json.dumps(plan.to_dict(), indent=2))
        atomic_write(topdir / "work" / "config.json", json.dumps(config.to_dict(), indent=2))
        for job in plan.images:
            ks_text, tdl_text = inputs[job.key]
            atomic_write(c.workdir(job.key) / f"{job.nvra}.ks", ks_text)
            atomic_write(c.workdir(job.key) / f"{job.nvra}.tdl", tdl_text)
        c.logdir.mkdir(parents=True, exist_ok=True)
        from rel_eng.compose import written

        written.record(c, [metadata.write_composeinfo(c.metadir, plan)])
        c.set_status(STARTED, c.recorder)
    except BaseException:
        shutil.rmtree(topdir, ignore_errors=True)
        raise
    return c


def epoch_of(plan: DropPlan) -> int:
    day = dt.datetime.strptime(plan.date, "%Y%m%d").replace(tzinfo=dt.timezone.utc)
    return int(day.timestamp())
