"""A release in the compose store: its row, the act in its history and its message, in one
transaction (the outbox), then sent when messaging is on. A broker that is down leaves the
message pending in the outbox, as for every other message."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select

from rel_eng.messaging import bodies
from rel_eng.store import outbox, schema
from rel_eng.store.engine import upsert
from rel_eng.store.queries import released


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def store_url(config, output: Path) -> str | None:
    return config.store.url_for(output) if config.store.enabled else None


def record(config, output: Path, action: str, rec: dict, state: str, mirror_path: str,
           files: dict, amis: dict, now: dt.datetime | None = None, pages=None) -> bool:
    """Write the release row, the act and its message; returns whether the store took them
    (False when [store] is off). `pages(rows)` then rewrites the release pages from every
    release recorded. Sends the outbox afterwards when messaging is on."""
    url = store_url(config, output)
    if url is None:
        return False
    from rel_eng.store.recorder import StoreRecorder

    recorder = StoreRecorder(url)
    now = now or utcnow()
    try:
        with recorder.engine.begin() as conn:
            upsert(conn, schema.releases, dict(
                release_key=rec["release_key"], milestone=rec["milestone"],
                compose_id=rec["compose_id"], label=rec["label"], state=state,
                mirror_path=mirror_path, released_by=rec["released_by"],
                released_at=dt.datetime.fromisoformat(rec["released_at"]),
                files=len(files), bytes=sum(size for size, _ in files.values()),
                amis=json.dumps(amis, sort_keys=True), note=rec.get("note", "")),
                ("release_key", "milestone"))
            done = select(schema.release_events.c.id).where(
                schema.release_events.c.compose_id == rec["compose_id"],
                schema.release_events.c.action == action,
                schema.release_events.c.release_key == rec["release_key"],
                schema.release_events.c.milestone == rec["milestone"])
            if conn.execute(done).first() is None:  # a resumed release records its act once
                conn.execute(schema.release_events.insert().values(
                    release_key=rec["release_key"], milestone=rec["milestone"],
                    compose_id=rec["compose_id"], action=action, by=rec["released_by"], at=now))
            if state != "closed":  # a closed release is announced when it opens
                outbox.enqueue(conn, [bodies.release_published(action, rec, mirror_path, files,
                                                               amis)], now)
        if pages is not None:
            pages(released(recorder.engine))
        recorder.flush(config)
    finally:
        recorder.close()
    return True


def milestones(engine) -> dict[tuple[str, str], dict]:
    """(release key, milestone) -> the candidates staged (labels, oldest first) and the one
    released (None while none is): what `rel-eng schedule` shows per milestone."""
    c, s = schema.composes, schema.staged_drops
    q = (select(c.c.release_key, c.c.milestone, c.c.label, c.c.compose_id)
         .join(s, s.c.compose_id == c.c.compose_id)
         .where(c.c.milestone.is_not(None)).order_by(c.c.created_at))
    out: dict[tuple[str, str], dict] = {}
    with engine.connect() as conn:
        for row in conn.execute(q):
            out.setdefault((row.release_key, row.milestone),
                           {"candidates": [], "released": None})["candidates"].append(row.label)
    for r in released(engine):
        out.setdefault((r["release_key"], r["milestone"]),
                       {"candidates": [], "released": None})["released"] = {
            k: r[k] for k in ("label", "compose_id", "state", "released_by", "released_at",
                              "mirror_path")}
    return out
