"""StoreRecorder: the compose.Recorder that mirrors a compose into the store as it runs.

The compose directory stays the source of truth. A store write that fails is logged and the
compose goes on; every status change re-syncs the compose's whole manifest, so the store
catches up on what it missed. While the database is unreachable, step writes are skipped for a
while instead of each waiting for a connect timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

from sqlalchemy import and_, delete, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from rel_eng.manifest import Artifact, Manifest
from rel_eng.messaging import bodies
from rel_eng.store import outbox, schema
from rel_eng.store.engine import StoreUnavailable, open_engine, redacted, upsert

log = logging.getLogger(__name__)

BACKOFF_S = 60  # after a failed write, skip step writes this long (status changes still try)
FAILED_STATES = ("DOOMED", "FINISHED_INCOMPLETE")
BOOT_STEP = "boottest:"  # the boot gate's step per image (rel_eng.compose.boot_gate)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def recorder_for(config, output: Path) -> "StoreRecorder | None":
    """The recorder a compose under `output` uses, or None when [store] is switched off."""
    if not config.store.enabled:
        return None
    return StoreRecorder(config.store.url_for(output))


def load_recorded(topdir: Path):
    """Compose.load with the recorder its own saved config names; close `c.recorder` when done."""
    from rel_eng.compose import Compose  # late: compose imports the builders

    c = Compose.load(topdir)
    return dataclasses.replace(c, recorder=recorder_for(c.config, topdir.parent))


class StoreRecorder:
    def __init__(self, url: str, clock: Callable[[], dt.datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic):
        self.url = url
        self.clock = clock
        self.monotonic = monotonic  # for the back-off; injectable so tests need not race it
        self._engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._known: set[str] = set()  # compose ids whose rows exist, so steps can refer to them
        self._down_until = 0.0
        self._enqueued = False  # the last transaction added outbox messages: flush after it
        self._late: dict[str, Callable] = {}  # staged-drop writes the store missed, per compose
        self._publisher = None

    @property
    def engine(self) -> Engine:
        with self._lock:
            # A forked worker must not share its parent's connections: open its own.
            if self._engine is None or self._pid != os.getpid():
                self._engine = open_engine(self.url)
                self._pid = os.getpid()
                self._known = set()
            return self._engine

    def close(self) -> None:
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = None

    # --- compose.Recorder ---

    def manifest(self, c) -> Manifest:
        return RecordedManifest(c, self)

    def status_changed(self, c, status: str) -> None:
        cid = c.plan.compose_id

        def write(conn: Connection, now: dt.datetime) -> None:
            data = Manifest(c.topdir).read()
            self._sync(conn, c, data, now)
            if cid in self._late:
                self._late[cid](conn, now)
            reason = _failures(data) if status in FAILED_STATES else ""
            conn.execute(update(schema.composes).where(schema.composes.c.compose_id == cid)
                         .values(status=status, reason=reason, updated_at=now))
            nth = outbox.count_status_changes(conn, cid)
            conn.execute(schema.status_changes.insert().values(
                compose_id=cid, status=status, reason=reason, at=now))
            self._enqueue(conn, [bodies.status_change(
                c, status, reason, nth, c.config.messaging.location_url)], now)

        if self._write(c, f"status {status}", write, status=status):
            self._late.pop(cid, None)

    # --- manifest updates, via RecordedManifest ---

    def step(self, c, step: str, digest: str, state: str, reason: str) -> None:
        def write(conn: Connection, now: dt.datetime) -> None:
            self._step(conn, c.plan.compose_id, step, digest, state, reason, now)
            if step.startswith(BOOT_STEP):  # the verdict's message in the same transaction
                self._boot_tested(conn, c, Manifest(c.topdir).read(), [step], now)

        self._write(c, f"step {step}", write)

    def build(self, c, job_key: str, info: dict) -> None:
        self._write(c, f"build record of {job_key}", lambda conn, now: self._build(
            conn, c.plan.compose_id, job_key, info, now))

    def artifacts(self, c, arts: list[Artifact]) -> None:
        def write(conn: Connection, now: dt.datetime) -> None:
            for a in arts:
                self._artifact(conn, c.plan.compose_id, a, now)
            self._image_built(conn, c, Manifest(c.topdir).read(), {a.job_key for a in arts}, now)

        self._write(c, "artifacts", write)

    def artifacts_rejected(self, c, arts: list[Artifact]) -> None:
        """The boot gate took these out of the drop: the store no longer lists them as artifacts
        (the image's failed build and boottest steps say why)."""
        def write(conn: Connection, now: dt.datetime) -> None:
            t = schema.artifacts
            for a in arts:
                conn.execute(delete(t).where(and_(t.c.compose_id == c.plan.compose_id,
                                                  t.c.job_key == a.job_key, t.c.kind == a.kind)))

        self._write(c, "rejected artifacts", write)

    def amis(self, c, ec2: dict, announce: bool = True) -> None:
        """AMI ids per image and region, as the EC2 publisher wrote them to ec2.json; with
        `announce`, their "published" messages in the same transaction."""
        def write(conn: Connection, now: dt.datetime) -> None:
            for nvra, info in sorted(ec2.get("images", {}).items()):
                for region, ami in sorted(info.get("regions", {}).items()):
                    ami_id = ami.get("ami_id", "") if isinstance(ami, dict) else str(ami)
                    snaps = info.get("snapshots", {}).get(region, [])
                    upsert(conn, schema.amis, dict(
                        compose_id=c.plan.compose_id, nvra=nvra, region=region, ami_id=ami_id,
                        snapshot_ids=json.dumps(snaps if isinstance(snaps, list) else [snaps]),
                        public=_public_in(info, region), recorded_at=now),
                        ("compose_id", "nvra", "region"))
            if announce:
                self._enqueue(conn, bodies.amis_published(c, ec2), now)

        self._write(c, "AMIs", write)

    def staged(self, c, drop: Path, expected: dict[str, str]) -> None:
        """The drop is staged and verified: record it and its "drop staged" message together.
        A drop that does not match what the compose recorded is neither recorded nor announced."""
        try:
            message = bodies.drop_staged(c, drop, expected)
        except bodies.DropMismatch as exc:
            log.error("not announcing the drop of %s: %s", c.plan.compose_id, exc)
            return

        def write(conn: Connection, now: dt.datetime) -> None:
            upsert(conn, schema.staged_drops, dict(
                compose_id=c.plan.compose_id, mirror_path=c.plan.mirror_path,
                files=len(message.body["files"]),
                bytes=sum(f["size"] for f in message.body["files"]), staged_at=now),
                ("compose_id",))
            self._enqueue(conn, [message], now)

        if not self._write(c, "staged drop", write):
            self._late[c.plan.compose_id] = write  # recorded with the next status change

    # --- the outbox ---

    def _enqueue(self, conn: Connection, messages, now: dt.datetime) -> None:
        if outbox.enqueue(conn, messages, now):
            self._enqueued = True

    def _image_built(self, conn: Connection, c, data: dict, job_keys, now: dt.datetime) -> None:
        deliverables = [Artifact(**a) for a in data.get("artifacts", [])
                        if a.get("intent") == "deliverable"]
        builds = data.get("builds", {})
        messages = []
        for key in sorted(job_keys):
            if data.get("steps", {}).get(f"build:{key}", {}).get("state") == "failed":
                continue
            m = bodies.image_built(c, key, deliverables, builds.get(key, {}))
            if m is not None:
                messages.append(m)
        self._enqueue(conn, messages, now)

    def _boot_tested(self, conn: Connection, c, data: dict, steps, now: dt.datetime) -> None:
        arts = [Artifact(**a) for a in data.get("artifacts", [])]
        known = {j.key for j in c.plan.images}
        messages = []
        for step in sorted(steps):
            key = step[len(BOOT_STEP):]
            rec = data.get("steps", {}).get(step)
            if key not in known or not rec:
                continue
            verdict = _boot_verdict(c, key)
            plat = (verdict or {}).get("platform")
            if isinstance(plat, dict) and plat.get("label"):
                upsert(conn, schema.boot_tests, dict(
                    compose_id=c.plan.compose_id, job_key=key, platform=str(plat["label"])[:64],
                    accel=str(verdict.get("accel") or "")[:16], recorded_at=now),
                    ("compose_id", "job_key"))
            m = bodies.boot_test(c, key, rec, verdict, arts)
            if m is not None:
                messages.append(m)
        self._enqueue(conn, messages, now)

    def _flusher(self, config) -> "outbox.Flusher | None":
        """A flusher when messages are to be sent now (messaging on, the broker not resting)."""
        from rel_eng.messaging.publisher import Publisher, sending

        if not sending(config):
            return None
        if self._publisher is None or self._publisher.cfg != config.messaging:
            self._publisher = Publisher(config.messaging)
        if self._publisher.resting:
            return None
        return outbox.Flusher(self.engine, self._publisher, self.clock)

    def flush(self, config, *, conn: Connection | None = None,
              flusher: "outbox.Flusher | None" = None,
              claimed: list | None = None) -> "outbox.FlushResult | None":
        """Send what the outbox holds, when messaging is on. Never raises: a broker that is
        down leaves the messages pending for the next flush (beat, `rel-eng messages flush`).
        `conn`, `flusher` and `claimed`: a write's connection and what it claimed in its
        transaction (`_write`)."""
        from rel_eng.messaging.publisher import require_config

        flusher = flusher or self._flusher(config)
        if flusher is None:
            return None
        try:
            require_config(config.messaging)
            result = flusher.flush(conn=conn, claimed=claimed)
        except Exception as exc:  # the store or the library: the compose goes on regardless
            log.warning("messages not sent (they stay in the outbox): %s",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None
        if result.error:
            log.warning("%d message(s) left pending in the outbox: %s", result.pending,
                        result.error)
        return result

    # --- internals ---

    def _write(self, c, what: str, fn: Callable[[Connection, dt.datetime], None],
               status: str | None = None) -> bool:
        """Run fn in one transaction after making sure the compose's rows exist. `status`: a
        status change, which is tried even while the store seems down (it re-syncs)."""
        cid = c.plan.compose_id
        if status is None and self.monotonic() < self._down_until:
            log.debug("compose store unavailable: not recording %s of %s", what, cid)
            return False
        with contextlib.ExitStack() as stack:
            try:
                self._enqueued = False
                conn = stack.enter_context(self.engine.connect())
                with conn.begin():
                    now = self.clock()
                    self._ensure(conn, c, status or "STARTED", now)
                    fn(conn, now)
                    # What it enqueued is claimed in the same transaction, so the flush after
                    # the commit needs no transaction of its own to start.
                    flusher = self._flusher(c.config) if self._enqueued else None
                    claimed = flusher.claim(conn) if flusher else None
                self._known.add(cid)  # only once committed: its rows exist now
                self._down_until = 0.0
            except (SQLAlchemyError, StoreUnavailable) as exc:
                self._down_until = self.monotonic() + BACKOFF_S
                log.warning("compose store %s: could not record %s of %s: %s (the compose goes "
                            "on; the next status change re-syncs)", redacted(self.url), what, cid,
                            str(exc).splitlines()[0])
                return False
            if self._enqueued or status is not None:
                # Then published, after the commit; a status change also sends older leftovers.
                self.flush(c.config, conn=conn, flusher=flusher, claimed=claimed)
        return True

    def _ensure(self, conn: Connection, c, status: str, now: dt.datetime) -> None:
        cid = c.plan.compose_id
        if cid in self._known:
            return
        p = c.plan
        upsert(conn, schema.composes, dict(
            compose_id=cid, topdir=str(Path(c.topdir).resolve()), release_key=p.release_key,
            release_version=p.release_version, milestone=p.milestone, label=p.label,
            compose_type=p.compose_type, date=p.date, respin=p.respin, builder=p.builder,
            status=status, reason="", created_at=now, updated_at=now), ("compose_id",),
            update=False)
        for j in p.images:
            upsert(conn, schema.images, dict(
                compose_id=cid, job_key=j.key, nvra=j.nvra, arch=j.arch, image_type=j.image_type,
                subvariant=j.subvariant, optional=j.optional), ("compose_id", "job_key"),
                update=False)

    def _sync(self, conn: Connection, c, data: dict, now: dt.datetime) -> None:
        cid = c.plan.compose_id
        for step, rec in data.get("steps", {}).items():
            self._step(conn, cid, step, rec.get("digest", ""), rec.get("state", ""),
                       rec.get("reason", ""), now)
        for key, info in data.get("builds", {}).items():
            self._build(conn, cid, key, info, now)
        for a in data.get("artifacts", []):
            self._artifact(conn, cid, Artifact(**a), now)
        # What left the manifest (a boot-gate rejection the store missed) leaves the store too.
        t = schema.artifacts
        listed = [(a["job_key"], a["kind"]) for a in data.get("artifacts", [])]
        stale = t.c.compose_id == cid
        if listed:
            stale = and_(stale, tuple_(t.c.job_key, t.c.kind).not_in(listed))
        conn.execute(delete(t).where(stale))
        # Catch up on "image built" messages a skipped write missed (ids are stable: no repeats).
        self._image_built(conn, c, data, {a["job_key"] for a in data.get("artifacts", [])}, now)
        self._boot_tested(conn, c, data, [s for s in data.get("steps", {})
                                          if s.startswith(BOOT_STEP)], now)

    @staticmethod
    def _step(conn, cid, step, digest, state, reason, now) -> None:
        job_key = step.split(":", 1)[1] if ":" in step else None
        upsert(conn, schema.steps, dict(compose_id=cid, step=step, job_key=job_key, state=state,
                                        reason=reason or "", digest=digest or "", updated_at=now),
               ("compose_id", "step"))

    @staticmethod
    def _build(conn, cid, job_key, info, now) -> None:
        rest = {k: v for k, v in info.items() if k not in ("builder", "external_id")}
        upsert(conn, schema.builds, dict(
            compose_id=cid, job_key=job_key, builder=str(info.get("builder", "")),
            external_id=str(info.get("external_id", "")),
            info=json.dumps(rest, sort_keys=True, default=str), recorded_at=now),
            ("compose_id", "job_key"))

    @staticmethod
    def _artifact(conn, cid, a: Artifact, now) -> None:
        upsert(conn, schema.artifacts, {**dataclasses.asdict(a), "compose_id": cid,
                                        "recorded_at": now},
               ("compose_id", "job_key", "kind"))


class RecordedManifest(Manifest):
    """A compose's manifest whose step, build and artifact updates also reach the store."""

    def __init__(self, c, recorder: StoreRecorder):
        super().__init__(c.topdir)
        self._compose = c
        self._recorder = recorder

    def set_step(self, step: str, digest: str, state: str, reason: str = "") -> None:
        super().set_step(step, digest, state, reason)
        self._recorder.step(self._compose, step, digest, state, reason)

    def set_build(self, job_key: str, **info) -> None:
        super().set_build(job_key, **info)
        self._recorder.build(self._compose, job_key, self.builds().get(job_key, info))

    def add_artifacts(self, artifacts: list[Artifact]) -> None:
        super().add_artifacts(artifacts)
        self._recorder.artifacts(self._compose, artifacts)

    def reject_artifacts(self, job_key: str) -> list[Artifact]:
        gone = super().reject_artifacts(job_key)
        if gone:
            self._recorder.artifacts_rejected(self._compose, gone)
        return gone


def _boot_verdict(c, job_key: str) -> dict | None:
    """The verdict (with its checks) the boot gate saved before recording its step."""
    try:
        v = json.loads((Path(c.topdir) / "work" / "boottest" / f"{job_key}.json").read_text())
    except (OSError, ValueError):
        return None
    return v if isinstance(v, dict) else None


def _failures(data: dict) -> str:
    failed = {k.split(":", 1)[-1]: v.get("reason", "") for k, v in sorted(data["steps"].items())
              if v.get("state") == "failed"}
    return "; ".join(f"{k}: {v}" for k, v in failed.items())


def _public_in(info: dict, region: str) -> bool:
    """Per region when ec2.json says (Block Public Access may keep one region private)."""
    visibility = info.get("visibility", {})
    return visibility[region] == "public" if region in visibility else bool(info.get("public"))
