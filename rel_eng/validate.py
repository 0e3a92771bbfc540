"""`rel-eng validate`: config, release definitions, kickstarts and TDLs, all problems at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rel_eng import kickstart, tdl
from rel_eng.config import Config, Problems
from rel_eng.errors import InputError
from rel_eng.plan import plan_drop


def problems(config: Config) -> tuple[list[str], list[str]]:
    """(problems, what was checked). Config itself was validated when it loaded."""
    found = Problems()  # the lines are written in full: each names its own file or key
    checked: list[str] = [f"config {config.source}", f"releases {config.releases_file}"]
    from rel_eng.distributed.broker import validate_problems

    broker_found, broker_checked = validate_problems(config)  # [celery] broker reachable?
    found.extend(broker_found)
    checked += broker_checked
    template = Path(config.tdl_dir) / tdl.TEMPLATE_NAME
    tdls: dict[str, str] = {}
    ks_errors: dict[str, list[str]] = {}  # one bad line, one error, whatever the releases
    for release in config.releases:
        for itype in config.image_types:
            path = Path(config.kickstart_dir) / itype.kickstart
            try:
                kickstart.flatten(path, release.ksversion, Path(config.kickstart_dir))
                checked.append(f"kickstart {path} ({release.ksversion})")
            except InputError as exc:
                versions = ks_errors.setdefault(str(exc).replace(release.ksversion, "{v}"), [])
                if release.ksversion not in versions:
                    versions.append(release.ksversion)
        milestone = release.milestones[0][0] if release.milestones else None
        plan = plan_drop(config, release.key, milestone=milestone, date=dt.date(2000, 1, 1))
        for job in plan.images:
            try:
                tdls[f"{release.key}/{job.key}"] = tdl.render(job, template)
            except InputError as exc:
                found.line(str(exc))
                break
    for text, versions in ks_errors.items():
        found.line(text.replace("{v}", ", ".join(versions)))
    if tdls:
        for name, err in sorted(tdl.validate_with_oz(tdls).items()):
            found.line(f"{template}: TDL for {name} rejected by Oz: {err}")
        checked.append(f"{len(tdls)} TDLs from {template} with oz.TDL")
    return found.items, checked
