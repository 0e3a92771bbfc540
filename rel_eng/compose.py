"""A compose, step by step: create -> build -> process -> metadata -> publish -> readme -> stage.

Each step is a plain function over a `Compose` (top dir + plan + config, all reloadable from
disk), so `rel-eng compose` runs them in-process and a task queue can run the same functions on
other hosts. Steps record themselves in the manifest keyed by the digest of their inputs: a
rerun skips every step that already finished with the same inputs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rel_eng import checksums, kickstart, metadata, naming, readme, runner, stage, tdl
from rel_eng.builders import BUILDERS, BuildHandle, BuildOutcome, BuildRequest
from rel_eng.config import Config
from rel_eng.errors import InputError, RelEngError
from rel_eng.manifest import Artifact, Manifest, atomic_write, step_digest
from rel_eng.plan import DropPlan, plan_drop
from rel_eng.process import TOOLS as PROCESS_TOOLS
from rel_eng.process import ProcessOptions, process_image
from rel_eng.progress import Progress
from rel_eng.publish import enabled_publishers

STARTED, FINISHED, INCOMPLETE, DOOMED, TERMINATED = (
    "STARTED", "FINISHED", "FINISHED_INCOMPLETE", "DOOMED", "TERMINATED")


class ComposeDoomed(RelEngError):
    pass


class Terminated(RelEngError):
    exit_code = 130


class Recorder(Protocol):
    """Mirrors a compose's progress outside its directory (rel_eng.store); the dir stays the truth."""

    def manifest(self, c: "Compose") -> Manifest: ...  # also records step, build, artifact updates

    def status_changed(self, c: "Compose", status: str) -> None: ...

    def amis(self, c: "Compose", ec2: dict) -> None: ...  # compose/metadata/ec2.json


@dataclass(frozen=True)
class Compose:
    topdir: Path
    plan: DropPlan
    config: Config
    recorder: Recorder | None = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, topdir: Path, recorder: Recorder | None = None) -> "Compose":
        work = topdir / "work"
        try:
            plan = DropPlan.from_dict(json.loads((work / "plan.json").read_text()))
            config = Config.from_dict(json.loads((work / "config.json").read_text()))
        except FileNotFoundError:
            raise InputError(f"{topdir} is not a compose directory (no work/plan.json)") from None
        return cls(topdir, plan, config, recorder)

    @property
    def manifest(self) -> Manifest:
        return Manifest(self.topdir) if self.recorder is None else self.recorder.manifest(self)

    @property
    def metadir(self) -> Path:
        return self.topdir / "compose" / "metadata"

    @property
    def logdir(self) -> Path:
        return self.topdir / "logs"

    def workdir(self, job_key: str) -> Path:
        return self.topdir / "work" / job_key

    def images_dir(self, arch: str) -> Path:
        return self.topdir / "compose" / self.plan.variant / arch / "images"

    def job(self, key: str):
        return next(j for j in self.plan.images if j.key == key)

    @property
    def status(self) -> str:
        try:
            return (self.topdir / "STATUS").read_text().strip()
        except FileNotFoundError:
            return ""

    def set_status(self, status: str) -> None:
        atomic_write(self.topdir / "STATUS", status + "\n")
        if self.recorder is not None:
            self.recorder.status_changed(self, status)


# --- planning against what already exists --------------------------------------------------

def existing_plans(output: Path) -> list[DropPlan]:
    plans = []
    if output.is_dir():
        for p in sorted(output.glob("*/work/plan.json")):
            try:
                plans.append(DropPlan.from_dict(json.loads(p.read_text())))
            except (ValueError, KeyError, TypeError):
                continue  # not ours, or damaged: it cannot collide by name anyway
    return plans


