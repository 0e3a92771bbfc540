"""Respin and label allocation: the next compose id and label past what already exists."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from rel_eng import naming
from rel_eng.config import Config
from rel_eng.errors import InputError
from rel_eng.compose.taken import TakenNames, past_taken
from rel_eng.plan import DropPlan, plan_drop


def existing_plans(output: Path) -> list[DropPlan]:
    plans = []
    if output.is_dir():
        for p in sorted(output.glob("*/work/plan.json")):
            try:
                plans.append(DropPlan.from_dict(json.loads(p.read_text())))
            except (ValueError, KeyError, TypeError):
                continue  # not ours, or damaged: it cannot collide by name anyway
    return plans


def allocate(config: Config, output: Path, release: str, milestone: str | None,
             date: dt.date, label: str | None = None, builder: str | None = None,
             taken: TakenNames | None = None) -> DropPlan:
    """Plan the next respin: compose id respin and label minor count up past what `output` holds,
    then past what the compose store and the Koji hub say is taken (`taken`)."""
    first = plan_drop(config, release, milestone=milestone, date=date, builder=builder)
    siblings = [p for p in existing_plans(output) if p.release_key == first.release_key]
    same_day = [p for p in siblings if p.date == first.date and p.compose_type == first.compose_type]
    respin = max((p.respin + 1 for p in same_day), default=0)
    minor = 1
    if milestone:
        same_stone = [p for p in siblings if p.milestone == milestone and p.label]
        minor = max((int(p.label.rsplit(".", 1)[1]) + 1 for p in same_stone), default=1)
        if label is not None:
            m = naming.LABEL_RE.match(label)
            if not m or m.group(1) != naming.LABEL_NAMES[milestone]:
                raise InputError(f"label '{label}' does not fit milestone {milestone}",
                                 hint=f"use {naming.LABEL_NAMES[milestone]}-1.N")
            minor = int(m.group(3))
            taken = [p.compose_id for p in same_stone if p.label == label]
            if taken:
                raise InputError(f"{output} already holds compose {taken[0]} with label {label}",
                                 hint="omit --label to get the next respin")
    plan = plan_drop(config, release, milestone=milestone, date=date, respin=respin,
                     label_minor=minor, builder=builder)
    return past_taken(config, plan, taken or TakenNames(config, output),
                      label_fixed=label is not None)
