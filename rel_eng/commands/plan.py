"""`rel-eng plan`: print the drop plan with no side effects."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rel_eng import pipeline
from rel_eng.builders import BUILDERS
from rel_eng.commands import common
from rel_eng.config import ami_attributes
from rel_eng.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("plan", help="print the drop plan (no side effects)")
    common.add_config_options(p)
    common.add_drop_options(p)
    p.add_argument("--output", type=Path, default=Path("out"),
                   help="output dir whose composes decide the next respin (only read)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--released", action="store_true",
                   help="show what was released for this milestone, from which candidate "
                        "(the compose store under --output)")
    p.set_defaults(func=run)


def run(args) -> int:
    date = common.date_of(args)
    config = common.load(args)
    if args.released:
        return show_released(args, config)
    # Late: the compose package (and SQLAlchemy behind it) once the flags and the config are good.
    from rel_eng.compose import allocate
    from rel_eng.compose.taken import TakenNames

    common.check_builder(config, args.builder, args.koji_profile)
    if args.output.exists() and not args.output.is_dir():
        raise InputError(f"--output {args.output}: is a file, not a directory",
                         hint="name the output dir whose composes decide the respin")
    taken = TakenNames(config, args.output, strict=False)  # reads only; unreachable = noted
    plan = allocate(config, args.output, args.release, args.milestone, date,
                    builder=args.builder, taken_names=taken)
    release = plan.images[0].release if plan.images else ""
    sources = f"{args.output}" + (", the compose store" if config.store.enabled else "")
    sources += ", the koji hub" if plan.builder == "koji" else ""
    why = "; ".join(taken.notes) or f"the first respin none of {sources} holds"
    describe = getattr(BUILDERS[plan.builder], "planned_calls", None)
    calls = describe(plan, config) if describe else []
    rel = config.release(args.release)
    amis = {j.key: ami_attributes.for_image(config.ec2, rel, j.arch).api()
            for j in plan.images if _is_ec2(config, j)}
    if args.json:
        data = plan.to_dict()
        data["release_why"] = why
        data["ami_attributes"] = amis
        if calls:
            data["builder_calls"] = calls
            data["koji_profile"] = config.koji.profile
        data["steps"] = pipeline.describe()
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    out = [f"compose id:  {plan.compose_id}",
           f"label:       {plan.label or '(none: weekly)'}",
           f"release:     {release} ({why})",
           f"type:        {plan.compose_type}",
           f"builder:     {plan.builder}",
           f"mirror path: {plan.mirror_path}", "images:"]
    for job in plan.images:
        out += [f"  {job.nvra}",
                f"    name={job.name} version={job.version} release={job.release} arch={job.arch}"
                f" subvariant={job.subvariant}{' (optional)' if job.optional else ''}",
                f"    kickstart={Path(config.kickstart_dir) / job.kickstart} ({job.ksversion})",
                f"    tdl={Path(config.tdl_dir) / 'cloud.tdl'} (os Fedora {job.fedora_version} {job.oz_arch})",
                f"    outputs: {', '.join(f'{job.relpath}/{o.filename}' for o in job.outputs)}"]
        if job.key in amis:
            out.append("    ami: " + " ".join(f"{k}={v!s}" for k, v in amis[job.key].items()))
    out.append("steps:")
    for step in pipeline.PIPELINE:
        lock = step.lock("<image>" if step.scope == pipeline.IMAGE else "")
        out.append(f"  {step.name:9} per {step.scope:8} lock {lock}, [celery] route {step.route}")
    out.append(f"    finalize: {' -> '.join(f.name for f in pipeline.FINALIZE_STEPS)}")
    if calls:
        out.append(f"koji profile: {config.koji.profile} (calls are not made by plan)")
    for call in calls:
        out.append(f"hub call: {call['method']}({', '.join(map(repr, call['args']))})")
        out.append(f"    opts={json.dumps(call.get('opts', {}), sort_keys=True)}")
    print("\n".join(out))
    return 0


def show_released(args, config) -> int:
    """`plan --released`: the release of one milestone, as the compose store records it."""
    if not args.milestone:
        raise InputError("--released needs --milestone (weeklies are never released)")
    config.release(args.release)  # an unknown release is bad input
    key = config.release(args.release).key
    from rel_eng.store.queries import released

    if not config.store.enabled:
        raise InputError("the compose store is switched off", hint=f"[store] enabled in {config.source}")
    engine = common.open_store(config.store.url_for(args.output), must_exist=True)
    try:
        rows = [r for r in released(engine, key) if r["milestone"] == args.milestone]
    finally:
        engine.dispose()
    if args.json:
        json.dump({"release": key, "milestone": args.milestone,
                   "released": rows[0] if rows else None,
                   "steps": pipeline.describe_release()}, sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    if not rows:
        print(f"{key} {args.milestone}: not released")
        return 0
    r = rows[0]
    print(f"{key} {args.milestone}: released from {r['label']} ({r['compose_id']}), {r['state']}, "
          f"by {r['released_by']} at {r['released_at'][:19].replace('T', ' ')} UTC, in "
          f"{r['mirror_path']}" + (f" ({r['note']})" if r["note"] else ""))
    for ev in r["events"]:
        print(f"  {ev['at'][:19].replace('T', ' ')}  {ev['action']:<9} {ev['compose_id']} by {ev['by']}")
    return 0


def _is_ec2(config, job) -> bool:
    """An image that becomes an AMI: the EC2 image type, on an arch EC2 runs (i686 when ec2.i386)."""
    return job.image_type == "ec2" and (job.arch == "x86_64" or (job.arch == "i686" and config.ec2.i386))
