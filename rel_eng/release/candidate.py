"""Which compose is the candidate, and whether it may be released: every check reads, none writes.

Each refusal is an InputError (one line, exit 2): an unknown id or label, a weekly, a candidate
that did not finish (unless allowed), a failed boot verdict, an unverified one (unless allowed).
The staged drop's bytes are checked by the link step, which reads each file once anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rel_eng.compose.allocate import existing_plans
from rel_eng.compose.model import DOOMED, FINISHED, INCOMPLETE, Compose
from rel_eng.errors import InputError
from rel_eng.naming import LABEL_RE

BOOT_STEP = "boottest:"


@dataclass(frozen=True)
class Candidate:
    compose: Compose
    status: str
    unverified: tuple[str, ...]  # images no boot passed (gate off, or skipped as not bootable)
    missing: tuple[str, ...]  # images a FINISHED_INCOMPLETE candidate lacks

    @property
    def plan(self):
        return self.compose.plan


def find(output: Path, ident: str, release: str | None = None,
         milestone: str | None = None) -> Compose:
    """The compose `ident` (a compose id, or a label such as Beta-1.2) under `output`."""
    plans = existing_plans(output)
    if LABEL_RE.match(ident):
        found = [p for p in plans if p.label == ident
                 and (release is None or p.release_key.lower() == release.lower())
                 and (milestone is None or p.milestone == milestone)]
    else:
        found = [p for p in plans if p.compose_id == ident]
    if not found:
        raise InputError(f"no compose '{ident}' in {output}",
                         hint="name a milestone compose by its compose id or label "
                              "(rel-eng status lists them)")
    if len(found) > 1:
        ids = ", ".join(sorted(p.compose_id for p in found))
        raise InputError(f"label '{ident}' names {len(found)} composes in {output} ({ids})",
                         hint="add --release and --milestone, or name the compose id")
    return Compose.load(output / found[0].compose_id)


def check(c: Compose, allow_unverified: bool = False, allow_incomplete: bool = False) -> Candidate:
    """Refuse what must never be released; returns what the release must say about it."""
    p = c.plan
    cid = p.compose_id
    if p.weekly:
        raise InputError(f"{cid} is a weekly compose; only a milestone candidate is released",
                         hint="name a compose of an Alpha, Beta or Final milestone")
    status = c.read_status()
    if status not in (FINISHED, INCOMPLETE, DOOMED):
        raise InputError(f"{cid} is {status or 'not started'}, not FINISHED",
                         hint=f"let it finish first (rel-eng compose --resume {c.topdir})")
    data = c.manifest.read()
    steps = data.get("steps", {})
    missing = tuple(sorted(j.key for j in p.images
                           if steps.get(f"build:{j.key}", {}).get("state") != "done"))
    if status != FINISHED and not allow_incomplete:
        what = f"; missing: {', '.join(missing)}" if missing else ""
        raise InputError(f"{cid} is {status}, not FINISHED{what}",
                         hint="release it anyway with --allow-incomplete (its page then says "
                              "what is missing)")
    if status == DOOMED and steps.get("stage", {}).get("state") != "done":
        raise InputError(f"{cid} is DOOMED and was never staged; nothing to release",
                         hint="compose a new candidate")
    unverified = []
    for job in p.images:
        if job.key in missing:
            continue
        rec = steps.get(f"{BOOT_STEP}{job.key}")
        state = rec.get("state") if rec else None
        if state == "failed":
            raise InputError(f"{cid}: the boot gate failed {job.nvra}: "
                             f"{rec.get('reason') or 'see its verdict'}",
                             hint="a failed candidate is never released; compose a new one")
        if state != "done":
            unverified.append(job.key)
    if unverified and not allow_unverified:
        raise InputError(f"{cid}: no boot verified {', '.join(unverified)} (the boot gate was "
                         "off, or the images are not bootable)",
                         hint="add --allow-unverified to release it anyway (its page then says "
                              "\"not verified by a boot\")")
    return Candidate(c, status, tuple(unverified), missing)


def ec2_amis(c: Compose) -> dict:
    """The candidate's AMIs from compose/metadata/ec2.json: {nvra: {region: ami id}}."""
    path = c.metadir / "ec2.json"
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({type(exc).__name__})",
                         hint="rerun rel-eng ec2 publish for this compose") from None
    images = doc.get("images") if isinstance(doc, dict) else None
    out = {}
    for nvra, info in sorted((images or {}).items()) if isinstance(images, dict) else ():
        regions = info.get("regions") if isinstance(info, dict) else None
        if isinstance(regions, dict):
            out[str(nvra)] = {str(r): str(v) for r, v in sorted(regions.items())}
    return out
