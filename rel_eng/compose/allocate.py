"""Respin and label allocation: the next compose id and label past everything already taken.

"Taken" comes from several places, each a `TakenSource` (plan -> Taken): the composes in the
output dir, and what the mirror already holds (staged milestone dirs like
alt/stage/19_Alpha-1.1, weekly drops named by compose id). Another source (e.g. a build system's
existing NVRs) is one more function in `sources`. `allocate_and_create` runs allocation and the
creation of the compose dir under one lock per output dir, so two composes started at the same
moment get consecutive respins, and under the mirror's lock, where each allocation is
reserved until staged (reserve.py), so two output dirs sharing one mirror never take one label.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from rel_eng import naming
from rel_eng.config import Config
from rel_eng.errors import InputError
from rel_eng.compose import reserve
from rel_eng.compose.taken import TakenNames, past_taken
from rel_eng.plan import DropPlan, load_plan, plan_drop


@dataclass(frozen=True)
class Taken:
    """What one source says is in use for a drop's release."""

    compose_ids: frozenset[str] = field(default_factory=frozenset)
    labels: Mapping[str, str] = field(default_factory=dict)  # e.g. Alpha-1.2 -> who holds it

    def __or__(self, other: "Taken") -> "Taken":
        return Taken(self.compose_ids | other.compose_ids, {**other.labels, **self.labels})


TakenSource = Callable[[DropPlan], Taken]


def parse_label(label: str, milestone: str | None) -> tuple[int, int]:
    """`Alpha-2.1` -> (2, 1) for milestone Alpha; anything else is refused with one line."""
    if milestone is None:
        raise InputError(f"--label {label!r}: a weekly compose has no label",
                         hint="drop --label, or use --milestone")
    name = naming.LABEL_NAMES[milestone]
    m = naming.LABEL_RE.fullmatch(label)
    if not m:
        raise InputError(f"--label {label!r} is not a label of the form {name}-MAJOR.MINOR",
                         hint=f"e.g. {name}-1.1; numbers from 1, no leading zeros")
    if m.group(1) != name:
        raise InputError(f"--label {label!r} does not fit milestone {milestone}",
                         hint=f"milestone {milestone} takes {name}-MAJOR.MINOR labels")
    return int(m.group(2)), int(m.group(3))


def existing_plans(output: Path) -> list[DropPlan]:
    plans = []
    if output.is_dir():
        for p in sorted(output.glob("*/work/plan.json")):
            try:
                plans.append(load_plan(p.parent.parent))
            except InputError:
                continue  # not ours, or damaged: it cannot collide by name anyway
    return plans


def taken_in_output(output: Path) -> TakenSource:
    def source(first: DropPlan) -> Taken:
        ids, labels = set(), {}
        for p in existing_plans(output):
            if p.release_key != first.release_key:
                continue
            ids.add(p.compose_id)
            if p.label and p.milestone == first.milestone:
                labels.setdefault(p.label, f"{output} already holds compose {p.compose_id}")
        # A compose dir whose plan is missing or damaged still holds its id.
        if output.is_dir():
            ids.update(d.name for d in output.iterdir() if d.is_dir())
        return Taken(frozenset(ids), labels)
    return source


def taken_in_mirror(mirror_root: Path) -> TakenSource:
    """What the mirror holds, and what composes of other output dirs have reserved in it."""
    def source(first: DropPlan) -> Taken:
        ids, labels = set(), {}
        version = first.release_version
        names = []  # (name in the drop's parent dir, who holds it)
        parent = Path(first.mirror_path).parent
        if (mirror_root / parent).is_dir():
            names += [(d.name, f"the mirror already holds {d}")
                      for d in (mirror_root / parent).iterdir() if not d.name.startswith(".")]
        for path, rec in reserve.reservations(mirror_root).items():
            if Path(path).parent == parent:
                names.append((Path(path).name, f"compose {rec.get('compose_id', '?')} "
                                               f"({rec.get('topdir', '?')}) reserved "
                                               f"{mirror_root / path}"))
        for name, who in names:
            if not first.milestone:
                ids.add(name)
            elif name.startswith(f"{version}_") and naming.LABEL_RE.fullmatch(name[len(version) + 1:]):
                # 19_Alpha-1.1; Final stages as 19_RC-1.1
                labels.setdefault(name[len(version) + 1:], who)
        return Taken(frozenset(ids), labels)
    return source


