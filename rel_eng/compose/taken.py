"""Names used elsewhere, which allocation counts past besides what `--output` holds.

  - the compose store ([store]; hosts sharing one store see each other): compose ids, and
    milestone labels;
  - the Koji hub (koji builder): the non-scratch NVRs the drop would build (getBuild). NVRs are
    unique per hub, and kojid fails a build whose NVR exists only after the task was queued.

`notes` says what was skipped and why, for `rel-eng plan`.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from rel_eng.config import Config
from rel_eng.errors import InputError, RelEngError
from rel_eng.plan import DropPlan, plan_drop

log = logging.getLogger(__name__)
LIMIT = 100  # respins past what is taken before giving up


class TakenNames:
    def __init__(self, config: Config, output: Path, *, strict: bool = True):
        self.config = config
        self.output = output
        self.strict = strict  # False (rel-eng plan): an unreachable source is noted, not fatal
        self.notes: list[str] = []
        self._hub = None

    def _unchecked(self, what: str, exc: RelEngError) -> None:
        if self.strict:
            raise exc
        self.notes.append(f"{what} not checked: {exc}")

    def collisions(self, plan: DropPlan) -> tuple[str, str]:
        """(why the compose id is taken, why the release is taken); "" where free."""
        cid_why = rel_why = ""
        if self.config.store.enabled:
            from rel_eng.store.taken import taken_in_store  # late: SQLAlchemy only when used

            url = self.config.store.url_for(self.output)
            try:
                found = taken_in_store(url, plan.release_key, plan.compose_id, plan.label)
            except RelEngError as exc:
                log.warning("%s; allocation counts only what %s holds", exc, self.output)
                self.notes.append(f"compose store not checked: {exc}")
                found = {}
            if "compose_id" in found:
                cid_why = f"compose {plan.compose_id} is in the compose store ({found['compose_id']})"
            if "label" in found:
                rel_why = f"label {plan.label} is compose {found['label']} in the compose store"
        if plan.builder == "koji" and not rel_why:
            from rel_eng.builders import koji_preflight as kp  # late: koji only for koji

            try:
                if self._hub is None:
                    self._hub = kp.Hub(self.config)
                taken = kp.taken_builds(self._hub, kp.planned_nvrs(plan, self.config))
            except RelEngError as exc:
                self._unchecked("koji builds", exc)
                taken = {}
            if taken:
                nvr, why = next(iter(taken.items()))
                rel_why = f"{nvr} exists: {why}"
        return cid_why, rel_why


def past_taken(config: Config, plan: DropPlan, taken: TakenNames, *, label_fixed: bool) -> DropPlan:
    """`plan`, or the first later respin/label whose compose id and NVRs are free everywhere."""
    date = dt.datetime.strptime(plan.date, "%Y%m%d").date()
    major, minor = (int(n) for n in plan.label.rsplit("-", 1)[1].split(".")) if plan.label else (1, 1)
    respin = plan.respin
    skipped: list[tuple[str, str]] = []  # (label or id, why): told as one note, however many
    for _ in range(LIMIT):
        cid_why, rel_why = taken.collisions(plan)
        if not cid_why and not rel_why:
            if skipped:
                taken.notes.append(_skipped_note(skipped))
            return plan
        if rel_why and label_fixed and not plan.weekly:
            raise InputError(f"label {plan.label} is taken: {rel_why}",
                             hint="omit --label to get the next free respin")
        skipped.append((plan.label or plan.compose_id, cid_why or rel_why))
        if cid_why or (rel_why and plan.weekly):
            respin += 1  # a weekly's release holds its respin
        if rel_why and not plan.weekly:
            minor += 1
        plan = plan_drop(config, plan.release_key, milestone=plan.milestone, date=date,
                         respin=respin, label_minor=minor, label_major=major, builder=plan.builder)
    raise InputError(f"no free respin for {plan.release_key} on {plan.date} within {LIMIT}",
                     hint="check the compose store and the koji hub for stale entries")


def _skipped_note(skipped: list[tuple[str, str]]) -> str:
    """One clause whatever the number of respins skipped: the first, the last, and why."""
    if len(skipped) == 1:
        return f"skipped {skipped[0][0]}: {skipped[0][1]}"
    return (f"skipped {len(skipped)} respins, {skipped[0][0]} to {skipped[-1][0]} (the last: "
            f"{skipped[-1][1]})")
