"""Dashboard benchmark: `rel-eng serve` over a store of C composes with I images each.

Prints, measured in one run on this machine against a real `rel-eng serve` process (uvicorn,
one worker) from a Python load generator (keep-alive HTTP/1.1 connections, W concurrent
clients), for SQLite and for PostgreSQL (a throw-away database, created and dropped here):
  - p50/p99 latency of the list page (target: p99 < 100 ms), the list API, a compose page and
    the compose API;
  - the server's CPU time per request (from /proc, the database's server processes included
    for PostgreSQL; unlike latency, it hardly depends on what else the machine runs), and
    latency against it: goals p50 <= 1.5x and p99 <= 3x the CPU
    time (with one client; W clients on one server process queue behind each other);
  - SQL statements per page with 2 and with I images per compose, side by side (target: equal).
No figure is asserted: the test suite runs this at a tiny size to prove it still runs.

Usage: python3 bench/web.py [--composes 1000] [--images 40] [--requests 400] [--workers 1]
                            [--stores sqlite,postgresql] [--url postgresql+psycopg://... (an
                            existing empty database instead of a throw-away one)]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

GOAL_P50 = 1.5  # x the server's CPU time per request
GOAL_P99 = 3.0


def cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (load-independent, unlike latency)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def db_backends(url: str) -> list[int]:
    """PostgreSQL: the pids of the server processes serving the dashboard's connections, whose
    CPU is the request's too (SQLite runs inside the dashboard's own process)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        return []
    import psycopg

    with psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432,
                         user=u.username or "postgres", dbname=u.database, autocommit=True) as c:
        return [r[0] for r in c.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s "
                                        "AND pid <> pg_backend_pid()", (u.database,))]