def _respin_of(compose_id: str, first: DropPlan) -> int | None:
    """The respin of `compose_id` when it is `first`'s id with another respin, else None."""
    stem = first.compose_id.rsplit(".", 1)[0] + "."
    rest = compose_id[len(stem):] if compose_id.startswith(stem) else ""
    return int(rest) if rest.isascii() and rest.isdigit() else None


def _label_numbers(labels: Mapping[str, str], name: str) -> list[tuple[int, int]]:
    out = []
    for label in labels:
        m = naming.LABEL_RE.fullmatch(label)
        if m and m.group(1) == name:
            out.append((int(m.group(2)), int(m.group(3))))
    return out


def allocate(config: Config, output: Path, release: str, milestone: str | None,
             date: dt.date, label: str | None = None, builder: str | None = None,
             mirror_root: Path | None = None,
             sources: list[TakenSource] | None = None,
             taken_names: TakenNames | None = None) -> DropPlan:
    """Plan the next respin: compose id respin and label count up past everything taken.

    `sources` defaults to the output dir and the mirror (`mirror_root`, default output/mirror);
    then the plan counts on past what the compose store and the Koji hub say is taken
    (`taken_names`, see rel_eng.compose.taken).
    """
    wanted = parse_label(label, milestone) if label is not None else None
    first = plan_drop(config, release, milestone=milestone, date=date, builder=builder)
    if sources is None:
        sources = [taken_in_output(output), taken_in_mirror(mirror_root or output / "mirror")]
    taken = Taken()
    for source in sources:
        taken = taken | source(first)
    respins = [r for r in (_respin_of(cid, first) for cid in taken.compose_ids) if r is not None]
    respin = max(respins, default=-1) + 1
    major, minor = 1, 1
    if milestone:
        name = naming.LABEL_NAMES[milestone]
        numbers = _label_numbers(taken.labels, name)
        if wanted is not None:
            major, minor = wanted
            clash = f"{name}-{major}.{minor}"
            if clash in taken.labels:
                raise InputError(f"{taken.labels[clash]} with label {clash}",
                                 hint="omit --label to get the next respin")
        elif numbers:
            major = max(numbers)[0]
            minor = max(n for j, n in numbers if j == major) + 1
    plan = plan_drop(config, release, milestone=milestone, date=date, respin=respin,
                     label_minor=minor, label_major=major, builder=builder)
    return past_taken(config, plan, taken_names or TakenNames(config, output),
                      label_fixed=wanted is not None)


def allocate_and_create(config: Config, output: Path, release: str, milestone: str | None,
                        date: dt.date, *, label: str | None = None, builder: str | None = None,
                        mirror_root: Path | None = None, recorder=None,
                        check: Callable[[DropPlan], None] | None = None):
    """Allocate the next respin and create its compose dir, under the output dir's lock.

    Every input is checked first, without the lock and before anything is written (`check`
    adds the caller's own checks of the plan). Under the lock the allocation is redone, so a
    compose created meanwhile is counted, and the dir is created before the lock is released.
    """
    from rel_eng.compose.create import create
    from rel_eng.compose.inputs import prepare_inputs
    from rel_eng.compose.locks import allocation_lock, mirror_lock

    def plan_and_inputs():
        plan = allocate(config, output, release, milestone, date, label=label, builder=builder,
                        mirror_root=mirror_root)
        if check is not None:
            check(plan)
        return plan, prepare_inputs(config, plan)

    plan, inputs = plan_and_inputs()
    mirror = mirror_root or output / "mirror"
    # Always the output dir's lock first, then the mirror's: no two runs wait on each other.
    with allocation_lock(output), mirror_lock(mirror):
        again = allocate(config, output, release, milestone, date, label=label, builder=builder,
                         mirror_root=mirror_root)
        if again != plan:
            plan, inputs = plan_and_inputs()
        c = create(config, plan, output, inputs, recorder)
        reserve.reserve(mirror, plan.mirror_path, plan.compose_id, c.topdir)
        return c
