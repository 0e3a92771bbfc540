"""The store's tables (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Times are stored as naive UTC and read back as aware UTC, so both backends give the same values.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer,
                        MetaData, String, Table, Text, UniqueConstraint)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("store times must be timezone-aware")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


metadata = MetaData()


def _compose_fk() -> Column:
    return Column("compose_id", String(200), ForeignKey("composes.compose_id", ondelete="CASCADE"),
                  primary_key=True)


composes = Table(
    "composes", metadata,
    Column("compose_id", String(200), primary_key=True),
    Column("topdir", Text, nullable=False),
    Column("release_key", String(64), nullable=False),
    Column("release_version", String(64), nullable=False),
    Column("milestone", String(16)),
    Column("label", String(32)),
    Column("compose_type", String(16), nullable=False),
    Column("date", String(8), nullable=False),
    Column("respin", Integer, nullable=False),
    Column("builder", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

images = Table(
    "images", metadata,
    _compose_fk(),
    Column("job_key", String(64), primary_key=True),
    Column("nvra", Text, nullable=False),
    Column("arch", String(16), nullable=False),
    Column("image_type", String(32), nullable=False),
    Column("subvariant", String(64), nullable=False),
    Column("optional", Boolean, nullable=False),
)

# Step records of the manifest: build:<image>, process:<image>, and whatever steps come later.
steps = Table(
    "steps", metadata,
    _compose_fk(),
    Column("step", String(128), primary_key=True),
    Column("job_key", String(64)),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("digest", String(64), nullable=False, default=""),
    Column("updated_at", UTCDateTime, nullable=False),
)

# How the boot gate booted each image: the platform the guest was shown (its label: "ec2
# (imds v2)", "openstack (config-drive)", "nocloud") and the accelerator; the verdict itself is
# the image's boottest step.
boot_tests = Table(
    "boot_tests", metadata,
    _compose_fk(),
    Column("job_key", String(64), primary_key=True),
    Column("platform", String(64), nullable=False, default=""),
    Column("accel", String(16), nullable=False, default=""),
    Column("recorded_at", UTCDateTime, nullable=False),
)

# Builder task ids (Koji task, Oz domain...), recorded the moment the builder has them.
builds = Table(
    "builds", metadata,
    _compose_fk(),
    Column("job_key", String(64), primary_key=True),
    Column("builder", String(32), nullable=False, default=""),
    Column("external_id", Text, nullable=False, default=""),
    Column("info", Text, nullable=False, default="{}"),  # the rest of the builder's record, JSON
    Column("recorded_at", UTCDateTime, nullable=False),
)

artifacts = Table(
    "artifacts", metadata,
    _compose_fk(),
    Column("job_key", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("image_type", String(32), nullable=False),
    Column("arch", String(16), nullable=False),
    Column("intent", String(32), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("bootable", Boolean, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

# AMIs per image and region, from the EC2 publisher's compose/metadata/ec2.json.
amis = Table(
    "amis", metadata,
    _compose_fk(),
    Column("nvra", String(200), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("ami_id", String(64), nullable=False),
    Column("snapshot_ids", Text, nullable=False, default="[]"),  # JSON list
    Column("public", Boolean, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

status_changes = Table(
    "status_changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("compose_id", String(200), ForeignKey("composes.compose_id", ondelete="CASCADE"),
           nullable=False),
    Column("status", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_status_changes_compose", "compose_id", "id"),
)

# Scheduler firings. The unique (kind, subject, slot) row is the claim: whoever inserts it
# fires, so a milestone fires once however many beats run or restart.
firings = Table(
    "firings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # milestone, weekly, manual
    Column("subject", String(64), nullable=False),  # release key or stream name
    Column("slot", String(64), nullable=False),  # milestone name or the cron time it belongs to
    Column("due", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(200), nullable=False),
    Column("compose_id", String(200)),  # set once queued
    UniqueConstraint("kind", "subject", "slot", name="uq_firings_slot"),
)

# The transactional outbox: every message is inserted in the same transaction as the store change
# it announces, then sent in `seq` order. `message_id` is stable (rel_eng.messaging.bodies), so a
# re-derived message inserts nothing and a resend carries the same id. No foreign key: messages
# outlive a deleted compose row until sent.
outbox = Table(
    "outbox", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("topic", String(255), nullable=False),
    Column("compose_id", String(200), nullable=False),
    Column("body", Text, nullable=False),  # JSON; never holds broker URLs or secrets
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Index("ix_outbox_pending", "sent_at", "seq"),
)

# One row: who is flushing the outbox right now, so two processes never interleave (order) or
# both send a message. A lease, so a killed flusher blocks nobody for long.
outbox_lease = Table(
    "outbox_lease", metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("until", UTCDateTime, nullable=False),
)

# Drops staged into the mirror tree (the state change a "drop staged" message announces).
staged_drops = Table(
    "staged_drops", metadata,
    _compose_fk(),
    Column("mirror_path", Text, nullable=False),
    Column("files", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("staged_at", UTCDateTime, nullable=False),
)

# Messages a consumer handled (or is handling): its action runs once per message id.
consumed = Table(
    "consumed_messages", metadata,
    Column("consumer", String(64), primary_key=True),
    Column("message_id", String(64), primary_key=True),
    Column("topic", String(255), nullable=False),
    Column("state", String(16), nullable=False),  # running, done
    Column("holder", String(200), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime),
)

# The candidate released for each milestone (rel_eng.release): one row per release and
# milestone, and every act on it (released, opened, replaced, withdrawn) in release_events.
releases = Table(
    "releases", metadata,
    Column("release_key", String(64), primary_key=True),
    Column("milestone", String(16), primary_key=True),
    Column("compose_id", String(200), nullable=False),
    Column("label", String(32), nullable=False),
    Column("state", String(16), nullable=False),  # closed, open, withdrawn
    Column("mirror_path", Text, nullable=False),
    Column("released_by", String(200), nullable=False),
    Column("released_at", UTCDateTime, nullable=False),
    Column("files", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("amis", Text, nullable=False, default="{}"),  # JSON {nvra: {region: ami id}}
    Column("note", Text, nullable=False, default=""),  # "not verified by a boot", what is missing
)

release_events = Table(
    "release_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release_key", String(64), nullable=False),
    Column("milestone", String(16), nullable=False),
    Column("compose_id", String(200), nullable=False),
    Column("action", String(16), nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_release_events", "release_key", "milestone", "id"),
)