def allocate(config: Config, output: Path, release: str, milestone: str | None,
             date: dt.date, label: str | None = None, builder: str | None = None) -> DropPlan:
    """Plan the next respin: compose id respin and label minor count up past what `output` holds."""
    first = plan_drop(config, release, milestone=milestone, date=date, builder=builder)
    siblings = [p for p in existing_plans(output) if p.release_key == first.release_key]
    same_day = [p for p in siblings if p.date == first.date and p.compose_type == first.compose_type]
    respin = max((p.respin + 1 for p in same_day), default=0)
    minor = 1
    if milestone:
        same_stone = [p for p in siblings if p.milestone == milestone and p.label]
        minor = max((int(p.label.rsplit(".", 1)[1]) + 1 for p in same_stone), default=1)
        if label is not None:
            m = naming.LABEL_RE.match(label)
            if not m or m.group(1) != naming.LABEL_NAMES[milestone]:
                raise InputError(f"label '{label}' does not fit milestone {milestone}",
                                 hint=f"use {naming.LABEL_NAMES[milestone]}-1.N")
            minor = int(m.group(3))
            taken = [p.compose_id for p in same_stone if p.label == label]
            if taken:
                raise InputError(f"{output} already holds compose {taken[0]} with label {label}",
                                 hint="omit --label to get the next respin")
    return plan_drop(config, release, milestone=milestone, date=date, respin=respin,
                     label_minor=minor, builder=builder)


# --- validation before any side effect -----------------------------------------------------

def prepare_inputs(config: Config, plan: DropPlan) -> dict[str, tuple[str, str]]:
    """Flatten every kickstart and render every TDL: {job key: (kickstart text, tdl text)}."""
    inputs = {}
    flat: dict[str, str] = {}
    template = Path(config.tdl_dir) / tdl.TEMPLATE_NAME
    for job in plan.images:
        if job.kickstart not in flat:
            flat[job.kickstart] = kickstart.flatten(Path(config.kickstart_dir) / job.kickstart,
                                                    job.ksversion).text
        inputs[job.key] = (flat[job.kickstart], tdl.render(job, template))
    if Path(tdl.SYSTEM_PYTHON).exists():
        bad = tdl.validate_with_oz({k: v[1] for k, v in inputs.items()})
        if bad:
            key, err = sorted(bad.items())[0]
            raise InputError(f"{template}: generated TDL for {key} is invalid for Oz: {err}")
    return inputs


def required_tools(config: Config, builder: str) -> list[str]:
    return [*getattr(BUILDERS[builder], "tools", ()), *PROCESS_TOOLS,
            *(["gpg"] if config.signing.enabled else [])]


# --- steps ---------------------------------------------------------------------------------

def create(config: Config, plan: DropPlan, output: Path,
           inputs: dict[str, tuple[str, str]], recorder: Recorder | None = None) -> Compose:
    output.mkdir(parents=True, exist_ok=True)
    topdir = output / plan.compose_id
    try:
        topdir.mkdir()
    except FileExistsError:
        raise InputError(f"{output} already holds compose {plan.compose_id}",
                         hint="use another --output or let the respin count up") from None
    c = Compose(topdir, plan, config, recorder)
    atomic_write(topdir / "work" / "plan.json", json.dumps(plan.to_dict(), indent=2))
    atomic_write(topdir / "work" / "config.json", json.dumps(config.to_dict(), indent=2))
    for job in plan.images:
        ks_text, tdl_text = inputs[job.key]
        atomic_write(c.workdir(job.key) / f"{job.nvra}.ks", ks_text)
        atomic_write(c.workdir(job.key) / f"{job.nvra}.tdl", tdl_text)
    c.logdir.mkdir(parents=True, exist_ok=True)
    metadata.write_composeinfo(c.metadir, plan)
    c.set_status(STARTED)
    return c


def epoch_of(plan: DropPlan) -> int:
    day = dt.datetime.strptime(plan.date, "%Y%m%d").replace(tzinfo=dt.timezone.utc)
    return int(day.timestamp())


def build_request(c: Compose, job_key: str) -> BuildRequest:
    job = c.job(job_key)
    wd = c.workdir(job_key)
    return BuildRequest(compose_id=c.plan.compose_id, job=job, kickstart=wd / f"{job.nvra}.ks",
                        tdl=wd / f"{job.nvra}.tdl", workdir=wd, logdir=c.logdir / job_key,
                        topdir=c.topdir, epoch=epoch_of(c.plan), weekly=c.plan.weekly)


