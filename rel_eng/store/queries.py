"""What `rel-eng status` reads: plain dicts, JSON-ready, the same from SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Engine

from rel_eng.store import schema


def _iso(value):
    return value.isoformat() if isinstance(value, dt.datetime) else value


def as_dict(row) -> dict:
    return {k: _iso(v) for k, v in row._mapping.items()}


def list_composes(engine: Engine, limit: int = 20, *, release: str | None = None,
                  kind: str | None = None, status: str | None = None) -> list[dict]:
    """The newest composes with image counts: built, failed, processed of total. Optional
    filters: release key, kind ("milestone" or "weekly") and status."""
    c, i, s = schema.composes, schema.images, schema.steps
    # Pick the page of composes first, then count for those rows only: counting in the outer
    # query of the whole table would run the subqueries for every compose before the LIMIT.
    page = select(c.c.compose_id, c.c.status, c.c.release_key, c.c.milestone, c.c.label,
                  c.c.builder, c.c.created_at, c.c.updated_at, c.c.topdir)
    if release:
        page = page.where(c.c.release_key == release)
    if kind == "weekly":
        page = page.where(c.c.milestone.is_(None))
    elif kind == "milestone":
        page = page.where(c.c.milestone.is_not(None))
    if status:
        page = page.where(c.c.status == status)
    p = page.order_by(c.c.created_at.desc(), c.c.compose_id.desc()).limit(limit).cte("page")
    ids = select(p.c.compose_id)
    total = (select(i.c.compose_id, func.count().label("images")).where(i.c.compose_id.in_(ids))
             .group_by(i.c.compose_id).subquery("total"))

    def steps_in(prefix: str, state: str):
        return func.coalesce(func.sum(case((and_(s.c.step.like(f"{prefix}:%"), s.c.state == state), 1),
                                           else_=0)), 0)

    # One pass over the steps of the page's composes, not one per count.
    counts = (select(s.c.compose_id, steps_in("build", "done").label("built"),
                     steps_in("build", "failed").label("failed"),
                     steps_in("process", "done").label("processed"))
              .where(s.c.compose_id.in_(ids)).group_by(s.c.compose_id).subquery("counts"))
    query = (select(*p.c, func.coalesce(total.c.images, 0).label("images"),
                    *(func.coalesce(counts.c[k], 0).label(k) for k in ("built", "failed", "processed")))
             .select_from(p.outerjoin(total, total.c.compose_id == p.c.compose_id)
                          .outerjoin(counts, counts.c.compose_id == p.c.compose_id))
             .order_by(p.c.created_at.desc(), p.c.compose_id.desc()))
    with engine.connect() as conn:
        return [as_dict(r) for r in conn.execute(query)]


def compose_facets(engine: Engine) -> dict:
    """The release keys and statuses the store holds (for filter menus), in one query."""
    c = schema.composes
    query = select(c.c.release_key, c.c.status).distinct()
    with engine.connect() as conn:
        pairs = conn.execute(query).all()
    return {"releases": sorted({r for r, _ in pairs}), "statuses": sorted({s for _, s in pairs})}


def compose_topdir(engine: Engine, compose_id: str) -> str | None:
    c = schema.composes
    with engine.connect() as conn:
        return conn.execute(select(c.c.topdir).where(c.c.compose_id == compose_id)).scalar()


def compose_detail(engine: Engine, compose_id: str) -> dict | None:
    """One compose: its row, images with their steps and builder ids, artifacts, status history."""
    c = schema.composes
    with engine.connect() as conn:
        row = conn.execute(select(c).where(c.c.compose_id == compose_id)).first()
        if row is None:
            return None

        def rows(table, *order):
            q = select(table).where(table.c.compose_id == compose_id).order_by(*order)
            return [as_dict(r) for r in conn.execute(q)]

        i, b = schema.images, schema.boot_tests
        # How each image was booted, in the same query (the page's query count stays fixed).
        images = [as_dict(r) for r in conn.execute(
            select(i, b.c.platform.label("boot_platform"), b.c.accel.label("boot_accel"))
            .outerjoin(b, and_(b.c.compose_id == i.c.compose_id, b.c.job_key == i.c.job_key))
            .where(i.c.compose_id == compose_id).order_by(i.c.job_key))]
        steps = rows(schema.steps, schema.steps.c.step)
        builds = {b["job_key"]: b for b in rows(schema.builds, schema.builds.c.job_key)}
        artifacts = rows(schema.artifacts, schema.artifacts.c.job_key, schema.artifacts.c.kind)
        history = rows(schema.status_changes, schema.status_changes.c.id)
        amis = rows(schema.amis, schema.amis.c.nvra, schema.amis.c.region)
        releases = released(engine, compose_id=compose_id, conn=conn)  # what it is released as
    for image in images:
        key = image["job_key"]
        image["steps"] = {s["step"].split(":", 1)[0]: {k: s[k] for k in ("state", "reason", "updated_at")}
                          for s in steps if s["job_key"] == key}
        platform, accel = image.pop("boot_platform"), image.pop("boot_accel")
        image["boot"] = None if platform is None else {"platform": platform, "accel": accel}
        build = builds.get(key)
        image["build"] = None if build is None else {
            "builder": build["builder"], "external_id": build["external_id"],
            "info": json.loads(build["info"] or "{}"), "recorded_at": build["recorded_at"]}
    detail = as_dict(row)
    detail.update(images=images, artifacts=[{k: v for k, v in a.items() if k != "compose_id"}
                                            for a in artifacts],
                  steps=[s for s in steps if s["job_key"] is None],
                  history=[{k: h[k] for k in ("status", "reason", "at")} for h in history],
                  releases=releases,
                  amis=[{"nvra": a["nvra"], "region": a["region"], "ami_id": a["ami_id"],
                         "snapshot_ids": json.loads(a["snapshot_ids"] or "[]"),
                         "public": a["public"]} for a in amis])
    return detail


def released(engine, release_key: str | None = None, compose_id: str | None = None,
             conn=None) -> list[dict]:
    """Every release row with its acts, newest first, in one query (rows joined to their
    events): `rel-eng status`, the dashboard, `rel-eng schedule` and `plan --released`."""
    r, e = schema.releases, schema.release_events
    q = (select(r, e.c.action, e.c.compose_id.label("ev_compose"), e.c.by, e.c.at)
         .outerjoin(e, (e.c.release_key == r.c.release_key) & (e.c.milestone == r.c.milestone))
         .order_by(r.c.released_at.desc(), r.c.release_key, r.c.milestone, e.c.id))
    if release_key is not None:
        q = q.where(r.c.release_key == release_key)
    if compose_id is not None:
        q = q.where(r.c.compose_id == compose_id)
    if conn is None:
        with engine.connect() as own:
            found = list(own.execute(q))
    else:
        found = list(conn.execute(q))
    rows: dict[tuple[str, str], dict] = {}
    for row in found:
        m = row._mapping
        key = (m["release_key"], m["milestone"])
        if key not in rows:
            rows[key] = {c.name: m[c.name] for c in r.columns}
            rows[key].update(amis=json.loads(m["amis"] or "{}"),
                             released_at=m["released_at"].isoformat(), events=[])
        if m["action"] is not None:
            rows[key]["events"].append({"action": m["action"], "compose_id": m["ev_compose"],
                                        "by": m["by"], "at": m["at"].isoformat()})
    return list(rows.values())
