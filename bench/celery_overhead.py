"""Scheduling overhead of the distributed engine: composes of 4 and 40 images.

Every build takes a fixed time (a builder that sleeps, then writes a 1 MiB raw file), so what
is left of the wall time is the engine's: submission (allocate, flatten kickstarts, render and
check TDLs, create the compose dir, send the canvas), queueing, post-processing, the chord,
finalize (metadata, staging). Measured with a real redis-server on 127.0.0.1 and real
`rel-eng worker` processes:

  - a build worker, `--pool threads --concurrency N`, standing in for N bare-metal hosts so all
    builds run at once (overhead = wall - longest build is only meaningful then);
    the build worker also serves `boottest`, as the bare-metal hosts do;
  - a light worker for every other declared queue (process, publish, koji), prefork, 2
    processes (this machine has 2 cores).

Printed per size: wall, overhead = wall - build time, submission time, Redis commands per
image from INFO commandstats (all clients, so the workers' idle polling is in it too; the idle
rate is measured first and printed), and the in-process post-processing + finalize time of the
same compose with 0 s builds, for scale.

Usage: python3 bench/celery_overhead.py [--build-seconds 5] [--sizes 4,40]
                                       [--process-workers 2] [--no-store]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rel_eng.builders import BUILDERS, BuildOutcome  # noqa: E402
from rel_eng.builders.synthetic import SyntheticBuilder, raw_path  # noqa: E402

SECONDS_ENV = "REL_ENG_BENCH_BUILD_SECONDS"
DATE = dt.date(2013, 5, 28)


class FixedTimeBuilder(SyntheticBuilder):
    """Sleeps a fixed time per image, then writes a small raw file: no mkfs, no VM."""

    name = "fixed-time"

    def wait(self, handles, timeout=None):
        out = []
        for handle in handles:
            req = self._requests[handle.job_key]
            time.sleep(float(os.environ.get(SECONDS_ENV, "0")))
            raw = raw_path(req)
            raw.parent.mkdir(parents=True, exist_ok=True)
            raw.write_bytes(req.job.nvra.encode().ljust(1 << 20, b"\0"))
            out.append(BuildOutcome(handle.job_key, True))
        return out


BUILDERS.setdefault(FixedTimeBuilder.name, FixedTimeBuilder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deadline_wait(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def write_config(path: Path, url: str, images: int, store: bool = True) -> Path:
    types = images // 2  # two arches per image type
    lines = ["[compose]", "disk_size_gib = 1", "", "[celery]", f'broker_url = "{url}"',
             "visibility_timeout = 600", "retry_backoff_max = 60", "",
             "[store]", f"enabled = {'true' if store else 'false'}", ""]
    for i in range(types):
        lines += [f"[images.t{i:02d}]", f'name = "Fedora-Cloud-Bench{i:02d}"',
                  f'subvariant = "Cloud_Bench{i:02d}"', 'kickstart = "fedora-cloud-base.ks"', ""]
    path.write_text("\n".join(lines))
    return path


def start_worker(cfg: Path, log: Path, queues: str, pool: str, concurrency: int,
                 name: str, build_seconds: float) -> subprocess.Popen:
    env = {**os.environ, SECONDS_ENV: str(build_seconds)}
    for var in ("REL_ENG_BROKER_URL", "REL_ENG_RESULT_BACKEND"):
        env.pop(var, None)
    argv = [sys.executable, __file__, "--worker", "worker", "--config", str(cfg),
            "--queues", queues, "--pool", pool, "--concurrency", str(concurrency),
            "--name", f"{name}@bench", "--loglevel", "INFO"]
    fh = open(log, "ab")
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    proc._log = log  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def commands(client) -> int:
    return sum(v["calls"] for v in client.info("commandstats").values())


def run_size(images: int, build_seconds: float, tmp: Path, process_workers: int = 2,
             store: bool = True) -> dict:
    import redis

    from rel_eng.compose import run_compose
    from rel_eng.config import load_config
    from rel_eng.distributed.canvas import submit_compose, wait_compose

    port = free_port()
    rdir = tmp / f"redis-{images}"
    rdir.mkdir()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(rdir)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[subprocess.Popen] = []
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        deadline_wait(lambda: _pings(client), 10, "redis-server")
        cfg = write_config(tmp / f"bench-{images}.toml", f"redis://127.0.0.1:{port}/0", images,
                           store)
        config = load_config(cfg)

        os.environ[SECONDS_ENV] = "0"  # in-process reference: same compose, builds take 0 s
        t = time.monotonic()
        run_compose(config, tmp / f"local-{images}", "19", "Beta", DATE, builder="fixed-time")
        local_work = time.monotonic() - t

        # As deployed (workers/queues.env): the build hosts also run the boot tests; every other
        # declared queue goes to the light worker, so a queue added later is served too.
        build_queues = ["oz.x86_64", "oz.i686", "boottest"]
        light_queues = [q for q in config.celery.queues if q not in build_queues]
        workers.append(start_worker(cfg, tmp / f"build-{images}.log", ",".join(build_queues),
                                    "threads", images, "build", build_seconds))
        workers.append(start_worker(cfg, tmp / f"light-{images}.log", ",".join(light_queues),
                                    "prefork", process_workers, "light", build_seconds))
        deadline_wait(lambda: sum(1 for c in client.client_list() if c.get("cmd") == "brpop")
                      >= 2, 60, "both workers consuming")
        time.sleep(1.0)  # let startup traffic settle
        idle_start, t_idle = commands(client), time.monotonic()
        time.sleep(3.0)
        idle_rate = (commands(client) - idle_start) / (time.monotonic() - t_idle)

        # Warm-up: one compose of the same size opens every connection and pool slot.
        warm = submit_compose(config, tmp / f"warm-{images}", "19", "Beta", DATE,
                              builder="fixed-time")
        wait_compose(tmp / f"warm-{images}" / warm, 600, poll=0.05)
        time.sleep(1.0)
        marks = [w._log.stat().st_size for w in workers]

        before = commands(client)
        t0 = time.time()
        cid = submit_compose(config, tmp / f"dist-{images}", "19", "Beta", DATE,
                             builder="fixed-time")
        t_submitted = time.time()
        status = wait_compose(tmp / f"dist-{images}" / cid, 600, poll=0.02)
        t_end = time.time()
        total = commands(client) - before
        wall = t_end - t0
        time.sleep(0.5)  # let the workers' last log lines land
        events = [e for w, mark in zip(workers, marks) for e in task_events(w._log, mark)]
        return {"images": images, "status": status, "wall": wall,
                "overhead": wall - build_seconds, "submit": t_submitted - t0,
                "commands": total, "idle_rate": idle_rate,
                "per_image": total / images,
                "per_image_net": (total - idle_rate * wall) / images,
                "local_work": local_work,
                "timeline": timeline(events, t_submitted, t_end)}
    finally:
        for w in workers:
            stop(w)
        server.terminate()
        server.wait(timeout=10)


LOG_LINE = re.compile(r"^(\S+ \S+) INFO Task rel_eng\.step\.(\w+)\[[^\]]+\] (received|succeeded)")


def task_events(log: Path, offset: int) -> list[tuple[float, str, str]]:
    """(time, task, received|succeeded) from a worker log, from byte `offset` on."""
    with open(log, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if m:
            when = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((when, m.group(2), m.group(3)))
    return out


def timeline(events, t_submitted: float, t_end: float) -> dict[str, float]:
    def when(task, what, pick):
        return pick(t for t, name, kind in events if name == task and kind == what)

    first_build = when("build", "received", min)
    last_build = when("build", "succeeded", max)
    last_process = when("process", "succeeded", max)
    final_in = when("finalize", "received", max)
    final_done = when("finalize", "succeeded", max)
    return {"queue to first build": first_build - t_submitted,
            "builds (first start to last end)": last_build - first_build,
            "post-processing after the last build": last_process - last_build,
            "chord: last process to finalize start": final_in - last_process,
            "finalize": final_done - final_in,
            "status seen by wait_compose": t_end - final_done}


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        from rel_eng.cli import main as cli_main

        return cli_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-seconds", type=float, default=5.0)
    ap.add_argument("--sizes", default="4,40")
    ap.add_argument("--process-workers", type=int, default=2,
                    help="prefork processes serving process+publish (default 2: the cores)")
    ap.add_argument("--no-store", action="store_true", help="[store] enabled = false")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; builds take {args.build_seconds:.1f} s each, "
          "all at once")
    with tempfile.TemporaryDirectory(prefix="rel-eng-bench-") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            workdir = Path(tmp) / f"size-{n}"
            workdir.mkdir()
            r = run_size(n, args.build_seconds, workdir, args.process_workers, not args.no_store)
            print(f"{r['images']:>3} images: {r['status']}  wall {r['wall']:.2f} s  "
                  f"overhead {r['overhead']:.2f} s (submit {r['submit']:.2f} s)  "
                  f"in-process post-processing+finalize {r['local_work']:.2f} s")
            print(f"             Redis commands {r['commands']} = {r['per_image']:.1f}/image "
                  f"({r['per_image_net']:.1f}/image without the workers' idle polling of "
                  f"{r['idle_rate']:.1f}/s)")
            for label, secs in r["timeline"].items():
                print(f"             {label:<40} {secs:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