def _build_digest(c: Compose, req: BuildRequest) -> str:
    return step_digest("build", c.plan.builder, c.plan.compose_id, req.job,
                       req.kickstart.read_text(), req.tdl.read_text())


def build(c: Compose, job_keys: list[str] | None = None, progress: Progress | None = None,
          builder_factory=None) -> dict[str, BuildOutcome]:
    """Build images not built yet; returns outcomes for every requested image.

    Builds a resumable builder (Koji) already started for the same inputs are watched again
    from their recorded ids instead of being submitted a second time.
    """
    progress = progress or Progress(False)
    keys = job_keys or [j.key for j in c.plan.images]
    manifest = c.manifest
    requests, outcomes = [], {}
    for key in keys:
        req = build_request(c, key)
        digest = _build_digest(c, req)
        if manifest.step_done(f"build:{key}", digest) and manifest.artifacts(job_key=key, kind="raw-disk"):
            outcomes[key] = BuildOutcome(key, True, "already built")
        else:
            requests.append((req, digest))
    if not requests:
        return outcomes
    by_key = {r.job.key: (r, d) for r, d in requests}
    live: list[BuildHandle] = []  # everything cancel may stop, filled the moment ids exist

    def record(handle: BuildHandle) -> None:
        live.append(handle)
        manifest.set_build(handle.job_key, builder=c.plan.builder, external_id=handle.external_id,
                           digest=by_key[handle.job_key][1], data=handle.data)

    factory = builder_factory or BUILDERS[c.plan.builder]
    builder = factory(c.config, on_submitted=record)
    resumed = _resumable_handles(c, builder, by_key) if getattr(builder, "resumable", False) else []
    live.extend(resumed)
    fresh = [r for r, _ in requests if r.job.key not in {h.job_key for h in resumed}]
    with _cancel_on_signal(builder, lambda: list(live), progress):
        with progress.step(f"building {len(requests)} image(s) with {c.plan.builder}"
                           + (f" ({len(resumed)} resumed)" if resumed else "")):
            handles = resumed + (builder.submit(fresh) if fresh else [])
            results = {o.job_key: o for o in builder.wait(handles)}
    for handle in handles:
        req, digest = by_key[handle.job_key]
        outcome = results[handle.job_key]
        if outcome.ok:
            manifest.add_artifacts(builder.collect(handle, req))
            manifest.set_step(f"build:{handle.job_key}", digest, "done")
        else:
            manifest.set_step(f"build:{handle.job_key}", digest, "failed", outcome.reason)
        outcomes[handle.job_key] = outcome
    return outcomes


def _resumable_handles(c: Compose, builder, by_key: dict) -> list[BuildHandle]:
    """Handles recorded by an earlier run for these very inputs, whose build has not failed."""
    steps = c.manifest.read()["steps"]
    handles = []
    for key, rec in c.manifest.builds().items():
        if key not in by_key or rec.get("builder") != c.plan.builder or not rec.get("external_id"):
            continue
        digest = by_key[key][1]
        step = steps.get(f"build:{key}", {})
        if rec.get("digest") != digest or (step.get("state") == "failed" and step.get("digest") == digest):
            continue  # other inputs, or a failure to retry with a fresh build
        handles.append(BuildHandle(key, rec["external_id"], dict(rec.get("data", {}))))
    return handles


class _cancel_on_signal:
    """SIGINT/SIGTERM while builds run: cancel what was submitted, then stop the compose."""

    def __init__(self, builder, handles, progress: Progress):
        self.builder, self.handles, self.progress = builder, handles, progress
        self.previous = {}

    def _handler(self, signum, frame):
        raise Terminated(f"compose interrupted by signal {signal.Signals(signum).name}")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, exc_type, exc, tb):
        for sig, old in self.previous.items():
            signal.signal(sig, old)
        if exc_type is not None and issubclass(exc_type, (Terminated, KeyboardInterrupt)):
            handles = self.handles()
            if handles and getattr(self.builder, "cancel_on_signal", True):
                self.builder.cancel(handles)
                self.progress.note(f"cancelled {len(handles)} submitted build(s)")
        return False


