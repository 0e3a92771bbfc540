"""From store rows (rel_eng.store.queries) to what the dashboard shows.

The store records when a step ended, not when it began; a step's start is taken as the end of
the step before it, and a build's start as the moment its task was recorded (submitted).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import urlsplit

from rel_eng.pipeline import IMAGE_STEPS
from rel_eng.web.dashboard import logs
from rel_eng.web.drop_page import launch_url

# The per-image steps in the order they run, and the boot gate's (the one whose failure is a
# verdict), as the pipeline declares them (rel_eng.pipeline).
STEP_ORDER = tuple(s.name for s in IMAGE_STEPS)
BOOT_STEP = next(s.name for s in IMAGE_STEPS if s.verdict)
# The gate's step states as verdicts; "skipped" (not bootable) is never shown as passed.
BOOT_VERDICTS = {"done": "passed", "failed": "failed", "skipped": "skipped"}
SUMMARY = Path("compose") / "metadata" / "rel-eng.json"
FINAL = ("FINISHED", "FINISHED_INCOMPLETE", "DOOMED", "TERMINATED")
KINDS = ("milestone", "weekly")


def _time(iso) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(iso) if iso else None
    except (TypeError, ValueError):
        return None


def duration(start, end) -> str:
    a, b = _time(start), _time(end)
    if a is None or b is None:
        return ""
    seconds = max(0, int((b - a).total_seconds()))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def web_link(url) -> str:
    """`url` if it is a plain http(s) URL without credentials; else "" (shown as text)."""
    if not isinstance(url, str):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return ""
    return url


def task_link(build: dict | None) -> tuple[str, str]:
    """(label, URL) of an image's builder task: the Koji web page when the builder gave one."""
    if not build:
        return "", ""
    info = build.get("info") or {}
    data = info.get("data") if isinstance(info.get("data"), dict) else {}
    url = web_link(data.get("task_url") or info.get("task_url"))
    label = f"{build.get('builder') or 'task'} {build.get('external_id') or ''}".strip()
    return label, url


def progress(row: dict) -> dict:
    total = row.get("images") or 0
    return {"total": total, "built": row.get("built", 0), "failed": row.get("failed", 0),
            "processed": row.get("processed", 0), "final": row.get("status") in FINAL}


def image_timeline(image: dict, compose_start) -> list[dict]:
    steps = image.get("steps") or {}
    order = [s for s in STEP_ORDER if s in steps] + sorted(s for s in steps if s not in STEP_ORDER)
    build = image.get("build") or {}
    start = build.get("recorded_at") or compose_start
    out = []
    for name in order:
        s = steps[name]
        end = s.get("updated_at") if s.get("state") in ("done", "failed", "skipped") else None
        out.append({"step": name, "state": s.get("state", ""), "reason": s.get("reason", ""),
                    "start": start, "end": end, "duration": duration(start, end)})
        start = end or start
    return out


