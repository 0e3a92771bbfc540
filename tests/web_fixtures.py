"""Stores for the dashboard tests and benchmark: real composes recorded by the StoreRecorder
(finished with AMIs, doomed with a builder's log, running), and a bulk filler for big stores."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

from sqlalchemy import insert

from rel_eng import compose
from rel_eng.builders import BUILDERS, BuildHandle, BuildOutcome
from rel_eng.builders.synthetic import SyntheticBuilder, build_disk
from rel_eng.store import schema

from web_support import ec2_document

KOJI_WEB = "https://koji.example.org/koji"
_task_ids = itertools.count(9000)


class KojiLikeBuilder(SyntheticBuilder):
    """The synthetic builder, recording a task id and a task web URL the way the Koji one does."""

    name = "koji-like"

    def submit(self, requests):
        handles = []
        for req in requests:
            task = next(_task_ids)
            handle = BuildHandle(req.job.key, external_id=str(task),
                                 data={"task_url": f"{KOJI_WEB}/taskinfo?taskID={task}"})
            self.on_submitted(handle)
            handles.append(handle)
        self.requests = {r.job.key: r for r in requests}  # its own record, not the base's
        return handles

    def wait(self, handles, timeout=None):
        """The synthetic builder's disk, built through its public build_disk."""
        for h in handles:
            build_disk(self.requests[h.job_key])
        return [BuildOutcome(h.job_key, True) for h in handles]


FAIL_REASON = "koji task failed: anaconda: no space left on device"


class FailingI686(KojiLikeBuilder):
    """Every i686 build fails and leaves a task log behind, as Koji's builder copies it."""

    name = "failing-i686"

    def wait(self, handles, timeout=None):
        good = super().wait([h for h in handles if not h.job_key.endswith("i686")], timeout)
        bad = []
        for h in handles:
            if h.job_key.endswith("i686"):
                logdir = self.requests[h.job_key].logdir / f"koji-task-{h.external_id}"
                logdir.mkdir(parents=True, exist_ok=True)
                lines = [f"line {n}: installing package {n}" for n in range(100)]
                (logdir / "oz.log").write_text("\n".join(lines + ["anaconda: No space left on device"]) + "\n")
                bad.append(BuildOutcome(h.job_key, False, FAIL_REASON))
        return good + bad


def register_builders(monkeypatch) -> None:
    for b in (KojiLikeBuilder, FailingI686):
        monkeypatch.setitem(BUILDERS, b.name, b)


def populate(config, out: Path, recorder) -> dict:
    """A finished milestone with AMIs, a doomed one, and a weekly still running (created only).
    Returns the Compose objects by role."""
    finished = compose.run_compose(config, out, "19", "Alpha", dt.date(2013, 4, 5),
                                   builder=KojiLikeBuilder.name, recorder=recorder)
    ec2 = ec2_document(finished.plan)
    from rel_eng.compose import written

    with written.recording(finished):  # as `rel-eng ec2 publish` writes it, its digest recorded
        (finished.metadir / "ec2.json").write_text(json.dumps(ec2))
    compose.record_amis(finished)
    try:
        compose.run_compose(config, out, "19", "Beta", dt.date(2013, 4, 12),
                            builder=FailingI686.name, recorder=recorder)
    except compose.ComposeDoomed:
        pass
    [doomed] = [p for p in out.iterdir() if p.name.startswith("Fedora-Cloud-19-20130412")]
    running = start_only(config, out, recorder)
    return {"finished": finished, "doomed": compose.Compose.load(doomed), "running": running,
            "ec2": ec2}


def start_only(config, out: Path, recorder, release: str = "rawhide",
               date: dt.date = dt.date(2013, 4, 15)):
    """A compose created and STARTED; the caller runs it on with compose.resume."""
    plan = compose.allocate(config, out, release, None, date)
    return compose.create(config, plan, out, compose.prepare_inputs(config, plan), recorder)


def fill_store(engine, composes: int, images: int, *, start=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)) -> list[str]:
    """Bulk rows for `composes` finished composes of `images` images each (half EC2 with two
    AMIs each), as the recorder would have left them. Returns the compose ids, oldest first."""
    ids = []
    rows = {t: [] for t in ("composes", "images", "steps", "builds", "artifacts", "amis", "status_changes")}
    for n in range(composes):
        cid = f"Fedora-Cloud-Bench-{n:05d}.n.0"
        ids.append(cid)
        t0 = start + dt.timedelta(hours=n)
        t1 = t0 + dt.timedelta(minutes=30)
        rows["composes"].append(dict(
            compose_id=cid, topdir=f"/nonexistent/{cid}", release_key="rawhide" if n % 2 else "19",
            release_version="Rawhide", milestone=None if n % 2 else "Alpha",
            label=None if n % 2 else "Alpha-1.1", compose_type="nightly", date="20200101",
            respin=0, builder="koji", status="FINISHED" if n % 10 else "DOOMED", reason="",
            created_at=t0, updated_at=t1))
        rows["status_changes"] += [dict(compose_id=cid, status="STARTED", reason="", at=t0),
                                   dict(compose_id=cid, status="FINISHED", reason="", at=t1)]
        for i in range(images):
            key = f"img{i:03d}-x86_64"
            nvra = f"Bench-{n}-{i}.x86_64"
            rows["images"].append(dict(compose_id=cid, job_key=key, nvra=nvra, arch="x86_64",
                                       image_type="ec2" if i % 2 else "generic",
                                       subvariant="Cloud_Base", optional=False))
            for step, at in (("build", t0 + dt.timedelta(minutes=10)), ("process", t1)):
                rows["steps"].append(dict(compose_id=cid, step=f"{step}:{key}", job_key=key,
                                          state="done", reason="", digest="0" * 64, updated_at=at))
            rows["builds"].append(dict(compose_id=cid, job_key=key, builder="koji",
                                       external_id=str(n * 1000 + i), recorded_at=t0,
                                       info=json.dumps({"data": {"task_url": f"{KOJI_WEB}/taskinfo?taskID={n * 1000 + i}"}})))
            for kind in ("qcow2", "raw.tar.xz"):
                rows["artifacts"].append(dict(
                    compose_id=cid, job_key=key, kind=kind, image_type="generic", arch="x86_64",
                    intent="deliverable", path=f"compose/Cloud/x86_64/images/{nvra}.{kind}",
                    size=300 << 20, sha256="a" * 64, bootable=True, recorded_at=t1))
            if i % 2:
                for region in ("us-east-1", "eu-west-1"):
                    rows["amis"].append(dict(compose_id=cid, nvra=nvra, region=region,
                                             ami_id=f"ami-{n:08x}{i:09x}", snapshot_ids="[]",
                                             public=True, recorded_at=t1))
    with engine.begin() as conn:
        for table, values in rows.items():
            for chunk in range(0, len(values), 5000):
                conn.execute(insert(getattr(schema, table)), values[chunk:chunk + 5000])
    return ids