def process(c: Compose, job_key: str, progress: Progress | None = None) -> list[Artifact]:
    """raw disk -> qcow2 + raw.tar.xz for one image; skipped when already done for this raw."""
    progress = progress or Progress(False)
    manifest = c.manifest
    raws = manifest.artifacts(job_key=job_key, kind="raw-disk")
    if not raws:
        raise RelEngError(f"{job_key}: no raw disk in the manifest; build it first")
    raw = raws[0]
    opts = ProcessOptions(xz_preset=c.config.xz_preset, qcow2_compress=c.config.qcow2_compress,
                          epoch=epoch_of(c.plan))
    digest = step_digest("process", raw, opts)
    done = [a for a in manifest.artifacts(job_key=job_key, intent="deliverable")
            if (c.topdir / a.path).is_file()]
    if manifest.step_done(f"process:{job_key}", digest) and len(done) == len(c.job(job_key).outputs):
        return done
    job = c.job(job_key)
    with progress.step(f"post-processing {job.nvra}"):
        arts = process_image(c.topdir / raw.path, job, c.images_dir(job.arch), c.topdir, opts)
    arts = [dataclasses.replace(a, bootable=raw.bootable) for a in arts]
    manifest.add_artifacts(arts)
    manifest.set_step(f"process:{job_key}", digest, "done")
    return arts


def failures(c: Compose) -> dict[str, str]:
    steps = c.manifest.read()["steps"]
    return {k.split(":", 1)[1]: v.get("reason", "") for k, v in steps.items()
            if k.startswith("build:") and v.get("state") == "failed"}


def write_metadata(c: Compose) -> None:
    """images.json, CHECKSUM per arch (clearsigned if configured)."""
    deliverables = c.manifest.artifacts(intent="deliverable")
    metadata.write_images(c.metadir, c.plan, deliverables, c.topdir)
    for arch in c.plan.arches():
        entries = [checksums.Entry(Path(a.path).name, a.size, a.sha256)
                   for a in deliverables if a.arch == arch]
        if not entries:
            continue
        text = checksums.checksum_text(entries)
        if c.config.signing.enabled:
            text = checksums.clearsign(text, c.config.signing)
        atomic_write(c.images_dir(arch) / c.plan.checksum_name(arch), text)


def publish(c: Compose, progress: Progress | None = None) -> None:
    progress = progress or Progress(False)
    for name, publisher in enabled_publishers(c.config):
        with progress.step(f"publishing with {name}"):
            publisher(c.topdir, c.config)
    record_amis(c)


def record_amis(c: Compose) -> None:
    """AMI ids from compose/metadata/ec2.json into the compose store, when there is one."""
    amis = metadata.read_json(c.metadir / "ec2.json")
    if amis and c.recorder is not None:
        c.recorder.amis(c, amis)


def write_readmes(c: Compose, status: str) -> None:
    deliverables = c.manifest.artifacts(intent="deliverable")
    bootable = all(a.bootable for a in deliverables) if deliverables else False
    failed = failures(c)
    metadata.write_summary(c.metadir, c.plan, status, failed, bootable)
    amis = metadata.read_json(c.metadir / "ec2.json")
    for arch in c.plan.arches():
        if not c.images_dir(arch).is_dir():
            continue
        text = readme.render(c.plan, arch, deliverables, c.plan.checksum_name(arch),
                             c.config.signing.enabled, c.config.default_user, bootable,
                             failed, amis)
        atomic_write(c.images_dir(arch) / "README", text)