def compose_view(d: dict) -> dict:
    """The detail of one compose plus everything derived for its page and the API."""
    topdir = d["topdir"]
    arts: dict[str, list[dict]] = {}
    for a in d["artifacts"]:
        arts.setdefault(a["job_key"], []).append(a)
    amis_by_nvra: dict[str, list[dict]] = {}
    for a in d["amis"]:
        amis_by_nvra.setdefault(a["nvra"], []).append(
            {**a, "launch": launch_url(a["region"], a["ami_id"])})
    verdicts = boot_verdicts(topdir)
    images = []
    counts = {"total": len(d["images"]), "built": 0, "failed": 0, "processed": 0}
    for i in d["images"]:
        steps = i.get("steps") or {}
        state = _image_state(steps)
        counts["built"] += steps.get("build", {}).get("state") == "done"
        counts["processed"] += steps.get("process", {}).get("state") == "done"
        counts["failed"] += state == "failed"
        label, url = task_link(i.get("build"))
        log_files = logs.image_logs(topdir, i["job_key"])
        timeline = image_timeline(i, d["created_at"])
        failure = next((s for s in timeline if s["state"] == "failed"), None)
        boot = steps.get(BOOT_STEP)
        images.append({
            "job_key": i["job_key"], "nvra": i["nvra"], "arch": i["arch"],
            "image_type": i["image_type"], "optional": i["optional"], "state": state,
            "timeline": timeline, "task": label, "task_url": url,
            "artifacts": [{**a, "log": a["path"][len(logs.LOG_DIR) + 1:]
                           if a["path"].startswith(logs.LOG_DIR + "/") else ""}
                          for a in arts.get(i["job_key"], [])],
            "logs": log_files, "amis": amis_by_nvra.get(i["nvra"], []),
            "boot": None if boot is None else boot_view(boot, verdicts.get(i["job_key"]),
                                                        topdir),
            "failure": None if failure is None else {
                "step": failure["step"], "reason": failure["reason"],
                "log": log_files[0] if log_files else "",
                "excerpt": logs.excerpt(topdir, log_files[0]) if log_files else ""},
        })
    timeline = []
    prev = d["created_at"]
    for h in d["history"]:
        timeline.append({"status": h["status"], "reason": h["reason"], "at": h["at"],
                         "since_start": duration(d["created_at"], h["at"])})
        prev = h["at"]
    view = {k: d[k] for k in ("compose_id", "status", "reason", "release_key", "release_version",
                              "milestone", "label", "compose_type", "date", "respin", "builder",
                              "created_at", "updated_at")}
    view.update(images=images, progress={**counts, "final": d["status"] in FINAL},
                history=timeline, steps=d["steps"], amis=[a for rows in amis_by_nvra.values()
                                                           for a in rows],
                releases=d.get("releases", []),  # the milestones it is the released candidate of
                duration=duration(d["created_at"], prev if d["status"] in FINAL else None))
    return view


def boot_verdicts(topdir) -> dict:
    """The boot gate's verdicts per job key from the compose's rel-eng.json; {} without one."""
    try:
        data = json.loads((Path(topdir) / SUMMARY).read_text())
        images = data["boot_test"]["images"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return images if isinstance(images, dict) else {}


def boot_view(step: dict, verdict, topdir) -> dict:
    """An image's boot test: the verdict from its store step, the console log the gate named in
    rel-eng.json, linked only when it is a file inside the compose's logs/."""
    state = step.get("state", "")
    reason = step.get("reason", "")
    if state == "done" and reason == "pass":
        reason = ""  # the gate's reason for a pass says nothing more
    elif state == "skipped" and reason.startswith("skipped: "):
        reason = reason[len("skipped: "):]  # shown after the verdict "skipped" already
    console = verdict.get("console_log") if isinstance(verdict, dict) else None
    rel = console[len(logs.LOG_DIR) + 1:] if isinstance(console, str) and \
        console.startswith(logs.LOG_DIR + "/") else ""
    plat = verdict.get("platform") if isinstance(verdict, dict) else None
    return {"verdict": BOOT_VERDICTS.get(state, state), "reason": reason,
            "platform": str(plat.get("label") or "") if isinstance(plat, dict) else "",
            "console_logs": [rel] if rel and logs.safe_log_path(topdir, rel) else []}


def _image_state(steps: dict) -> str:
    if any(s.get("state") == "failed" for s in steps.values()):
        return "failed"
    if steps.get("process", {}).get("state") == "done":
        boot = steps.get(BOOT_STEP, {}).get("state", "done")
        return "done" if boot in ("done", "skipped") else "testing"
    if steps.get("build", {}).get("state") == "done":
        return "processing"
    return "building"


def list_row(r: dict) -> dict:
    kind = "milestone" if r.get("milestone") else "weekly"
    return {"compose_id": r["compose_id"], "status": r["status"], "release": r["release_key"],
            "kind": kind, "label": r.get("label") or "", "builder": r["builder"],
            "created_at": r["created_at"], "updated_at": r["updated_at"],
            "progress": progress(r)}
