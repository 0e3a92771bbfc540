"""What the hostile-input tests share: running `rel-eng` once inside a world of its own, with a
clean environment and a broker that reaches nothing, and snapshotting that world before and after
so a test can assert nothing in it changed."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def snapshot(root: Path) -> dict[str, tuple]:
    """Mode, size and mtime of everything below root, symlinks not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def run_in_world(world: Path, home: Path, argv: list[str], fragment: str | None, *,
                 drop_env: tuple[str, ...] = ("REL_ENG_", "AWS_"), env_extra: dict | None = None,
                 wrap: Callable[[list[str]], list[str]] | None = None) -> dict:
    """Run `rel-eng argv` ("{W}" standing for the world) in the world with HOME=home; return
    rc, stderr, stdout, the world's snapshot before and after, and the expected fragment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_env)}
    env.update(HOME=str(home), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL="http://127.0.0.1:1",
               **(env_extra or {}))
    if not argv or argv[0] != "validate":  # validate would report the dead broker too
        env["REL_ENG_BROKER_URL"] = DEAD_BROKER  # a case that slips through reaches nothing
    cmd = [sys.executable, "-m", "rel_eng", *(a.replace("{W}", str(world)) for a in argv)]
    if wrap is not None:
        cmd = wrap(cmd)
    before = snapshot(world)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=world,
                              timeout=120)
        result = {"rc": proc.returncode, "stderr": proc.stderr, "stdout": proc.stdout}
    except subprocess.TimeoutExpired as exc:
        result = {"rc": "timeout", "stderr": str(exc.stderr), "stdout": ""}
    result.update(before=before, after=snapshot(world), world=str(world),
                  fragment=fragment.replace("{W}", str(world)) if fragment else None)
    return result


def run_selected(request, test_name: str, root: Path,
                 run_case: Callable[[tuple, Path, Path], dict]) -> dict[str, dict]:
    """Run the cases of `test_name` this session selected, three at a time, each given a world
    of its own (root/<case id>, ":" made "_") and an empty HOME beside it; keyed by case id."""
    def one(case: tuple) -> dict:
        world = root / case[0].replace(":", "_")
        home = root / f"{world.name}-home"
        home.mkdir()
        return run_case(case, world, home)

    wanted = [item.callspec.params["case"] for item in request.session.items
              if getattr(item, "originalname", "") == test_name and hasattr(item, "callspec")]
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {c[0]: pool.submit(one, c) for c in wanted}
        return {cid: f.result() for cid, f in futures.items()}


def assert_refused_in_one_line(r: dict) -> str:
    """The refusal every hostile case must end in: exit 2, one line on stderr that starts with
    "rel-eng" and names the problem, no traceback, and the world unchanged. Returns the line."""
    lines = [line for line in r["stderr"].splitlines() if line.strip()]
    assert r["rc"] == 2, r["stderr"] or r["stdout"]
    assert len(lines) == 1, r["stderr"]
    assert "Traceback" not in r["stderr"]
    assert lines[0].startswith("rel-eng"), lines[0]
    if r["fragment"]:
        assert r["fragment"] in lines[0]
    assert r["after"] == r["before"], "the world changed: " + repr(
        sorted(set(r["after"].items()) ^ set(r["before"].items()), key=str)[:5])
    return lines[0]