def stage_files(c: Compose) -> list[stage.StageFile]:
    files = []
    for a in c.manifest.artifacts(intent="deliverable"):
        p = c.topdir / a.path
        files.append(stage.StageFile(p, str(Path(a.path).relative_to("compose")), a.size, a.sha256))
    for arch in c.plan.arches():
        for name in ("README", c.plan.checksum_name(arch)):
            p = c.images_dir(arch) / name
            if p.is_file():
                files.append(stage.StageFile(p, f"{c.plan.variant}/{arch}/images/{name}", p.stat().st_size))
    for p in sorted(c.metadir.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            files.append(stage.StageFile(p, f"metadata/{p.name}", p.stat().st_size))
    return files


def stage_drop(c: Compose, mirror_root: Path, progress: Progress | None = None) -> Path:
    progress = progress or Progress(False)
    with progress.step(f"staging into {mirror_root / c.plan.mirror_path}"):
        return stage.stage(stage_files(c), mirror_root, c.plan.mirror_path,
                           weekly_retention=c.config.weekly_retention if c.plan.weekly else None)


def refresh_staged(c: Compose, mirror_root: Path) -> Path | None:
    """After a late publish (e.g. `rel-eng ec2 publish`): rewrite the READMEs and summary, and
    swap the changed small files into the staged drop one by one, each atomically. Images and
    CHECKSUM files never change after staging, so the drop stays consistent throughout."""
    write_readmes(c, c.status or FINISHED)
    drop = mirror_root / c.plan.mirror_path
    if not drop.is_dir():
        return None
    for f in stage_files(c):
        if f.sha256 or not (drop / f.rel).parent.is_dir():
            continue
        atomic_write(drop / f.rel, f.src.read_bytes())
    return drop


def finalize(c: Compose, mirror_root: Path, progress: Progress | None = None) -> str:
    """After builds and processing: fail, or write metadata, publish, readme, stage, FINISHED."""
    failed = failures(c)
    required = [k for k in failed if not c.job(k).optional]
    if required:
        c.set_status(DOOMED)
        metadata.write_summary(c.metadir, c.plan, DOOMED, failed, False)
        raise ComposeDoomed(
            f"compose {c.plan.compose_id} is DOOMED: required image(s) failed: "
            + "; ".join(f"{k}: {failed[k]}" for k in sorted(required)),
            hint=f"see {c.logdir}; nothing was staged or published")
    status = INCOMPLETE if failed else FINISHED
    write_metadata(c)
    publish(c, progress)
    write_readmes(c, status)
    stage_drop(c, mirror_root, progress)
    c.set_status(status)
    return status


# --- the whole thing in-process ------------------------------------------------------------

def run_compose(config: Config, output: Path, release: str, milestone: str | None,
                date: dt.date, *, label: str | None = None, builder: str | None = None,
                mirror_root: Path | None = None, progress: Progress | None = None,
                recorder: Recorder | None = None) -> Compose:
    progress = progress or Progress(False)
    plan = allocate(config, output, release, milestone, date, label=label, builder=builder)
    runner.require_all(required_tools(config, plan.builder))
    inputs = prepare_inputs(config, plan)  # every input checked before anything is written
    c = create(config, plan, output, inputs, recorder)
    progress.note(f"compose {plan.compose_id} started in {c.topdir}")
    return resume(c, mirror_root or output / "mirror", progress)


def resume(c: Compose, mirror_root: Path, progress: Progress | None = None) -> Compose:
    """Run every step not yet done. A fresh compose and a crashed one go through the same path."""
    progress = progress or Progress(False)
    try:
        outcomes = build(c, progress=progress)
        for key, outcome in sorted(outcomes.items()):
            if outcome.ok:
                process(c, key, progress)
            else:
                progress.note(f"build failed: {key}: {outcome.reason}"
                              + (" (optional arch, compose goes on)" if c.job(key).optional else ""))
        status = finalize(c, mirror_root, progress)
    except (Terminated, KeyboardInterrupt):
        c.set_status(TERMINATED)
        raise
    except ComposeDoomed:
        raise
    except BaseException:
        if c.status == STARTED:
            c.set_status(DOOMED)
        raise
    progress.note(f"compose {c.plan.compose_id}: {status}")
    return c
