"""`rel-eng beat` for real: redis-server, a Celery worker serving the schedule tasks, and beat
started twice. The milestone due today fires once, caught up by the tick beat sends at start."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from distributed_support import URL_ENV, RedisServer, wait_for  # noqa: E402

from rel_eng.paths import RELEASES_FILE  # noqa: E402
from rel_eng.store.engine import open_engine  # noqa: E402
from rel_eng.store.firings import FiringLedger  # noqa: E402

# The tasks beat sends run on a worker of the pipeline's app with the schedule tasks registered.
# The worker's clock is pinned (the tick reads beat.utcnow): the compose id carries the date.
TODAY = dt.date(2013, 5, 28)
WORKER = """
import datetime as dt
import sys
from pathlib import Path
from rel_eng.config import load_config
from rel_eng.distributed.celery_app import make_app
from rel_eng.config.celery import effective
from rel_eng.schedule import beat

beat.utcnow = lambda: dt.datetime(2013, 5, 28, 12, 0, tzinfo=dt.timezone.utc)
app = make_app(effective(load_config(Path(sys.argv[1])).celery))
beat.register(app)
# Every queue the fired compose uses has a worker (a firing asks the workers, so the pool is
# prefork: a solo worker busy with the tick could not answer); the schedule tasks run here.
app.worker_main(["worker", "--queues", "publish,oz.x86_64,oz.i686,process,boottest",
                 "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO",
                 "--hostname", "schedule@test", "--without-mingle", "--without-gossip"])
"""


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def start(argv: list[str], log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in URL_ENV}
    with open(log, "ab") as fh:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_beat_catches_up_a_milestone_once_across_restarts(tmp_path, redis_server):
    today = TODAY
    releases = RELEASES_FILE.read_text().replace(
        "milestones = { Alpha = 2013-05-07, Beta = 2013-05-28, Final = 2013-07-02 }",
        f"milestones = {{ Alpha = {today - dt.timedelta(days=20)}, Beta = {today}, "
        f"Final = {today + dt.timedelta(days=30)} }}")
    (tmp_path / "releases.toml").write_text(releases)
    (tmp_path / "streams.toml").write_text('[milestones]\ntime = "00:00"\n')
    out = tmp_path / "out"
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(f'[compose]\nreleases_file = "releases.toml"\n'
                   f'[celery]\nbroker_url = "{redis_server.url}"\n'
                   f'[schedule]\nstreams_file = "streams.toml"\noutput = "{out}"\n')
    (tmp_path / "worker.py").write_text(WORKER)
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker = start([sys.executable, str(tmp_path / "worker.py"), str(cfg)], worker_log)
    beats = []
    try:
        wait_for(lambda: b" ready." in worker_log.read_bytes(), 60, "the worker")
        for run in (1, 2):  # beat started, stopped, started again
            beat = start([sys.executable, "-m", "rel_eng", "beat", "--config", str(cfg),
                          "--schedule-db", str(tmp_path / "beat-state")], beat_log)
            beats.append(beat)
            wait_for(lambda: worker_log.read_text().count("rel_eng.schedule.tick") >= 2 * run
                     and worker_log.read_text().count("succeeded") >= run, 60,
                     f"tick {run} to run (worker log {worker_log})")
            assert beat.poll() is None, beat_log.read_text()
            stop(beat)
        engine = open_engine(f"sqlite:///{out / 'rel-eng.db'}", must_exist=True)
        try:
            rows = FiringLedger(engine).all()
        finally:
            engine.dispose()
    finally:
        for proc in beats + [worker]:
            stop(proc)
    assert [(r["kind"], r["subject"], r["slot"]) for r in rows] == [("milestone", "19", "Beta")]
    composes = sorted(p.name for p in out.iterdir() if p.name.startswith("Fedora-Cloud-19-"))
    assert composes == [rows[0]["compose_id"]] == [f"Fedora-Cloud-19-{today:%Y%m%d}.0"]
    # queued; the worker serves its queues too, so it may have run it already
    assert (out / composes[0] / "STATUS").read_text().strip() in ("STARTED", "FINISHED")


def test_beat_stops_at_start_on_bad_input(tmp_path, capsys):
    (tmp_path / "streams.toml").write_text('[[streams]]\nname = "rawhide"\nrelease = "rawhide"\n'
                                           'cron = "0 25 * * 1"\n')
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text('[schedule]\nstreams_file = "streams.toml"\n[store]\nenabled = false\n')
    from rel_eng.cli import main

    assert main(["beat", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rel-eng: error: {tmp_path / 'streams.toml'}: streams[0].cron: invalid cron expression "
        "'0 25 * * 1': [0 25 * * 1] is not acceptable, out of range")
    (tmp_path / "streams.toml").write_text("")
    assert main(["beat", "--config", str(cfg)]) == 2
    assert "the scheduler needs the compose store to claim firings" in capsys.readouterr().err
