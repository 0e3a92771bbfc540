"""`rel-eng schedule`: the next firings of the weekly streams and the milestone schedule."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from rel_eng.commands import common
from rel_eng.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("schedule", help="list the next scheduled composes (weekly streams, milestones)")
    common.add_config_options(p)
    p.add_argument("--at", type=_utc_time, help="compute from this UTC time (YYYY-MM-DDTHH:MM) "
                                                "instead of now")
    p.add_argument("--count", type=int, default=1, help="next firings per stream (default 1)")
    p.add_argument("--output", type=Path, help="output dir of scheduled composes, whose store "
                                               "records what fired (default [schedule] output)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _utc_time(text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a time (YYYY-MM-DDTHH:MM, UTC)") from None
    t = t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)
    if t.year < 1970:
        raise argparse.ArgumentTypeError(f"'{text}' is before 1970 (UTC)")
    return t


def run(args) -> int:
    from rel_eng.schedule import firings
    from rel_eng.schedule.beat import utcnow

    config = common.load(args)
    if not 1 <= args.count <= 100:
        raise InputError(f"--count must be 1..100, got {args.count}")
    now = args.at or utcnow()
    claims, note = _claims(config, args.output)
    releases = _releases(config, args.output)
    window = dt.timedelta(hours=config.schedule.catch_up_hours)
    try:
        upcoming = [_firing(f) for f in firings.upcoming(config, now, args.count)]
    except OverflowError:  # datetime ends at 9999-12-31
        raise InputError(f"--at {now:%Y-%m-%dT%H:%M}: the next firings fall after the year 9999",
                         hint="pick an earlier --at, or a smaller --count") from None
    stones = []
    for f in firings.milestones(config):
        claim = claims.get(f.key)
        if claim:
            state = f"fired {claim['claimed_at']}: {claim['compose_id'] or 'claimed, not queued'}"
        elif f.due > now:
            state = "upcoming"
        elif now - f.due < window:
            state = "due: the next tick fires it"
        else:
            state = (f"missed (older than catch_up_hours): rel-eng trigger --release "
                     f"{f.release} --milestone {f.milestone}")
        rel = releases.get((f.release, f.milestone), {"candidates": [], "released": None})
        stones.append({**_firing(f), "state": state, **rel})
    streams = []
    for s in config.schedule.streams:
        rel = config.release(s.release)
        streams.append({"name": s.name, "cron": s.cron, "release": rel.key,
                        "version": rel.version, "koji_target": rel.koji_target,
                        "install_tree": rel.install_tree, "repos": list(rel.repos)})
    data = {"now": now.isoformat(), "upcoming": upcoming, "milestones": stones,
            "streams": streams, "store": note}
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    out = [f"next firings after {_t(now.isoformat())} UTC:"]
    out += [f"  {_t(f['due'])}  {f['what']}" for f in upcoming] or ["  (none)"]
    out.append(f"milestones (at {config.schedule.milestone_time} UTC on their date):")
    for m in stones:
        out.append(f"  {m['release']:<8} {m['milestone']:<6} {_t(m['due'])}  {m['state']}")
        if m["candidates"]:
            out.append(f"    candidates staged: {', '.join(m['candidates'])}")
        if m["released"]:
            r = m["released"]
            out.append(f"    released: {r['label']} ({r['state']}) by {r['released_by']} at "
                       f"{_t(r['released_at'])}")
    if not stones:
        out.append("  (no release has milestones)")
    out.append(f"weekly streams ({config.schedule.streams_file}):")
    for s in streams:
        out.append(f"  {s['name']}: cron '{s['cron']}' UTC, release {s['release']} "
                   f"(koji target {s['koji_target'] or '-'}, tree {s['install_tree']})")
    if note:
        out.append(note)
    print("\n".join(out))
    return 0


def _claims(config, output: Path | None) -> tuple[dict, str]:
    """Recorded firings by key; a missing, unreachable or switched-off store only means nothing
    is known about what fired."""
    from rel_eng.schedule.beat import store_url
    from rel_eng.store.engine import StoreUnavailable, open_engine
    from rel_eng.store.firings import FiringLedger

    try:
        engine = open_engine(store_url(config, output), must_exist=True)
    except (InputError, StoreUnavailable) as exc:
        return {}, f"(no record of past firings: {exc.message})"
    try:
        rows = FiringLedger(engine).all()
    finally:
        engine.dispose()
    return {(r["kind"], r["subject"], r["slot"]): r for r in rows}, ""


def _releases(config, output: Path | None) -> dict:
    """Per (release, milestone): the candidates staged and the one released, from the store;
    nothing when there is no store to read (releasing is a person's command, never beat's)."""
    from rel_eng.release.record import milestones
    from rel_eng.schedule.beat import store_url
    from rel_eng.store.engine import StoreUnavailable, open_engine

    try:
        engine = open_engine(store_url(config, output), must_exist=True)
    except (InputError, StoreUnavailable):
        return {}
    try:
        return milestones(engine)
    finally:
        engine.dispose()


def _firing(f) -> dict:
    return {"kind": f.kind, "subject": f.subject, "slot": f.slot, "due": f.due.isoformat(),
            "release": f.release, "milestone": f.milestone, "what": f.what}


def _t(iso: str) -> str:
    return iso[:16].replace("T", " ")