def server_cpu_ms(pid: int, url: str) -> float:
    """The dashboard's CPU so far, plus its database backends' (PostgreSQL)."""
    total = cpu_ms(pid)
    for backend in db_backends(url):
        try:
            total += cpu_ms(backend)
        except FileNotFoundError:  # a pooled connection closed meanwhile
            pass
    return total


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def load(host: str, port: int, paths: list[str], workers: int) -> list[float]:
    """Each worker walks its share of `paths` on one keep-alive connection; ms per request."""
    times: list[float] = []
    lock = threading.Lock()

    def worker(share: list[str]) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine = []
        for path in share:
            t0 = time.perf_counter()
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            mine.append((time.perf_counter() - t0) * 1000)
            if r.status != 200 or not body:
                raise SystemExit(f"GET {path}: HTTP {r.status}")
        conn.close()
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker, args=(paths[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def count_queries(url_for, composes: int, images: int) -> dict[str, int]:
    from sqlalchemy import event
    from starlette.testclient import TestClient

    from rel_eng.store.engine import open_engine
    from rel_eng.web.dashboard.app import create_app
    from web_fixtures import fill_store

    engine = open_engine(url_for(f"q{images}"))
    ids = fill_store(engine, composes, images)
    out = {}
    with TestClient(create_app(engine)) as c:
        for name, path in (("list page", "/"), ("compose page", f"/composes/{ids[0]}")):
            c.get(path)
            seen = []
            listener = lambda *a: seen.append(1)  # noqa: E731
            event.listen(engine, "before_cursor_execute", listener)
            c.get(path).raise_for_status()
            event.remove(engine, "before_cursor_execute", listener)
            out[name] = len(seen)
    engine.dispose()
    return out


def measure(url: str, label: str, args, tmp: Path) -> bool:
    """Fill the store at `url`, serve it, load every endpoint; prints one line each. Whether
    every endpoint met both latency goals."""
    from rel_eng.store.engine import open_engine
    from web_fixtures import fill_store

    t0 = time.perf_counter()
    engine = open_engine(url)
    ids = fill_store(engine, args.composes, args.images)
    engine.dispose()
    print(f"{label}: {args.composes} composes x {args.images} images, filled in "
          f"{time.perf_counter() - t0:.1f} s")
    cfg = tmp / f"config-{label}.toml"
    cfg.write_text(f'[store]\nurl = "{url}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "rel_eng", "serve", "--bind", "127.0.0.1:0",
                             "--config", str(cfg)], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    met = True
    try:
        line = proc.stderr.readline()
        m = re.search(r"http://(127\.0\.0\.1):(\d+)/", line)
        if not m:
            raise SystemExit(f"rel-eng serve did not start: {line.strip()}")
        host, port = m.group(1), int(m.group(2))
        rng = random.Random(13)
        cases = {
            "list page /": ["/"] * args.requests,
            "list API /api/composes": ["/api/composes"] * args.requests,
            "compose page": [f"/composes/{rng.choice(ids)}" for _ in range(args.requests)],
            "compose API": [f"/api/composes/{rng.choice(ids)}" for _ in range(args.requests)],
        }
        load(host, port, ["/"] * 20 + cases["compose page"][:20], 1)  # warm up
        print(f"  load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
              f"{os.cpu_count()} CPUs; n={args.requests} per endpoint, {args.workers} client(s)")
        print(f"  {'endpoint':<24} {'p50 ms':>7} {'p99 ms':>7} {'mean ms':>8} {'CPU ms/req':>11}"
              f" {'p50/CPU':>8} {'p99/CPU':>8}")
        results = {}
        for name, paths in cases.items():
            cpu0 = server_cpu_ms(proc.pid, url)
            ms = load(host, port, paths, args.workers)
            cpu = (server_cpu_ms(proc.pid, url) - cpu0) / len(paths)
            results[name] = ms
            p50, p99 = statistics.median(ms), percentile(ms, 99)
            # /proc counts CPU in clock ticks (10 ms): a tiny run may see none.
            r50, r99 = (p50 / cpu, p99 / cpu) if cpu > 0 else (float("inf"),) * 2
            ok = r50 <= GOAL_P50 and r99 <= GOAL_P99
            met = met and ok
            print(f"  {name:<24} {p50:7.1f} {p99:7.1f} {statistics.fmean(ms):8.1f} {cpu:11.2f}"
                  f" {r50:7.2f}x {r99:7.2f}x  {'met' if ok else 'MISSED'}")
        print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()
    p99 = percentile(results["list page /"], 99)
    print(f"  list page p99 {p99:.1f} ms: {'meets' if p99 < 100 else 'MISSES'} the 100 ms target")
    return met


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--composes", type=int, default=1000)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--requests", type=int, default=400, help="requests per endpoint")
    ap.add_argument("--workers", type=int, default=1, help="concurrent clients")
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--url", help="an existing empty PostgreSQL database (default: a throw-away one)")
    args = ap.parse_args()
    stores = [s for s in args.stores.split(",") if s]
    if not stores or set(stores) - {"sqlite", "postgresql"}:
        ap.error("--stores takes sqlite and/or postgresql")
    if min(args.composes, args.images, args.requests, args.workers) < 1:
        ap.error("--composes, --images, --requests and --workers must be at least 1")
    from throwaway_db import throwaway_database

    print(f"goals: p50 <= {GOAL_P50}x and p99 <= {GOAL_P99}x the server's CPU time per request")
    met = {}
    with tempfile.TemporaryDirectory(prefix="rel-eng-bench-web-") as tmp:
        for store in stores:
            with contextlib.ExitStack() as stack:
                if store == "sqlite":
                    url = f"sqlite:///{Path(tmp) / 'out' / 'rel-eng.db'}"
                else:
                    url = args.url or stack.enter_context(throwaway_database())
                met[store] = measure(url, "SQLite" if store == "sqlite" else "PostgreSQL",
                                     args, Path(tmp))
        small = count_queries(lambda n: f"sqlite:///{Path(tmp) / ('small-' + n + '.db')}", 20, 2)
        big = count_queries(lambda n: f"sqlite:///{Path(tmp) / ('big-' + n + '.db')}", 20,
                            args.images)
        for page in small:
            print(f"SQL statements per {page}: {small[page]} with 2 images, {big[page]} with "
                  f"{args.images} images per compose ({'same' if small[page] == big[page] else 'GROWS'})")
    print("latency goals: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
