"""Cost of the transactional outbox against a plain fedora-messaging publish loop.

Against the local RabbitMQ (127.0.0.1:5672, a vhost of its own made with rabbitmqctl and
deleted afterwards), with fedora-messaging's own `api.publish` (publisher confirms on), the
same message body each time (an "image built" body of a real compose's size):

  plain    N x api.publish(msg)                              (no durability: a crash loses it)
  outbox   N x (store transaction that inserts the message, then flush: lease, send, mark)
           - what a compose pays per message, the store write included
  flush    N messages already pending, one `Flusher.flush()` - throughput of a catch-up flush

The three run in alternating rounds (a loaded machine slows all alike). Printed: time per
message for each, the outbox/plain ratio (target <= 1.5) and msgs/s.
The store is SQLite (the default) unless --store-url names another database.

Usage: python3 bench/messages.py [--count 500] [--store-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rel_eng.messaging import bodies  # noqa: E402
from rel_eng.messaging.publisher import Publisher, build_message, require_config  # noqa: E402
from rel_eng.config.messaging import MessagingConfig  # noqa: E402
from rel_eng.store import outbox  # noqa: E402
from rel_eng.store.engine import open_engine  # noqa: E402

ROUNDS = 10

BODY = {
    "compose_id": "Fedora-Cloud-19-20130528.0", "nvra": "Fedora-Cloud-Base-19_Beta-1.1.x86_64",
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--store-url", default="")
    args = ap.parse_args()
    n = args.count

    vhost = f"rel-eng-bench-{uuid.uuid4().hex[:8]}"
    ctl("add_vhost", vhost)
    ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        with tempfile.TemporaryDirectory(prefix="rel-eng-bench-") as tmp:
            conf = Path(tmp) / "fedora-messaging.toml"
            conf.write_text(f'amqp_url = "amqp://guest:guest@127.0.0.1:5672/{vhost}"\n'
                            'topic_prefix = "org.example.bench"\n')
            cfg = MessagingConfig(enabled=True, config_file=str(conf), publish_timeout_s=30)
            require_config(cfg)
            from fedora_messaging import api

            # Warm up: the connection, the schema classes, SQLAlchemy's statement cache.
            api.publish(build_message(bodies.IMAGE_BUILT, BODY, str(uuid.uuid4())))
            url = args.store_url or f"sqlite:///{tmp}/rel-eng.db"
            engine = open_engine(url)

            def outgoing(i: int, run: str):
                return bodies.outgoing(BODY["compose_id"], bodies.IMAGE_BUILT, f"{run}:{i}", BODY)

            flusher = outbox.Flusher(engine, Publisher(cfg))
            plain = each = batch = plain_b = 0.0
            chunk = max(1, n // ROUNDS)
            # Alternate the variants in rounds, so a busy machine slows all of them alike.
            for r in range(ROUNDS):
                t0 = time.perf_counter()
                for i in range(chunk):
                    api.publish(build_message(bodies.IMAGE_BUILT, BODY, str(uuid.uuid4())))
                plain += time.perf_counter() - t0

                t0 = time.perf_counter()
                for i in range(chunk):
                    with engine.begin() as conn:
                        outbox.enqueue(conn, [outgoing(r * chunk + i, "each")], utcnow())
                    result = flusher.flush()
                    assert result.sent == 1 and not result.error, result
                each += time.perf_counter() - t0

                with engine.begin() as conn:
                    outbox.enqueue(conn, [outgoing(r * chunk + i, f"batch") for i in range(chunk)],
                                   utcnow())
                t0 = time.perf_counter()
                result = flusher.flush()
                batch += time.perf_counter() - t0
                assert result.sent == chunk and result.pending == 0, result
            n = chunk * ROUNDS
            plain, each, batch = plain / n, each / n, batch
            engine.dispose()
    finally:
        ctl("delete_vhost", vhost)

    backend = url.split(":", 1)[0]
    print(f"messages: {n} per run, local RabbitMQ, store {backend}")
    print(f"  plain api.publish loop     {plain * 1e3:7.2f} ms/msg  {1 / plain:8.0f} msgs/s")
    print(f"  outbox (write + publish)   {each * 1e3:7.2f} ms/msg  {1 / each:8.0f} msgs/s"
          f"  ratio {each / plain:.2f}x (target <= 1.5x)")
    print(f"  flush, {n // ROUNDS} pending a time {batch / n * 1e3:7.2f} ms/msg  {n / batch:8.0f} msgs/s"
          f"  ratio {batch / n / plain:.2f}x")


if __name__ == "__main__":
    main()
