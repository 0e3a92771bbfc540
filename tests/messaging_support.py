"""RabbitMQ for the message tests: a vhost and user of its own per test, a tap queue, processes.

RabbitMQ runs on 127.0.0.1:5672 (`.ci/services.sh` starts it). Each test gets a fresh vhost and
a user with a random password (so the tests can prove the password is never printed or stored),
both deleted afterwards. The tap is a queue bound to every topic, read back with pika and turned
into messages with fedora-messaging's own `get_message`, which validates each against its schema.
rel-eng itself always runs in subprocesses: fedora-messaging keeps one config per process.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pytest

from distributed_support import free_port, wait_for  # noqa: F401  (re-exported for the bus tests)

RABBITMQCTL = "rabbitmqctl"
PREFIX = "org.example.test"
REL_ENG = [sys.executable, "-m", "rel_eng"]


def _ctl(*args: str) -> None:
    subprocess.run([RABBITMQCTL, "-q", *args], check=True, capture_output=True, timeout=60)


class Broker:
    """One vhost and user on the local RabbitMQ."""

    def __init__(self, workdir: Path, user: tuple[str, str]):
        self.vhost = f"rel-eng-test-{uuid.uuid4().hex[:10]}"
        self.user, self.password = user
        self.workdir = workdir
        self.conf = workdir / "fedora-messaging.toml"

    def start(self) -> "Broker":
        _ctl("add_vhost", self.vhost)
        _ctl("set_permissions", "-p", self.vhost, self.user, ".*", ".*", ".*")
        self.write_conf(self.conf, 5672)
        return self

    def stop(self) -> None:
        try:
            _ctl("delete_vhost", self.vhost)
        except subprocess.CalledProcessError:
            pass

    def url(self, port: int = 5672) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{port}/{self.vhost}"

    def write_conf(self, path: Path, port: int) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f'amqp_url = "{self.url(port)}?connection_attempts=1&retry_delay=1"\n'
            f'topic_prefix = "{PREFIX}"\npublish_exchange = "amq.topic"\n'
            '[client_properties]\napp = "rel-eng tests"\n'
            '[consumer_config]\n')
        return path

    def connection(self) -> pika.BlockingConnection:
        params = pika.ConnectionParameters(
            "127.0.0.1", 5672, self.vhost, pika.PlainCredentials(self.user, self.password))
        return pika.BlockingConnection(params)

    def tap(self) -> "Tap":
        return Tap(self)

    def queue_depth(self, queue: str) -> int | None:
        conn = self.connection()
        try:
            ch = conn.channel()
            try:
                return ch.queue_declare(queue, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker:
                return None
        finally:
            conn.close()


class Tap:
    """A queue bound to every topic of the vhost's amq.topic: what was sent, in order."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.queue = f"tap-{uuid.uuid4().hex[:8]}"
        conn = broker.connection()
        ch = conn.channel()
        ch.queue_declare(self.queue, durable=True)
        ch.queue_bind(self.queue, "amq.topic", routing_key="#")
        conn.close()

    def drain(self) -> list:
        """Every message now in the queue, as fedora-messaging messages (schema-validated)."""
        from fedora_messaging.message import get_message

        conn = self.broker.connection()
        out = []
        try:
            ch = conn.channel()
            while True:
                method, props, body = ch.basic_get(self.queue, auto_ack=True)
                if method is None:
                    break
                msg = get_message(method.routing_key, props, body)
                msg.validate()
                if ".fedora_image_uploader." in f".{msg.topic}":
                    from uploader_schema import check_ami_message

                    check_ami_message(msg.body, msg.topic.removeprefix(f"{PREFIX}."))
                out.append(msg)
        finally:
            conn.close()
        return out


@pytest.fixture(scope="session")
def amqp_user():
    """A user with a random password for the whole run (each test still has its own vhost)."""
    user = (f"rel-eng-{uuid.uuid4().hex[:10]}", f"pw-{secrets.token_hex(12)}")
    _ctl("add_user", *user)
    yield user
    try:
        _ctl("delete_user", user[0])
    except subprocess.CalledProcessError:
        pass


@pytest.fixture
def broker(tmp_path, amqp_user):
    b = Broker(tmp_path / "broker", amqp_user).start()
    yield b
    b.stop()


def rel_eng(args: list[str], conf: Path, *, check: bool = True, timeout: float = 300,
            extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "FEDORA_MESSAGING_CONF": str(conf), **(extra_env or {})}
    proc = subprocess.run([*REL_ENG, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"rel-eng {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc


class Consumer:
    """A real `rel-eng consume` process."""

    def __init__(self, config: Path, output: Path, conf: Path, log: Path):
        self.argv = [*REL_ENG, "consume", "--config", str(config), "--output", str(output)]
        self.env = {**os.environ, "FEDORA_MESSAGING_CONF": str(conf)}
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, broker: Broker, queue: str) -> "Consumer":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"consumer exited {self.proc.returncode}:\n{self.text()}")
            return broker.queue_depth(queue) is not None
        wait_for(ready, 60, "the consumer's queue")
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


# The sync command of the tests: logs each run, fails while a countdown file says so.
SYNC_SCRIPT = '''\
import pathlib, sys
log, countdown, message_id, mirror_path = sys.argv[1:5]
left = pathlib.Path(countdown)
n = int(left.read_text()) if left.exists() else 0
with open(log, "a") as fh:
    fh.write(f"{'fail' if n > 0 else 'sync'} {message_id} {mirror_path}\\n")
if n > 0:
    left.write_text(str(n - 1))
    sys.exit(3)
'''


def sync_command(workdir: Path, failures: int = 0) -> tuple[list[str], Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "sync.py"
    script.write_text(SYNC_SCRIPT)
    if failures:
        (workdir / "countdown").write_text(str(failures))
    log = workdir / "sync.log"
    return [sys.executable, str(script), str(log), str(workdir / "countdown"), "{message_id}",
            "{mirror_path}"], log


def sync_runs(log: Path) -> list[tuple[str, str, str]]:
    if not log.exists():
        return []
    return [tuple(line.split(" ", 2)) for line in log.read_text().splitlines()]
