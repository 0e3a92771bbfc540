"""The pipeline declared once (rel_eng.pipeline): the in-process run, the Celery canvas, the
plan, the dashboard and the config's routes all follow that one list, in its order; each
recorded step key is the one its declared inputs give; and a new step is one entry."""

from __future__ import annotations

import datetime as dt
import importlib
import json

from rel_eng import cli, pipeline
from rel_eng.compose import run_compose
from rel_eng.compose.model import FINISHED
from rel_eng.config.celery import STEPS as ROUTED_STEPS
from rel_eng.config.celery import CelerySettings
from rel_eng.distributed import tasks
from rel_eng.distributed.canvas import compose_canvas
from rel_eng.distributed.celery_app import make_app
from rel_eng.pipeline import IMAGE, PIPELINE
from rel_eng.web.dashboard import views

DATE = dt.date(2013, 4, 5)
NAMES = [s.name for s in PIPELINE]


def record_calls(monkeypatch, calls: list):
    """Wrap each declared run function so the order it is called in is recorded."""
    for step in PIPELINE:
        module, _, attr = step.run.partition(":")
        real = pipeline.resolve(step.run)

        def wrapped(c, target, *rest, _name=step.name, _real=real):
            calls.append((_name, list(target) if isinstance(target, list) else "compose"))
            return _real(c, target, *rest)

        # importlib, not a dotted path: rel_eng.compose.build is also a function's name there
        monkeypatch.setattr(importlib.import_module(module), attr, wrapped)


def canvas_order(c, tmp_path) -> tuple[list[list[str]], list[str]]:
    s = CelerySettings()
    app = make_app(s)
    try:
        canvas = compose_canvas(app, c, tmp_path / "mirror", s)
    finally:
        app.close()
    body = canvas.body.tasks if hasattr(canvas.body, "tasks") else [canvas.body]
    strip = len(tasks.STEP_PREFIX)
    chains = [[t.task[strip:] for t in ch.tasks] for ch in canvas.tasks]
    return chains, [t.task[strip:] for t in body]


def test_local_and_distributed_orders_are_the_one_declared_list(config, tmp_path, monkeypatch):
    calls: list = []
    record_calls(monkeypatch, calls)
    c = run_compose(config, tmp_path / "out", "19", "Alpha", DATE)
    keys = [j.key for j in c.plan.images]
    # Local: each per-image step over every image, in the declared order, then finalize.
    assert [name for name, _ in calls] == NAMES
    assert all(target == keys for name, target in calls if pipeline.STEPS[name].scope == IMAGE)
    # Distributed: one chain per image of the per-image steps, then the per-compose steps.
    chains, body = canvas_order(c, tmp_path)
    assert len(chains) == len(keys)
    assert all(ch + body == NAMES for ch in chains)
    # Both are exactly the declared list.
    assert [name for name, _ in calls] == chains[0] + body == NAMES


def test_each_recorded_key_is_the_one_the_declared_inputs_give(alpha_drop):
    c, _ = alpha_drop
    steps = c.manifest.read()["steps"]
    for step in pipeline.IMAGE_STEPS:
        for job in c.plan.images:
            assert steps[step.lock(job.key)]["digest"] == step.key(c, job.key), step.lock(job.key)
    for sub in pipeline.FINALIZE_STEPS:
        if sub.inputs is not None and sub.applies is None:
            assert steps[sub.name]["state"] == "done", sub.name


SCANNED: list = []


def scan_step(c, keys, progress):
    """The one function of a step a test adds to the list."""
    SCANNED.append(sorted(keys))
    return {k: {"job": k, "scanned": True} for k in keys}


def test_a_new_step_is_one_entry_and_one_function(config, tmp_path, monkeypatch):
    """A per-image step added to the list runs locally after the boot test, and the canvas
    chains it there too, on its route's queue."""
    SCANNED.clear()
    scan = pipeline.Step("scan", IMAGE, "rel_eng.compose.build:build_inputs", "nothing",
                         "process", f"{__name__}:scan_step")
    steps = (*pipeline.IMAGE_STEPS, scan, *pipeline.COMPOSE_STEPS)
    monkeypatch.setattr(pipeline, "PIPELINE", steps)
    monkeypatch.setattr(pipeline, "IMAGE_STEPS", (*pipeline.IMAGE_STEPS, scan))
    monkeypatch.setattr(pipeline, "STEPS", {s.name: s for s in steps})
    c = run_compose(config, tmp_path / "out", "19", "Alpha", DATE)
    assert SCANNED == [sorted(j.key for j in c.plan.images)]
    assert (c.topdir / "STATUS").read_text().strip() == FINISHED
    chains, body = canvas_order(c, tmp_path)
    assert chains[0] == ["build", "process", "boottest", "scan"] and body == ["finalize"]
    assert tasks.run_step(str(c.topdir), "scan", c.plan.images[0].key, 5) == \
        {"job": c.plan.images[0].key, "skipped": FINISHED}


def test_plan_dashboard_and_routes_read_the_same_list(capsys):
    assert cli.main(["plan", "--release", "19", "--milestone", "Alpha", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in data["steps"]] == NAMES
    finalize = next(s for s in data["steps"] if s["name"] == "finalize")
    assert [s["name"] for s in finalize["steps"]] == [f.name for f in pipeline.FINALIZE_STEPS]
    assert cli.main(["plan", "--release", "19", "--milestone", "Alpha"]) == 0
    text = capsys.readouterr().out
    listed = [line.split()[0] for line in text.split("steps:\n")[1].splitlines()
              if line.startswith("  ") and not line.startswith("    ")]
    assert listed == NAMES
    assert list(views.STEP_ORDER) == [s.name for s in pipeline.IMAGE_STEPS]
    assert views.BOOT_STEP == "boottest"
    # Every route a step names is one [celery] routes declares (builds by builder and arch).
    assert {s.route for s in PIPELINE} - {"build"} == set(ROUTED_STEPS)


def test_a_step_key_is_the_sha256_of_canonical_json():
    import hashlib

    key = pipeline.step_key("process", {"y": 1, "x": [1, 2]}, "z")
    blob = json.dumps(["process", {"x": [1, 2], "y": 1}, "z"], sort_keys=True, separators=(",", ":"))
    assert key == hashlib.sha256(blob.encode()).hexdigest()
    assert pipeline.step_key("s", {"a": 1, "b": 2}) == pipeline.step_key("s", {"b": 2, "a": 1})
    assert pipeline.step_key("s", 1) != pipeline.step_key("t", 1)
