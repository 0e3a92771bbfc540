"""The "drop staged" consumer: the seam where the mirror publishing step plugs in.

For each "drop staged" message it runs the configured sync command (argv only, through
rel_eng.runner), once per message id however often the message is delivered: the id is claimed
in the store before the command runs and marked done after it succeeded. A failing command gives
the claim back and nacks, so the broker requeues the message and a later delivery retries.
A claim whose holder died (or that is older than the sync timeout) is taken over. A body that
fails its schema is logged with its id and rejected without requeue (into the dead-letter queue
when [messaging] names one): one bad message never stops the consumer.

Run it as `rel-eng consume`, or with fedora-messaging's own runner:
`fedora-messaging consume --callback=rel_eng.messaging.consumer:MirrorSyncConsumer`, whose
[consumer_config] names the pipeline config (`rel_eng_config`) and the output dir (`output`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from pathlib import Path, PurePosixPath
from typing import Callable

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from rel_eng.atomic import pid_alive
from rel_eng import runner
from rel_eng.errors import CommandFailed, InputError, ToolMissing
from rel_eng.messaging.bodies import DROP_STAGED, RELEASE_PUBLISHED

# A released tree is synced as a staged drop is: same command, its own mirror path.
SYNCED = (DROP_STAGED, RELEASE_PUBLISHED)
from rel_eng.config.messaging import MessagingConfig
from rel_eng.store import schema

log = logging.getLogger(__name__)

T = schema.consumed
CONSUMER = "mirror-sync"
RUN, DONE, BUSY = "run", "done", "busy"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _alive(holder: str) -> bool:
    host, _, pid = holder.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's claim: trust it until it times out
    return pid_alive(int(pid))


class HandledIds:
    """Durable memory of the message ids a consumer handled, in the compose store."""

    def __init__(self, engine: Engine, consumer: str = CONSUMER, stale_after_s: float = 3600.0,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.engine = engine
        self.consumer = consumer
        self.stale_after = dt.timedelta(seconds=stale_after_s)
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}"

    def _where(self, message_id: str):
        return (T.c.consumer == self.consumer) & (T.c.message_id == message_id)

    def claim(self, message_id: str, topic: str) -> str:
        """RUN: ours to handle now; DONE: handled before; BUSY: someone is handling it."""
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                row = conn.execute(select(T).where(self._where(message_id))).first()
                if row is None:
                    conn.execute(T.insert().values(consumer=self.consumer, message_id=message_id,
                                                   topic=topic, state="running",
                                                   holder=self.holder, claimed_at=now))
                    return RUN
                if row.state == "done":
                    return DONE
                if _alive(row.holder) and now - row.claimed_at < self.stale_after:
                    return BUSY
                took = conn.execute(update(T).where(self._where(message_id),
                                                    T.c.holder == row.holder,
                                                    T.c.state == "running")
                                    .values(holder=self.holder, claimed_at=now))
                return RUN if took.rowcount == 1 else BUSY
        except IntegrityError:
            return BUSY  # claimed by another consumer a moment ago

    def done(self, message_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(T).where(self._where(message_id))
                         .values(state="done", done_at=self.clock()))

    def release(self, message_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(T).where(self._where(message_id), T.c.state == "running",
                                         T.c.holder == self.holder))

    def state(self, message_id: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(T.c.state).where(self._where(message_id))).first()
        return row.state if row else None


def sync_argv(cfg: MessagingConfig, body: dict, message_id: str) -> list[str]:
    fields = {"mirror_path": body["mirror_path"], "compose_id": body["compose_id"],
              "label": body.get("label") or "", "message_id": message_id}
    return [arg.format(**fields) for arg in cfg.sync_command]


def _safe_mirror_path(path: object) -> bool:
    if not isinstance(path, str) or not path or path.startswith("/") or "\x00" in path:
        return False
    return ".." not in PurePosixPath(path).parts


class MirrorSync:
    """The consumer callback. `run` and `sleep` are injectable for tests."""

    def __init__(self, cfg: MessagingConfig, handled: HandledIds,
                 run: Callable = runner.run, sleep: Callable[[float], None] = time.sleep):
        if not cfg.sync_command:
            raise InputError("[messaging] sync_command is empty: the consumer has nothing to run",
                             hint='e.g. sync_command = ["rsync", "-a", "/srv/mirror/{mirror_path}/", '
                                  '"master::fedora-alt/{mirror_path}/"]')
        self.cfg = cfg
        self.handled = handled
        self.run = run
        self.sleep = sleep

    def __call__(self, message) -> None:
        """Never raises anything but Drop (rejected, not requeued: dead-lettered when the queue
        has a dead-letter queue) and Nack (requeued): fedora-messaging stops the whole consumer
        on any other exception and requeues the message, which would stop it again at once."""
        from fedora_messaging.exceptions import Drop, Nack

        base = next((t for t in SYNCED if str(message.topic).endswith(t)), None)
        if base is None:
            return  # not ours: acknowledged, nothing to do
        mid = message.id
        problem = id_problem(mid) or body_problem(message.body, base)
        if problem:
            log.error("message %s rejected: its body does not match %s: %s", _shown(mid),
                      base, problem)
            raise Drop()
        body = message.body
        shown = _shown(mid)  # the id as a hostile sender wrote it, safe for one log line
        try:
            state = self.handled.claim(mid, message.topic)
        except Exception as exc:  # the store is unreachable: nothing claimed, try again later
            log.error("message %s: cannot claim it in the compose store (%s: %s); requeued, "
                      "retried in %gs", shown, type(exc).__name__, _shown(str(exc)),
                      self.cfg.retry_delay_s)
            self.sleep(self.cfg.retry_delay_s)
            raise Nack() from None
        if state == DONE:
            log.info("message %s (%s) already synced: acknowledged, not run again", shown,
                     _shown(body["compose_id"]))
            return
        if state == BUSY:
            log.info("message %s is being synced by another consumer: requeued", shown)
            self.sleep(self.cfg.retry_delay_s)
            raise Nack()
        try:  # from here on the claim is ours: every way out releases it or marks it done
            self.run(sync_argv(self.cfg, body, mid), timeout=self.cfg.sync_timeout_s)
            self.handled.done(mid)
        except (CommandFailed, ToolMissing) as exc:
            self._give_back(mid, f"mirror sync of {body['mirror_path']} failed: {exc}")
            raise Nack() from None
        except Exception as exc:
            self._give_back(mid, f"mirror sync of {body['mirror_path']} (message {shown}) failed: "
                                 f"{type(exc).__name__}: {_shown(str(exc))}")
            raise Nack() from None
        except BaseException:
            self._release(mid)
            raise
        log.info("mirror sync of %s done (message %s)", body["mirror_path"], shown)

    def _release(self, mid: str) -> None:
        try:
            self.handled.release(mid)
        except Exception as exc:  # the claim goes stale and is taken over after sync_timeout_s
            log.warning("message %s: claim not released (%s); it is taken over once stale",
                        _shown(mid), type(exc).__name__)

    def _give_back(self, mid: str, why: str) -> None:
        self._release(mid)
        log.warning("%s; requeued, retried in %gs", why, self.cfg.retry_delay_s)
        self.sleep(self.cfg.retry_delay_s)


SHOWN = 200  # characters of a hostile value quoted in a log line


def _shown(value: object) -> str:
    """A value from a message, safe for one log line: printable, bounded."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value)[:SHOWN])
    return text + ("..." if len(str(value)) > SHOWN else "")


