"""[celery] settings, routing, the canvas and the task wrappers, without a running worker."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import distributed_builders  # noqa: E402
from distributed_support import free_port  # noqa: E402
from fake_clock import FakeClock  # noqa: E402

from rel_eng import cli  # noqa: E402
from rel_eng.compose import FINISHED, allocate, create, prepare_inputs  # noqa: E402
from rel_eng.config import Config, load_config  # noqa: E402
from rel_eng.compose import locks  # noqa: E402
from rel_eng.compose.locks import StepBusy  # noqa: E402
from rel_eng.distributed import routing, tasks  # noqa: E402
from rel_eng.distributed.broker import check_reachable  # noqa: E402
from rel_eng.distributed.canvas import compose_canvas  # noqa: E402
from rel_eng.distributed.celery_app import make_app  # noqa: E402
from rel_eng.config.celery import CelerySettings, effective  # noqa: E402
from rel_eng.errors import ConfigError, InputError  # noqa: E402

DATE = dt.date(2013, 5, 28)
distributed_builders.register()


@pytest.fixture(autouse=True)
def _no_url_overrides(monkeypatch):
    for var in ("REL_ENG_BROKER_URL", "REL_ENG_RESULT_BACKEND"):
        monkeypatch.delenv(var, raising=False)


def config_file(tmp_path: Path, celery: str) -> Path:
    path = tmp_path / "rel-eng.toml"
    path.write_text("[compose]\ndisk_size_gib = 1\n\n[celery]\n" + celery)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return err.value.problems


def test_celery_table_parses_and_round_trips_through_json(tmp_path):
    path = config_file(tmp_path, 'broker_url = "redis://broker.example:6379/1"\n'
                                 "visibility_timeout = 7200\nmax_retries = 5\n"
                                 '[celery.routes]\n"build.synthetic.i686" = "oz.x86_64"\n')
    config = load_config(path)
    s = config.celery
    assert s.broker_url == "redis://broker.example:6379/1"
    assert s.backend_url == s.broker_url  # result backend follows the broker unless set
    assert (s.visibility_timeout, s.max_retries) == (7200, 5)
    assert s.route_map()["build.synthetic.i686"] == "oz.x86_64"
    assert s.route_map()["build"] == "oz.$arch"  # defaults kept beside the override
    again = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert load_config().celery == CelerySettings()


def test_unknown_queue_and_bad_values_are_reported_with_file_and_key(tmp_path):
    path = config_file(tmp_path, 'broker_url = "amqp://guest@localhost//"\n'
                                 "visibility_timeout = 600\nretry_backoff_max = 900\n"
                                 "colour = 'blue'\n"
                                 '[celery.routes]\nbuild = "oz.$arch"\n'
                                 '"build.synthetic.x86_64" = "oz.s390x"\nprocess = "uploads"\n'
                                 '"build.nosuch" = "koji"\n')
    found = problems_of(path)
    where = f"{path}: celery."
    expected = [
        f"{where}routes.build.synthetic.x86_64: unknown queue 'oz.s390x'",
        f"{where}routes.process: unknown queue 'uploads'",
        f"{where}routes.build.nosuch: unknown builder 'nosuch'",
        f"{where}broker_url: 'amqp://guest@localhost//' is not a Redis URL",
        f"{where}retry_backoff_max: must be shorter than celery.visibility_timeout (600s)",
        f"{where}colour: unknown key",
    ]
    for line in expected:  # non-empty: the literal list above
        assert any(p.startswith(line) for p in found), (line, found)


def test_routing_sends_vm_builds_per_arch_and_koji_to_its_light_queue():
    s = CelerySettings()
    plan_jobs = {j.arch: j for j in allocate(load_config(), Path("/nonexistent"), "19", "Beta",
                                             DATE).images}
    assert routing.build_queue(s, "synthetic", plan_jobs["x86_64"]) == "oz.x86_64"
    assert routing.build_queue(s, "oz", plan_jobs["i686"]) == "oz.i686"
    assert routing.build_queue(s, "koji", plan_jobs["i686"]) == "koji"
    assert routing.step_queue(s, "process") == "process"
    assert routing.step_queue(s, "finalize") == "publish"
    one_host = CelerySettings(routes=s.routes + (("build.oz.i686", "oz.x86_64"),))
    assert routing.build_queue(one_host, "oz", plan_jobs["i686"]) == "oz.x86_64"
    assert routing.check_worker_queues(s, ["oz.x86_64", "oz.i686", "oz.x86_64"], "x") == \
        ["oz.x86_64", "oz.i686"]
    with pytest.raises(InputError, match="--queues: unknown queue 'oz.s390x'"):
        routing.check_worker_queues(s, ["oz.s390x"], "x")


def test_environment_overrides_urls():
    s = CelerySettings()
    env = {"REL_ENG_BROKER_URL": "redis://redis:6379/0"}
    assert effective(s, env).broker_url == "redis://redis:6379/0"
    assert effective(s, env).backend_url == "redis://redis:6379/0"
    assert effective(s, {}) == s


def test_unreachable_broker_is_one_bounded_input_error(tmp_path, monkeypatch):
    import redis

    s = CelerySettings(broker_url=f"redis://127.0.0.1:{free_port()}/0", connect_timeout=2)
    clients = []
    real = redis.Redis.from_url

    def from_url(url, **kw):
        clients.append(kw)
        return real(url, **kw)
    monkeypatch.setattr(redis.Redis, "from_url", from_url)
    with pytest.raises(InputError) as err:
        check_reachable(s, "/etc/rel-eng.toml")
    # Bounded: connecting and every reply wait at most connect_timeout (a blackholed host).
    assert clients == [{"socket_connect_timeout": 2, "socket_timeout": 2}]
    assert err.value.exit_code == 2
    assert str(err.value).startswith(
        f"/etc/rel-eng.toml: celery.broker_url: cannot reach Redis at {s.broker_url}")


def test_cli_rejects_bad_queue_and_unreachable_broker_before_any_work(tmp_path, capsys):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    bad = config_file(tmp_path, f'broker_url = "{dead}"\n[celery.routes]\nprocess = "nope"\n')
    assert cli.main(["validate", "--config", str(bad)]) == 2
    assert f"{bad}: celery.routes.process: unknown queue 'nope'" in capsys.readouterr().err

    cfg = config_file(tmp_path, f'broker_url = "{dead}"\nconnect_timeout = 1\n')
    assert cli.main(["validate", "--config", str(cfg)]) == 2
    assert f"{cfg}: celery.broker_url: cannot reach Redis at {dead}" in capsys.readouterr().err

    assert cli.main(["worker", "--config", str(cfg), "--queues", "oz.x86_64,oz.s390x"]) == 2
    assert "--queues: unknown queue 'oz.s390x'" in capsys.readouterr().err
    assert cli.main(["worker", "--config", str(cfg), "--queues", "oz.x86_64"]) == 2
    assert "cannot reach Redis" in capsys.readouterr().err

    out = tmp_path / "out"
    assert cli.main(["compose", "--queue", "--config", str(cfg), "--release", "19",
                     "--milestone", "Beta", "--date", "2013-05-28", "--output", str(out)]) == 2
    assert "cannot reach Redis" in capsys.readouterr().err
    assert not out.exists()  # checked before anything was written


@pytest.fixture
def new_compose(tmp_path):
    def make(builder: str = "synthetic"):
        config = load_config(config_file(tmp_path, "visibility_timeout = 60\nretry_backoff_max = 10\n"))
        plan = allocate(config, tmp_path / "out", "19", "Beta", DATE, builder=builder)
        return create(config, plan, tmp_path / "out", prepare_inputs(config, plan))
    return make


def test_canvas_is_a_chord_of_build_process_chains_then_finalize(new_compose, tmp_path):
    c = new_compose()
    s = CelerySettings()
    app = make_app(s)
    canvas = compose_canvas(app, c, tmp_path / "mirror", s)
    chains = canvas.tasks
    assert len(chains) == len(c.plan.images)
    top = str(c.topdir)
    for job, ch in zip(c.plan.images, chains):
        build, process, boottest = ch.tasks
        assert (build.task, build.args, build.options["queue"]) == \
            ("rel_eng.step.build", (top, job.key), f"oz.{job.arch}")
        assert (process.task, process.args, process.options["queue"]) == \
            ("rel_eng.step.process", (top, job.key), "process")
        assert (boottest.task, boottest.args, boottest.options["queue"]) == \
            ("rel_eng.step.boottest", (top, job.key), "boottest")
        assert build.immutable and process.immutable and boottest.immutable
    body = canvas.body
    assert (body.task, body.args) == ("rel_eng.step.finalize", (top, str(tmp_path / "mirror")))
    assert body.options["queue"] == "publish"
    assert [e["task"] for e in body.options["link_error"]] == [tasks.DOOM]
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == s.visibility_timeout
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"


def test_the_generic_step_task_is_idempotent_per_compose_image_and_step(new_compose, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv(distributed_builders.BUILD_SECONDS_ENV, "0")
    c = new_compose("slow-synthetic")
    key = c.plan.images[0].key
    top, mirror = str(c.topdir), str(tmp_path / "mirror")

    def step(name, target=key):
        return tasks.run_step(top, name, target, lock_timeout=5)

    first = step("build")
    again = step("build")
    assert first == again == {"job": key, "ok": True}
    assert [e[0] for e in distributed_builders.read_events(c.topdir)] == ["start", "done"]
    files = step("process")
    mtimes = {f: (c.topdir / f).stat().st_mtime_ns for f in files["files"]}
    assert step("process") == files
    assert {f: (c.topdir / f).stat().st_mtime_ns for f in files["files"]} == mtimes
    with pytest.raises(tasks.NotSettled):  # not boot-tested yet
        step("finalize", mirror)
    # synthetic images are not bootable: recorded as skipped, the same on every delivery
    assert step("boottest") == step("boottest") == {"job": key, "boot_test": "skipped"}

    with pytest.raises(tasks.NotSettled):  # other images are not processed yet
        step("finalize", mirror)
    for job in c.plan.images[1:]:
        for name in ("build", "process", "boottest"):
            step(name, job.key)
    assert step("finalize", mirror) == FINISHED
    drop = tmp_path / "mirror" / c.plan.mirror_path
    before = {p: p.stat().st_ino for p in drop.rglob("*")}
    assert step("finalize", mirror) == FINISHED
    assert {p: p.stat().st_ino for p in drop.rglob("*")} == before  # not staged again
    assert tasks.step_of("rel_eng.step.process", (top, key)) == f"process:{key}"
    assert tasks.step_of("rel_eng.step.finalize", (top, mirror)) == "finalize"


def test_a_step_held_by_another_delivery_waits_then_gives_up(new_compose):
    c = new_compose()
    held, release = threading.Event(), threading.Event()

    def holder():  # another delivery: the lock re-enters within one thread, so use a second
        with tasks.step_lock(c, "build:x", timeout=1):
            held.set()
            release.wait(10)

    other = threading.Thread(target=holder)
    other.start()
    try:
        assert held.wait(10)
        clock = FakeClock()
        with pytest.raises(StepBusy, match="still held by another worker or run after 1s"):
            with tasks.step_lock(c, "build:x", timeout=1, clock=clock, sleep=clock.sleep):
                pass
        assert clock.sleeps == [locks.POLL_S] * 2  # polled until the deadline, then gave up
    finally:
        release.set()
        other.join()
    with tasks.step_lock(c, "build:x", timeout=1):  # released: free again
        pass


def test_a_step_lock_is_taken_once_its_holder_lets_go(new_compose):
    c = new_compose()
    clock = FakeClock()
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder():  # another delivery, in another thread (a thread re-enters its own lock)
        with tasks.step_lock(c, "process:x", timeout=1):
            held.set()
            release.wait(10)
        done.set()

    def sleep(seconds):
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:
            release.set()  # the other delivery finishes during the third wait
            assert done.wait(10)

    other = threading.Thread(target=holder)
    other.start()
    try:
        assert held.wait(10)
        with tasks.step_lock(c, "process:x", timeout=60, clock=clock, sleep=sleep):
            assert clock.sleeps == [locks.POLL_S] * 3
    finally:
        release.set()
        other.join()