"""`rel-eng status [COMPOSE]`: the live state of composes, from the compose store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rel_eng.commands import common
from rel_eng.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("status", help="show composes and their images, builds, artifacts and "
                                      "status history from the compose store")
    common.add_config_options(p)
    p.add_argument("compose", nargs="?", metavar="COMPOSE", help="compose id (default: list the newest)")
    p.add_argument("--output", type=Path, help="output dir holding the default SQLite store "
                                               "(default [schedule] output: ./out)")
    p.add_argument("--limit", type=int, default=20, help="composes listed (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from rel_eng.store import queries
    from rel_eng.store.engine import redacted

    config = common.load(args)
    if not 1 <= args.limit <= 10000:
        raise InputError(f"--limit must be 1..10000, got {args.limit}")
    if not config.store.enabled:
        raise InputError("the compose store is switched off", hint=f"[store] enabled in {config.source}")
    url = config.store.url_for(args.output or Path(config.schedule.output))
    engine = common.open_store(url, must_exist=True)
    try:
        if args.compose:
            data = queries.compose_detail(engine, args.compose)
            if data is None:
                raise InputError(f"no compose '{args.compose}' in the store {redacted(url)}",
                                 hint="'rel-eng status' lists the composes it knows")
        else:
            data = queries.list_composes(engine, args.limit)
    finally:
        engine.dispose()
    if args.compose and data.get("topdir"):  # a queued compose: is any of its queues unserved?
        from rel_eng.distributed.liveness import waiting_on

        waiting = waiting_on(data["topdir"])
        if waiting:
            data["waiting"] = waiting
    if args.json:
        json.dump(data, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print("\n".join(render_detail(data) if args.compose else render_list(data)))
    return 0


def render_list(rows: list[dict]) -> list[str]:
    if not rows:
        return ["no composes recorded yet"]
    out = [f"{'COMPOSE':<40} {'STATUS':<19} {'BUILT':>5} {'FAILED':>6} {'DONE':>5}  UPDATED (UTC)"]
    for r in rows:
        out.append(f"{r['compose_id']:<40} {r['status']:<19} {r['built']:>2}/{r['images']:<2} "
                   f"{r['failed']:>6} {r['processed']:>2}/{r['images']:<2}  {_t(r['updated_at'])}")
    return out


def render_detail(d: dict) -> list[str]:
    what = f"{d['release_key']} {d['milestone']} ({d['label']})" if d["milestone"] else \
        f"{d['release_key']} weekly"
    out = [f"{d['compose_id']}: {d['status']}" + (f" ({d['reason']})" if d["reason"] else ""),
           f"  {what}, builder {d['builder']}, in {d['topdir']}",
           f"  started {_t(d['created_at'])}, updated {_t(d['updated_at'])}", "images:"]
    for i in d["images"]:
        boot = i.get("boot") or {}
        steps = ", ".join(f"{name} {s['state']}"
                          + (f" as {boot['platform']}" if name == "boottest" and boot else "")
                          + (f" ({s['reason']})" if s["reason"] else "")
                          for name, s in sorted(i["steps"].items())) or "pending"
        task = f" [{i['build']['builder']} {i['build']['external_id']}]" if i["build"] else ""
        opt = " (optional)" if i["optional"] else ""
        out.append(f"  {i['job_key']:<16} {i['nvra']}{opt}: {steps}{task}")
    if d["artifacts"]:
        out.append("artifacts:")
        for a in d["artifacts"]:
            # a raw disk's digest is its block digest (rel_eng.digest), not a sha256sum
            label = "block-sha256" if a["kind"] == "raw-disk" else "sha256"
            digest = f" {label} {a['sha256']}" if a["sha256"] else ""
            out.append(f"  {a['path']} ({a['kind']}, {a['size']} bytes){digest}")
    if d.get("amis"):
        out.append("AMIs:")
        for a in d["amis"]:
            out.append(f"  {a['nvra']}  {a['region']:<15} {a['ami_id']}"
                       + (" public" if a["public"] else " private"))
    for r in d.get("releases") or []:
        note = f" ({r['note']})" if r["note"] else ""
        out.append(f"released: {r['release_key']} {r['milestone']} from {r['label']}, "
                   f"{r['state']}, by {r['released_by']} at {_t(r['released_at'])} in "
                   f"{r['mirror_path']}{note}")
    for line in d.get("waiting") or []:
        out.append(f"  {line}")
    out.append("status history (UTC):")
    for h in d["history"]:
        out.append(f"  {_t(h['at'])}  {h['status']}" + (f"  {h['reason']}" if h["reason"] else ""))
    return out


def _t(iso: str) -> str:
    return iso[:19].replace("T", " ") if iso else "-"
