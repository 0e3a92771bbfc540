"""Real redis-server and real `rel-eng worker` processes for the distributed tests.

Everything listens on 127.0.0.1 with an ephemeral port, every wait has a deadline, and every
process started here is stopped by the fixture that started it (its whole process group).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
WORKER_SCRIPT = HERE / "distributed_worker.py"
ALL_QUEUES = "oz.x86_64,oz.i686,koji,process,boottest,publish"
URL_ENV = ("REL_ENG_BROKER_URL", "REL_ENG_RESULT_BACKEND")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    """redis-server on 127.0.0.1:<ephemeral>; `persistent` keeps data across restart (AOF)."""

    def __init__(self, workdir: Path, persistent: bool = False, password: str = ""):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.persistent = persistent
        self.password = password  # requirepass; `url` stays without it, `secret_url` has it
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def secret_url(self) -> str:
        """The URL with the password, percent-encoded as URLs need it."""
        from urllib.parse import quote

        return f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5,
                           socket_connect_timeout=2, password=self.password or None)

    def start(self) -> "RedisServer":
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")]
        if self.persistent:
            # A restart keeps queued and unacknowledged messages, as a production Redis does.
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._pings, 30, f"redis-server on port {self.port}")
        return self

    def _pings(self) -> bool:
        try:
            with self.client() as c:
                return bool(c.ping())
        except (redis.RedisError, OSError):
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # graceful: an AOF server flushes before it exits
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def commands_processed(self) -> int:
        with self.client() as c:
            return sum(v["calls"] for k, v in c.info("commandstats").items())


class Worker:
    """A real `rel-eng worker` process (with the test builders registered) in its own group."""

    def __init__(self, name: str, config: Path, logdir: Path, queues: str = ALL_QUEUES,
                 concurrency: int = 1, build_seconds: float = 2.0, pool: str = "prefork",
                 env: dict[str, str] | None = None):
        self.name, self.config, self.queues = name, config, queues
        self.env = dict(env or {})  # on top of ours, without the URL overrides
        self.concurrency, self.build_seconds, self.pool = concurrency, build_seconds, pool
        self.log = logdir / f"worker-{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Worker":
        env = {k: v for k, v in os.environ.items() if k not in URL_ENV}
        env["REL_ENG_TEST_BUILD_SECONDS"] = str(self.build_seconds)
        env.update(self.env)
        argv = [sys.executable, str(WORKER_SCRIPT), "worker", "--config", str(self.config),
                "--queues", self.queues, "--concurrency", str(self.concurrency),
                "--pool", self.pool, "--name", f"{self.name}@test", "--loglevel", "INFO"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        wait_for(self._ready, 120, f"worker {self.name} ready (log {self.log})")
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} exited {self.proc.returncode}:\n"
                                 + self.log.read_text()[-3000:])
        return b" ready." in self.log.read_bytes()

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the worker leads its own group

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): a host that died."""
        os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pgid, signal.SIGKILL)  # pool children left behind, if any
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self.proc = None


def unacked_tasks(redis_url: str) -> list[dict]:
    """The headers (task name, id, argsrepr) of every message delivered but not acknowledged."""
    from kombu import Connection

    with Connection(redis_url) as conn:
        channel = conn.default_channel
        raw = channel.client.hvals(channel.qos.unacked_key)
    return [json.loads(p)[0]["headers"] for p in raw]


def restore_unacked(redis_url: str, select) -> int:
    """Hand back to their queues the unacknowledged messages whose headers `select` picks.

    What the Redis transport does by itself once the visibility timeout has passed, done now:
    a test of redelivery then waits on no clock. Returns how many were restored.
    """
    from kombu import Connection

    restored = 0
    with Connection(redis_url) as conn:
        channel = conn.default_channel
        qos = channel.qos
        for tag, payload in channel.client.hgetall(qos.unacked_key).items():
            if select(json.loads(payload)[0]["headers"]):
                qos.restore_by_tag(tag, client=channel.client, leftmost=True)
                restored += 1
    return restored


def write_config(path: Path, redis_url: str, *, visibility_timeout: int = 30,
                 max_retries: int = 2, retry_backoff: int = 1, extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "[compose]\ndisk_size_gib = 1\n\n"
        f'[celery]\nbroker_url = "{redis_url}"\nvisibility_timeout = {visibility_timeout}\n'
        f"max_retries = {max_retries}\nretry_backoff = {retry_backoff}\nretry_backoff_max = 4\n"
        + extra)
    return path
