"""Cost of the transactional outbox against a plain fedora-messaging publish loop, SQLite and
PostgreSQL side by side in one run.

Against the local RabbitMQ (127.0.0.1:5672, a vhost of its own made with rabbitmqctl and
deleted afterwards), with fedora-messaging's own `api.publish` (publisher confirms on), the
same message body each time (an "image built" body of a real compose's size). PostgreSQL runs
in a throw-away database (created, then dropped), SQLite in a temporary file.

  plain    N x api.publish(msg)                            (no durability: a crash loses it)
  change   N x a state change alone: one store transaction recording a step, as a compose does
  direct   N x (the same state change, then api.publish): a bare publish where a compose makes
           it, between its store writes; its cost is direct - change
  compose  N x (the same state change with the message inserted and the outbox's lease taken
           in its transaction, then flush: send, mark) - what a compose pays; the outbox's own cost is
           compose - change, against the bare publish (direct - change; goal <= 1.3x) and,
           for context, against the back-to-back plain loop
  each     N x (a transaction that only inserts the message, then flush): a commit of its own
           per message, bounded by the database's fsync - context, not a goal
  flush    N messages already pending, one `Flusher.flush()`: a catch-up flush (goal <= 1.1x)

Every variant of every store runs in alternating rounds (a loaded machine slows all alike).
Printed: the load average, ms per message, msgs/s and the ratios. No figure is asserted: the
test suite runs this with --count 20 --rounds 2 to prove it still runs.

Usage: python3 bench/messages.py [--count 300] [--rounds 30] [--stores sqlite,postgresql]
                                 [--pg-url postgresql+psycopg://... (an existing empty database)]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from rel_eng.messaging import bodies  # noqa: E402
from rel_eng.messaging.publisher import Publisher, build_message, require_config  # noqa: E402
from rel_eng.config.messaging import MessagingConfig  # noqa: E402
from rel_eng.store import outbox, schema  # noqa: E402
from rel_eng.store.engine import open_engine, upsert  # noqa: E402
from throwaway_db import throwaway_database  # noqa: E402

GOAL_COMPOSE = 1.3
GOAL_FLUSH = 1.1
CID = "Fedora-Cloud-19-20130528.0"
BODY = {
    "compose_id": CID, "nvra": "Fedora-Cloud-Base-19_Beta-1.1.x86_64",
    "arch": "x86_64", "subvariant": "Cloud_Base", "image_type": "generic",
    "builder": "koji", "task_ids": ["5551234"],
    "task_url": "https://koji.example.org/koji/taskinfo?taskID=5551234", "bootable": True,
    "artifacts": [{"path": f"compose/Cloud/x86_64/images/Fedora-Cloud-Base-19_Beta-1.1.x86_64.{k}",
                   "type": t, "format": f, "size": 300 * 1024 * 1024, "sha256": "ab" * 32}
                  for k, t, f in (("qcow2", "qcow2", "qcow2"), ("raw.tar.xz", "raw-xz", "tar.xz"))],
}


def ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def outgoing(key: str):
    return bodies.outgoing(CID, bodies.IMAGE_BUILT, key, BODY)


def add_compose(engine) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(schema.composes.insert().values(
            compose_id=CID, topdir="/srv/bench", release_key="19", release_version="19",
            milestone="Beta", label="Beta-1.1", compose_type="production", date="20130528",
            respin=1, builder="koji", status="STARTED", reason="", created_at=now,
            updated_at=now))


def state_change(conn, key: str, now: dt.datetime) -> None:
    """What a compose writes when an image is built: its step record."""
    upsert(conn, schema.steps, {"compose_id": CID, "step": f"build:{key}", "job_key": key,
                                "state": "done", "reason": "", "digest": "cd" * 32,
                                "updated_at": now}, ("compose_id", "step"))


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Store:
    """One store's engine and its running totals (seconds) per variant: wall time, and CPU
    time (this process's, plus for PostgreSQL its server processes' serving this database)."""

    def __init__(self, name: str, url: str, publisher: Publisher):
        self.name = name
        self.url = url
        self.engine = open_engine(url)
        self.publisher = publisher
        self.total = {"change": 0.0, "direct": 0.0, "compose": 0.0, "each": 0.0, "flush": 0.0}
        self.cpu = dict.fromkeys(self.total, 0.0)
        add_compose(self.engine)
        self.backends: list[int] = []

    def find_backends(self) -> None:
        """After the warm-up: the PostgreSQL server processes of this database's connections."""
        if self.name != "postgresql":
            return
        with self.engine.connect() as conn:
            self.backends = [r[0] for r in conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]

    def cpu_now(self) -> float:
        total = time.process_time()
        for pid in self.backends:
            try:
                total += proc_cpu_s(pid)
            except FileNotFoundError:
                pass
        return total

    def timed(self, variant: str, fn) -> None:
        c0, t0 = self.cpu_now(), time.perf_counter()
        fn()
        self.total[variant] += time.perf_counter() - t0
        self.cpu[variant] += self.cpu_now() - c0

    def flusher(self) -> outbox.Flusher:
        return outbox.Flusher(self.engine, self.publisher)  # a new one per flush, as a compose

    def round(self, r: int, chunk: int) -> None:
        def change() -> None:
            for i in range(chunk):
                with self.engine.begin() as conn:
                    state_change(conn, f"change-{r}-{i}", utcnow())

        def direct() -> None:
            from fedora_messaging import api

            for i in range(chunk):
                with self.engine.begin() as conn:
                    state_change(conn, f"direct-{r}-{i}", utcnow())
                api.publish(build_message(bodies.IMAGE_BUILT, BODY, str(uuid.uuid4())))

        def compose() -> None:
            for i in range(chunk):
                key = f"compose-{r}-{i}"
                flusher = self.flusher()
                with self.engine.connect() as conn:  # as the compose's recorder writes
                    with conn.begin():
                        now = utcnow()
                        state_change(conn, key, now)
                        outbox.enqueue(conn, [outgoing(key)], now)
                        claimed = flusher.claim(conn)
                    result = flusher.flush(conn=conn, claimed=claimed)
                assert result.sent == 1 and not result.error, result

        def each() -> None:
            for i in range(chunk):
                with self.engine.begin() as conn:
                    outbox.enqueue(conn, [outgoing(f"each-{r}-{i}")], utcnow())
                result = self.flusher().flush()
                assert result.sent == 1 and not result.error, result

        def flush() -> None:
            result = self.flusher().flush()
            assert result.sent == chunk and result.pending == 0, result

        self.timed("change", change)
        self.timed("direct", direct)
        self.timed("compose", compose)
        self.timed("each", each)
        with self.engine.begin() as conn:
            outbox.enqueue(conn, [outgoing(f"flush-{r}-{i}") for i in range(chunk)], utcnow())
        self.timed("flush", flush)