MAX_ID = 64  # the compose store's message_id column


def id_problem(mid: object) -> str:
    """Why a message id cannot key the claim ("" when it can): the id is what makes a sync
    happen once, so a message without a usable one is rejected like a bad body."""
    if not isinstance(mid, str) or not mid:
        return "no message id"
    if len(mid) > MAX_ID or not mid.isprintable():
        return f"unusable message id (more than {MAX_ID} characters, or not printable)"
    return ""


def body_problem(body: object, topic: str = DROP_STAGED) -> str:
    """Why a "drop staged" (or "release published") body fails its schema (rel_eng_messages)
    or the consumer's own rule for a mirror path; "" when it is fine."""
    import jsonschema
    import rel_eng_messages

    try:
        jsonschema.validate(body, rel_eng_messages.BY_TOPIC[topic].body_schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "body"
        return f"{where}: {_shown(exc.message)}"
    except jsonschema.SchemaError as exc:  # our own schema is broken: a bug, said plainly
        return f"schema error: {_shown(exc.message)}"
    if not _safe_mirror_path(body["mirror_path"]):
        return f"mirror_path: unsafe path {_shown(repr(body['mirror_path']))}"
    return ""


def bindings_and_queues(cfg: MessagingConfig) -> tuple[list[dict], dict]:
    """A durable queue bound to the "drop staged" and "release published" topics, with
    fedora-messaging's prefix."""
    from fedora_messaging import config as fm_config

    prefix = str(fm_config.conf["topic_prefix"] or "").rstrip(".")
    topics = [f"{prefix}.{t}" if prefix else t for t in SYNCED]
    bindings = [{"exchange": fm_config.conf["publish_exchange"], "queue": cfg.queue,
                 "routing_keys": topics}]
    # A message the consumer rejects (Drop: basic_nack without requeue) is dead-lettered by
    # the broker: through the default exchange, routed by name to the dead-letter queue.
    arguments = ({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": cfg.dead_letter_queue}
                 if cfg.dead_letter_queue else {})
    queues = {cfg.queue: {"durable": True, "auto_delete": False, "exclusive": False,
                          "arguments": arguments}}
    return bindings, queues


def mirror_sync(config, output: Path | None = None) -> MirrorSync:
    from rel_eng.store.engine import open_engine

    if not config.store.enabled:
        raise InputError("the consumer remembers handled message ids in the compose store",
                         hint=f"set [store] enabled = true in {config.source}")
    engine = open_engine(config.store.url_for(Path(output or config.schedule.output)))
    handled = HandledIds(engine, stale_after_s=config.messaging.sync_timeout_s + 60)
    return MirrorSync(config.messaging, handled)


class MirrorSyncConsumer:
    """For `fedora-messaging consume --callback=rel_eng.messaging.consumer:MirrorSyncConsumer`."""

    def __init__(self):
        from fedora_messaging import config as fm_config

        from rel_eng.config import load_config

        extra = fm_config.conf["consumer_config"] or {}
        path = extra.get("rel_eng_config")
        config = load_config(Path(path) if path else None)
        self._sync = mirror_sync(config, Path(extra["output"]) if extra.get("output") else None)

    def __call__(self, message) -> None:
        self._sync(message)
