#!/usr/bin/env python3
"""Hub round trips and client CPU per poll round while watching 4, 40 and 400 image tasks.

Runs the test hub (tests/kojihub: real XML-RPC over HTTPS on 127.0.0.1) with every createImage
task held OPEN, submits N `image` tasks (2 arches each, so 3N tasks in the trees), then measures
in the same run:

  rel-eng  the Koji builder's TaskWatcher.poll(): one multicall per round
  koji     koji's own watch-task (koji_cli.lib.watch_tasks, run as is): getTaskInfo +
           getTaskChildren per task per round

Round trips are counted by the hub. Client CPU is the calling thread's CPU time
(time.thread_time), so the hub's threads in this process are not counted.

    python3 bench/koji_watch.py [--sizes 4 40 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import koji  # noqa: E402
import koji_cli.lib  # noqa: E402

from rel_eng.builders.base import BuildHandle  # noqa: E402
from rel_eng.builders.koji import TaskWatcher  # noqa: E402
from rel_eng.builders.koji_session import login, new_session, read_profile  # noqa: E402
from rel_eng.config.koji import KojiConfig  # noqa: E402
from tests.kojihub import KojiTestHub, make_certs, make_images  # noqa: E402

ARCHES = ["i386", "x86_64"]


def submit(session, n: int, ks: str) -> list[int]:
    opts = {"ksversion": "F19", "kickstart": ks, "distro": "Fedora-19", "scratch": True,
            "format": ["qcow2", "raw-xz"], "release": "1", "disk_size": 3}
    return [session.buildImageOz(f"Bench-{i}", "19", ARCHES, "f19-candidate",
                                 "https://example.org/19/$arch/os/", opts=opts)
            for i in range(n)]


def wait_open(hub: KojiTestHub, parents: list[int]) -> None:
    want = set(parents)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with hub.hub.lock:
            kids = [t for t in hub.hub.tasks.values() if t.parent in want]
            if len(kids) == 2 * len(want) and all(t.state == 1 for t in kids):
                return
        time.sleep(0.1)
    raise SystemExit("tasks did not reach OPEN in 120 s")


def measure_ours(hub, session, profile, parents, rounds):
    handles = [BuildHandle(f"{p}-{a}", str(p), {"koji_arch": a}) for p in parents for a in ARCHES]
    watcher = TaskWatcher(session, profile, handles)
    out = []
    for _ in range(rounds + 1):  # the first round also lists children; reported apart
        trips, cpu, wall = len(hub.rpc_log), time.thread_time(), time.perf_counter()
        watcher.poll()
        out.append((len(hub.rpc_log) - trips, time.thread_time() - cpu,
                    time.perf_counter() - wall))
    assert not watcher.done()
    return out[0], out[1:]


class _Stop(KeyboardInterrupt):
    pass


def measure_koji(hub, session, parents, rounds):
    """koji_cli.lib.watch_tasks as shipped; its sleep() marks the end of each round."""
    out = []
    mark = {"trips": len(hub.rpc_log), "cpu": time.thread_time(), "wall": time.perf_counter()}

    def sleep(_seconds):
        out.append((len(hub.rpc_log) - mark["trips"], time.thread_time() - mark["cpu"],
                    time.perf_counter() - mark["wall"]))
        if len(out) > rounds:
            raise _Stop()
        mark.update(trips=len(hub.rpc_log), cpu=time.thread_time(), wall=time.perf_counter())

    real_time = koji_cli.lib.time
    koji_cli.lib.time = types.SimpleNamespace(sleep=sleep, time=time.time)
    try:
        koji_cli.lib.watch_tasks(session, parents, quiet=True, poll_interval=0,
                                 ki_handler=lambda *a: None)
    except _Stop:
        pass
    finally:
        koji_cli.lib.time = real_time
    return out[0], out[1:]


def mean(values):
    return sum(values) / len(values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 40, 400])
    ap.add_argument("--rounds", type=int, default=3, help="steady-state rounds measured")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-koji-") as tmp:
        base = Path(tmp)
        certs, images = make_certs(base / "certs"), make_images(base / "images")
        with KojiTestHub(base / "hub", certs, images, tick=0.2) as hub:
            hub.inject.slow = {a: 3600.0 for a in ARCHES}
            cfg = base / "koji.conf"
            cfg.write_text(hub.client_config("bench"))
            profile = read_profile(KojiConfig(profile="bench", config_file=str(cfg)))
            session = new_session(profile)
            login(session, profile)
            ks = base / "bench.ks"
            ks.write_text((ROOT / "kickstarts" / "fedora-cloud-base.ks").read_text())
            session.uploadWrapper(str(ks), "cli-image/bench", name="bench.ks")
            rows = []
            for n in args.sizes:
                parents = submit(session, n, "work/cli-image/bench/bench.ks")
                wait_open(hub, parents)
                ours_first, ours = measure_ours(hub, session, profile, parents, args.rounds)
                koji_first, theirs = measure_koji(hub, session, parents, args.rounds)
                with session.multicall() as m:
                    for p in parents:
                        m.cancelTask(p)
                rows.append((n, ours_first, ours, koji_first, theirs))

    print(f"koji {koji.__version__}; test hub over HTTPS on 127.0.0.1; "
          f"{args.rounds} steady rounds after the first; CPU = client thread time")
    print(f"{'image':>5} {'tasks':>5} | {'rel-eng':>7} {'CPU ms':>7} {'wall ms':>7} | "
          f"{'koji':>5} {'CPU ms':>7} {'wall ms':>7} | {'trips':>6} {'CPU':>6} {'wall':>6}")
    for n, ours_first, ours, koji_first, theirs in rows:
        o = [mean([r[i] for r in ours]) for i in range(3)]
        k = [mean([r[i] for r in theirs]) for i in range(3)]
        print(f"{n:>5} {3 * n:>5} | {o[0]:>7.1f} {o[1] * 1e3:>7.1f} {o[2] * 1e3:>7.1f} | "
              f"{k[0]:>5.0f} {k[1] * 1e3:>7.1f} {k[2] * 1e3:>7.1f} | {k[0] / o[0]:>5.0f}x "
              f"{k[1] / o[1]:>5.1f}x {k[2] / o[2]:>5.1f}x")
        print(f"{'':>11} first round: rel-eng {ours_first[0]} trip, {ours_first[1] * 1e3:.1f} ms "
              f"CPU; koji {koji_first[0]} trips, {koji_first[1] * 1e3:.1f} ms CPU")
    print("trips = hub round trips per poll round; ratios are koji / rel-eng")
    return 0


if __name__ == "__main__":
    sys.exit(main())