def verdict(ratio: float, goal: float) -> str:
    return f"goal <= {goal}x: {'met' if ratio <= goal else 'MISSED'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=300, help="messages per variant")
    ap.add_argument("--rounds", type=int, default=30,
                    help="alternating rounds (more, smaller rounds: noise hits all variants alike)")
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--pg-url", default="", help="an existing empty PostgreSQL database "
                                                 "(default: a throw-away one)")
    args = ap.parse_args()
    names = [s for s in args.stores.split(",") if s]
    unknown = set(names) - {"sqlite", "postgresql"}
    if unknown or not names or args.count < 1 or not 1 <= args.rounds <= args.count:
        ap.error("--stores takes sqlite and/or postgresql; --count >= --rounds >= 1")
    chunk = args.count // args.rounds
    n = chunk * args.rounds

    vhost = f"rel-eng-bench-{uuid.uuid4().hex[:8]}"
    ctl("add_vhost", vhost)
    try:
        ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        with tempfile.TemporaryDirectory(prefix="rel-eng-bench-") as tmp, \
                contextlib.ExitStack() as stack:
            conf = Path(tmp) / "fedora-messaging.toml"
            conf.write_text(f'amqp_url = "amqp://guest:guest@127.0.0.1:5672/{vhost}"\n'
                            'topic_prefix = "org.example.bench"\n')
            cfg = MessagingConfig(enabled=True, config_file=str(conf), publish_timeout_s=30)
            require_config(cfg)
            from fedora_messaging import api

            publisher = Publisher(cfg)
            stores = []
            for name in names:
                if name == "sqlite":
                    url = f"sqlite:///{tmp}/rel-eng.db"
                else:
                    url = args.pg_url or stack.enter_context(throwaway_database())
                store = Store(name, url, publisher)
                stack.callback(store.engine.dispose)
                stores.append(store)

            # Warm up: the connection, the schema classes, SQLAlchemy's statement caches.
            api.publish(build_message(bodies.IMAGE_BUILT, BODY, str(uuid.uuid4())))
            for store in stores:
                store.round(-1, 2)
                store.find_backends()
                store.total = dict.fromkeys(store.total, 0.0)
                store.cpu = dict.fromkeys(store.total, 0.0)

            load0 = os.getloadavg()
            plain = plain_cpu = 0.0
            for r in range(args.rounds):
                c0, t0 = time.process_time(), time.perf_counter()
                for _ in range(chunk):
                    api.publish(build_message(bodies.IMAGE_BUILT, BODY, str(uuid.uuid4())))
                plain += time.perf_counter() - t0
                plain_cpu += time.process_time() - c0
                for store in stores:
                    store.round(r, chunk)
            load1 = os.getloadavg()
    finally:
        ctl("delete_vhost", vhost)

    plain /= n
    plain_cpu /= n
    print(f"messages: {n} per variant in {args.rounds} alternating rounds, local RabbitMQ "
          f"(publisher confirms), {os.cpu_count()} CPUs, load average "
          f"{load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} before, "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} after")
    print(f"  plain api.publish loop       {plain * 1e3:7.3f} ms/msg {1 / plain:7.0f} msgs/s  "
          f"(CPU {plain_cpu * 1e3:.3f} ms/msg)")
    print("  (CPU: this process's, and for PostgreSQL its database server processes'; RabbitMQ's "
          "is in neither; a context figure that hardly depends on the machine's load)")
    for store in stores:
        t = {k: v / n for k, v in store.total.items()}
        c = {k: v / n for k, v in store.cpu.items()}
        cost = t["compose"] - t["change"]
        cpu_cost = c["compose"] - c["change"]
        bare = t["direct"] - t["change"]
        print(f"  {store.name}:")
        print(f"    state change alone          {t['change'] * 1e3:7.3f} ms")
        print(f"    state change, then publish  {t['direct'] * 1e3:7.3f} ms  (a bare publish "
              f"where a compose makes it: {bare * 1e3:.3f} ms)")
        print(f"    state change + message      {t['compose'] * 1e3:7.3f} ms  (insert in its "
              f"transaction, then flush)")
        print(f"    outbox, what a compose pays {cost * 1e3:7.3f} ms/msg  ratio "
              f"{cost / bare:5.2f}x the bare publish  ({verdict(cost / bare, GOAL_COMPOSE)}); "
              f"{cost / plain:.2f}x the plain loop; CPU {cpu_cost * 1e3:.3f} ms/msg, "
              f"{cpu_cost / plain_cpu:.2f}x the plain loop's")
        print(f"    catch-up flush, {chunk:>3} a time  {t['flush'] * 1e3:7.3f} ms/msg  ratio "
              f"{t['flush'] / plain:5.2f}x plain  ({verdict(t['flush'] / plain, GOAL_FLUSH)}); CPU "
              f"{c['flush'] * 1e3:.3f} ms/msg, {c['flush'] / plain_cpu:.2f}x plain's")
        print(f"    commit per message (context) {t['each'] * 1e3:6.3f} ms/msg  ratio "
              f"{t['each'] / plain:5.2f}x plain  (insert in a transaction of its own)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
