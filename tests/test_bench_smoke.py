"""Every benchmark under bench/ still runs: each at a tiny size, as a real process, with the
real services it measures (RabbitMQ, PostgreSQL, redis, moto, the Koji test hub, qemu-img).
Nothing here looks at a figure (speed targets live in the benchmarks and are read by people);
what is checked is that each one ran to the end, printed its result lines, and left nothing
behind (the throw-away database and RabbitMQ vhost are gone).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"

# bench script -> (tiny arguments, lines its output must hold)
SMOKE = {
    "messages.py": (["--count", "8", "--rounds", "2"],
                    ["plain api.publish loop", "sqlite:", "postgresql:",
                     "state change, then publish", "outbox, what a compose pays", "catch-up flush", "commit per message"]),
    "web.py": (["--composes", "6", "--images", "2", "--requests", "6"],
               ["SQLite: 6 composes", "PostgreSQL: 6 composes", "list page /", "compose API",
                "SQL statements per list page", "latency goals:"]),
    "celery_overhead.py": (["--build-seconds", "0", "--sizes", "2"],
                           ["2 images: FINISHED", "Redis commands"]),
    "ec2_upload.py": (["--size-gib", "2", "--data-mib", "8", "--workers", "2"],
                      ["bytes sent, EBS direct", "upload wall time, 2 workers"]),
    "koji_watch.py": (["--sizes", "2", "--rounds", "1"], ["first round: rel-eng 1 trip"]),
    "postprocess.py": (["--data-mib", "2", "--small-gib", "1", "--large-gib", "1",
                        "--repeat", "1", "--skip-naive"],
                       ["rel-eng post-processing", "ratio rel-eng / floor 1"]),
    "boot_test.py": (["--smoke"], ["auto chooses", "inspected", "nothing booted"]),
    "release.py": (["--mib", "1", "--rounds", "1"], ["drop: 8 image files", "ratio release / floor"]),
}


def _scripts() -> set[str]:
    return {p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__":' in p.read_text()}


def test_every_benchmark_has_a_smoke_run():
    assert _scripts() == set(SMOKE)


def _leftovers() -> tuple[set[str], set[str]]:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        dbs = {r[0] for r in admin.execute("SELECT datname FROM pg_database")
               if r[0].startswith("releng_bench_")}
    vhosts = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True,
                            timeout=60, check=True).stdout.split()
    return dbs, {v for v in vhosts if v.startswith("rel-eng-bench-")}


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_the_benchmark_runs_at_a_tiny_size(script, tmp_path):
    args, expected = SMOKE[script]
    before = _leftovers() if script in ("messages.py", "web.py") else None
    env = {k: v for k, v in os.environ.items()
           if k not in ("REL_ENG_BROKER_URL", "REL_ENG_RESULT_BACKEND", "FEDORA_MESSAGING_CONF")}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    missing = [line for line in expected if line not in proc.stdout]
    assert not missing, f"{script} printed no {missing}:\n{proc.stdout}"
    assert "Traceback" not in proc.stderr, proc.stderr
    if before is not None:
        dbs, vhosts = _leftovers()
        assert dbs <= before[0] and vhosts <= before[1]  # the throw-away ones are gone
