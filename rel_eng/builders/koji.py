"""The Koji builder: `buildImageOz` per image type, watched by multicall, raw disks downloaded.

submit  uploads the flattened kickstart the way koji's CLI does (uploadWrapper into a unique
        cli-image/ dir) and makes one buildImageOz call per image type with every arch; each
        job's handle is reported through `on_submitted` as soon as its task id exists.
wait    polls the whole task tree (parent `image` tasks and their `createImage` children) with
        ONE multicall round trip per round, whatever the number of tasks; failed tasks' logs
        are saved into the job's log dir. Handles from an earlier run are watched the same way.
collect downloads the image koji built (work dir for scratch, image build dir otherwise),
        checks it against the checksum the hub recorded (listArchives; real builds only) and
        turns its raw.xz into the sparse raw disk post-processing starts from, digest and all.
cancel  cancels the submitted parent tasks (koji cancels their children).

Only koji.ClientSession talks to the hub; the koji CLI is never run.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import koji
import requests

from rel_eng import runner
from rel_eng.builders import koji_opts
from rel_eng.builders.base import Builder, BuildHandle, BuildOutcome, BuildRequest
from rel_eng.builders.koji_download import (DownloadFailed, Retry, UnsafeFileName, check_archive,
                                            check_name, download, unxz_sparse)
from rel_eng.builders.koji_opts import planned_calls
from rel_eng.builders.koji_preflight import preflight
from rel_eng.builders.koji_session import (NOAUTH, NOTHING_SUBMITTED, TASKS_KEPT, HubError,
                                           HubProfile, fault_from_result,
                                           fault_text, full_fault, login, never_sent,
                                           new_session, read_profile, with_retries)
from rel_eng.digest import BlockDigest, raw_digest
from rel_eng.errors import Conflict, RelEngError
from rel_eng.manifest import Artifact

log = logging.getLogger(__name__)

STATES = koji.TASK_STATES
FINAL = (STATES["CLOSED"], STATES["FAILED"], STATES["CANCELED"])
LOG_SUFFIXES = (".log",)
# kojihub's recycle_build when a BUILDING build holds the NVR (koji 1.35: "Build already in
# progress (task %(task_id)d)"), the fault kojid's image task ends with.
IN_PROGRESS = re.compile(r"Build already in progress \(task (\d+)\)")
LOG_PREFIXES = ("screenshot.",)  # kojid uploads the Oz VM's last screen as screenshot.<ext>

__all__ = ["KojiBuilder", "planned_calls"]


class KojiBuilder(Builder):
    name = "koji"
    tools = ("xz",)
    resumable = True  # wait()/collect() take handles recorded by an earlier process
    planned_calls = staticmethod(planned_calls)  # `rel-eng plan --builder koji`
    preflight = staticmethod(preflight)  # before the compose dir exists: target, tag, packages

    def __init__(self, config, on_submitted: Callable[[BuildHandle], None] | None = None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(config, on_submitted)
        self.kcfg = config.koji
        self.cancel_on_signal = self.kcfg.cancel_on_signal
        self.submitted: list[BuildHandle] = []  # submitted or resumed: what cancel() may stop
        self.poll_rounds = 0  # hub round trips made by wait(), one per round
        self._sleep, self._clock = sleep, clock  # injectable: tests count rounds, not seconds
        self._profile: HubProfile | None = None
        self._session: koji.ClientSession | None = None
        self._http: requests.Session | None = None
        self._children: dict[tuple[int, str], int] = {}  # (parent, koji arch) -> createImage id

    # --- connections ------------------------------------------------------------------------

    @property
    def profile(self) -> HubProfile:
        if self._profile is None:
            self._profile = read_profile(self.kcfg)
        return self._profile

    def session(self, logged_in: bool = False) -> koji.ClientSession:
        if self._session is None:
            self._session = new_session(self.profile)
        if logged_in:
            if self.profile.authtype in NOAUTH:
                raise Conflict(f"koji profile '{self.profile.name}' has authtype "
                               f"{self.profile.authtype}: submitting and cancelling image "
                               "builds need a login",
                               hint="use a profile with authtype ssl or gssapi")
            session = self._session
            self._hub(lambda: login(session, self.profile), "logging in")
        return self._session

    def http(self) -> requests.Session:
        if self._http is None:
            self._http = requests.Session()
            self._http.headers["User-Agent"] = "rel-eng (koji builder)"
        return self._http

    def _retry(self) -> Retry:
        return Retry(self.kcfg.retries, self.kcfg.retry_backoff, self.kcfg.retry_backoff_max,
                     self._sleep)

    def _hub(self, call, what: str, **kw):
        # Only once a task exists (submitted here, or recorded by an earlier run and being
        # watched) does koji keep anything a rerun could resume.
        kw.setdefault("hint", TASKS_KEPT if self.submitted else NOTHING_SUBMITTED)
        return with_retries(call, what, self.profile, self.kcfg, sleep=self._sleep,
                            clock=self._clock, **kw)

    # --- submit -----------------------------------------------------------------------------

    def submit(self, requests_: list[BuildRequest]) -> list[BuildHandle]:
        if not requests_:
            return []
        weekly = _weekly(requests_)
        jobs = [r.job for r in requests_]
        by_key = {r.job.key: r for r in requests_}
        # Every pure check (and every kickstart read) before the first upload.
        calls = koji_opts.image_calls(jobs, self.config, weekly=weekly,
                                      kickstarts=koji_opts.planned_kickstarts(jobs, self.config))
        kickstarts = {c.image_type: _one_kickstart([by_key[j.key] for j in c.jobs.values()])
                      for c in calls}
        session = self.session(logged_in=True)
        handles = []
        for call in calls:
            opts = dict(call.opts)
            if not self.kcfg.ksurl:
                opts["kickstart"] = self._upload(session, kickstarts[call.image_type],
                                                 next(iter(call.jobs.values())).kickstart)
            task_id = self._build_image_oz(session, call, opts)
            url = self.profile.task_url(task_id)
            for arch, job in call.jobs.items():
                handle = BuildHandle(job.key, str(task_id), {
                    "task_id": task_id, "koji_arch": arch, "optional": job.optional,
                    "scratch": bool(opts.get("scratch")), "logdir": str(by_key[job.key].logdir),
                    "hub": self.profile.server, "task_url": url,
                    "nvr": f"{call.name}-{call.version}-{opts.get('release') or job.release}",
                })
                self.submitted.append(handle)
                self.on_submitted(handle)  # recorded before anything else can fail
                handles.append(handle)
            log.info("koji task %d builds %s %s-%s for %s: %s", task_id, call.image_type,
                     call.name, call.version, ", ".join(call.arches), url)
        order = {r.job.key: i for i, r in enumerate(requests_)}
        return sorted(handles, key=lambda h: order[h.job_key])

    def _upload(self, session: koji.ClientSession, path: Path, name: str) -> str:
        """uploadWrapper into a fresh cli-image/<unique>/ dir; returns opts['kickstart']."""
        alphabet = string.ascii_letters
        unique = f"{time.time()!r}.{''.join(secrets.choice(alphabet) for _ in range(8))}"
        serverdir = koji_opts.upload_dir(unique)
        try:
            # overwrite=True (uploadWrapper's default) makes a resent chunk harmless.
            self._hub(lambda: session.uploadWrapper(str(path), serverdir, name=name),
                      f"uploading kickstart {name}")
        except koji.GenericError as exc:
            raise HubError(f"koji hub {self.profile.server} refused the kickstart upload "
                           f"{serverdir}/{name}: {fault_text(exc)}") from None
        return koji_opts.kickstart_opt(name, unique)

    def _build_image_oz(self, session: koji.ClientSession, call: koji_opts.ImageCall,
                        opts: dict) -> int:
        what = f"buildImageOz {call.name} {call.version} ({call.image_type})"
        try:
            # Resent only when no connection was made: a lost answer may hide a created task.
            task_id = self._hub(lambda: session.buildImageOz(*call.args, opts=opts), what,
                                retryable=never_sent)
        except koji.ActionNotAllowed as exc:
            raise HubError(f"koji hub {self.profile.server} refused {what}: {fault_text(exc)}",
                           hint="the koji user needs the 'image' permission "
                                "(koji grant-permission image USER)") from None
        except koji.GenericError as exc:
            raise HubError(f"koji hub {self.profile.server} refused {what}: {fault_text(exc)}",
                           hint="nothing was submitted for this image type") from None
        except (requests.exceptions.RequestException, koji.xmlrpcplus.Fault) as exc:
            raise HubError(f"{what}: no answer from koji hub {self.profile.server} ({exc})",
                           hint=f"a task may exist: check {self.profile.weburl}/tasks "
                                "before rerunning") from None
        if not isinstance(task_id, int):
            raise HubError(f"{what}: koji hub answered {task_id!r}, not a task id")
        return task_id

    # --- wait -------------------------------------------------------------------------------

    def wait(self, handles: list[BuildHandle], timeout: float | None = None) -> list[BuildOutcome]:
        if not handles:
            return []
        known = {(h.job_key, h.external_id) for h in self.submitted}
        self.submitted += [h for h in handles if (h.job_key, h.external_id) not in known]
        watcher = TaskWatcher(self.session(), self.profile, handles)
        start = self._clock()
        deadline = start + (self.kcfg.timeout if timeout is None else timeout)
        while True:
            self._hub(watcher.poll, "watching tasks " + watcher.describe(), deadline=deadline)
            self.poll_rounds += 1
            if watcher.done():
                break
            if watcher.details_pending():
                continue  # fetch the faults of tasks that just failed, without sleeping
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            self._sleep(min(self.kcfg.poll_interval, remaining))
        outcomes = []
        for handle in handles:
            outcome, child = watcher.outcome(handle, self._clock() - start)
            if outcome.ok:
                self._children[(watcher.parent_of(handle), handle.data["koji_arch"])] = child
            elif child and child in watcher.failed_outputs:
                where = self._save_logs(child, watcher.failed_outputs[child],
                                        Path(handle.data["logdir"]))
                outcome = BuildOutcome(outcome.job_key, False, f"{outcome.reason}; {where}")
            if not outcome.ok:
                kept = _keep_faults(watcher, [watcher.parent_of(handle), child],
                                    Path(handle.data["logdir"]))
                if kept:
                    outcome = BuildOutcome(outcome.job_key, False,
                                           f"{outcome.reason}; the whole fault in {kept}")
            outcomes.append(outcome)
        return outcomes

    def _save_logs(self, task_id: int, listing: dict, logdir: Path) -> str:
        """Copy a failed task's logs and screenshot into logdir; returns what to tell people."""
        dest = logdir / f"koji-task-{task_id}"
        base = self.profile.pathinfo().task(task_id)
        saved, problems = [], []
        for name in sorted(listing):
            try:
                check_name(name, f"koji task {task_id}")
            except UnsafeFileName as exc:
                problems.append(str(exc))
                continue
            if not (name.endswith(LOG_SUFFIXES) or name.startswith(LOG_PREFIXES)):
                continue
            try:
                download(self.http(), f"{base}/{name}", dest / name,
                         int(listing[name]["st_size"]), self._retry(), self.kcfg.download_timeout,
                         self.profile.verify)
                saved.append(name)
            except (RelEngError, requests.exceptions.RequestException, OSError) as exc:
                problems.append(f"{name}: {exc}")
        for p in problems:
            log.warning("koji task %d: log not saved: %s", task_id, p)
        text = f"logs ({', '.join(saved)}) in {dest}" if saved else "no logs saved"
        return text + (f" ({len(problems)} not saved)" if problems else "")

    # --- collect ----------------------------------------------------------------------------

    def collect(self, handle: BuildHandle, request: BuildRequest) -> list[Artifact]:
        runner.require("xz")
        job = request.job
        parent = int(handle.external_id)
        arch = handle.data["koji_arch"]
        session = self.session()
        child = self._children.get((parent, arch)) or self._find_child(session, parent, arch)
        where = f"koji task {child} ({self.profile.task_url(child)})"

        def fetch():
            with session.multicall() as m:
                result = m.getTaskResult(child)
                listing = m.listTaskOutput(child, stat=True)
            return result.result, listing.result

        try:
            result, listing = self._hub(fetch, f"reading the result of {where}")
        except koji.GenericError as exc:
            raise HubError(f"{where}: {fault_text(exc)}") from None
        image = _pick_image(result, listing, job, arch, where)
        size = int(listing[image]["st_size"])
        nvr = {"name": result["name"], "version": result["version"], "release": result["release"]}
        archive = None
        if handle.data.get("scratch"):
            # kojihub moves scratch images to scratch/<owner>/task_<id>/ and leaves a symlink in
            # the task's work dir (HostExports.moveImageBuildToScratch with
            # koji.util.move_and_symlink, koji 1.35), which stays until the task is
            # garbage-collected (days, long after collect runs). The work dir needs no owner
            # name, which the handle lacks.
            base = self.profile.pathinfo().task(child)  # koji records no checksum for these
        else:
            base = self.profile.pathinfo().imagebuild(nvr)
            archive = self._archive(session, nvr, image, where)
        raw = request.workdir / f"{job.nvra}.raw"
        log.info("downloading %s (%d bytes) from %s", image, size, base)
        if image.endswith(".raw.xz"):
            packed = download(self.http(), f"{base}/{image}", request.workdir / image, size,
                              self._retry(), self.kcfg.download_timeout, self.profile.verify)
            if archive is not None:
                check_archive(packed, archive, where)
            digest = BlockDigest()
            unxz_sparse(packed, raw, digest)
            packed.unlink()  # the raw disk is what the next step reads
            sha = digest.hexdigest()
        else:
            download(self.http(), f"{base}/{image}", raw, size, self._retry(),
                     self.kcfg.download_timeout, self.profile.verify)
            if archive is not None:
                check_archive(raw, archive, where)
            sha = raw_digest(raw)
        return [Artifact.raw_disk(job, raw, request.topdir, sha, bootable=True)]

    def _archive(self, session: koji.ClientSession, nvr: dict, image: str, where: str) -> dict:
        """The hub's record of a real build's image file (getBuild + listArchives)."""
        label = f"{nvr['name']}-{nvr['version']}-{nvr['release']}"
        build = self._hub(lambda: session.getBuild(label), f"looking up build {label}")
        if not isinstance(build, dict) or "id" not in build:
            raise HubError(f"{where}: the hub has no build {label} for a non-scratch image")
        archives = self._hub(lambda: session.listArchives(buildID=build["id"], type="image"),
                             f"listing the archives of build {label}")
        for a in archives if isinstance(archives, list) else []:
            if isinstance(a, dict) and a.get("filename") == image:
                return a
        raise DownloadFailed(f"{where}: build {label} has no archive record for {image}",
                             hint="the hub cannot vouch for the file; check the build in koji")

    def _find_child(self, session: koji.ClientSession, parent: int, arch: str) -> int:
        children = self._hub(lambda: session.getTaskChildren(parent), f"listing task {parent}")
        for child in children:
            if child["method"] == "createImage" and (child.get("label") or child["arch"]) == arch:
                return child["id"]
        raise HubError(f"koji task {parent} ({self.profile.task_url(parent)}) has no createImage "
                       f"task for {arch}")

    def cancelled(self, handles: list[BuildHandle]) -> set[str]:
        """Job keys of recorded handles whose `image` task was cancelled (a TERMINATED compose):
        nothing to watch there, the image is submitted again. Koji marks the task's BUILDING
        build CANCELED with it, and recycles a CANCELED NVR, so the same release is reused."""
        parents = sorted({int(h.external_id) for h in handles if h.external_id})
        if not parents:
            return set()
        session = self.session()

        def ask():
            with session.multicall() as m:
                call = m.getTaskInfo(parents)
            return call.result

        infos = self._hub(ask, f"looking up recorded tasks {parents}", hint=TASKS_KEPT)
        gone = {p for p, info in zip(parents, infos or [])
                if isinstance(info, dict) and info.get("state") == STATES["CANCELED"]}
        keys = {h.job_key for h in handles if h.external_id and int(h.external_id) in gone}
        for p in sorted(gone):
            log.warning("koji task %d (%s) was cancelled: its images are submitted again", p,
                        self.profile.task_url(p))
        return keys

    # --- cancel -----------------------------------------------------------------------------

    def cancel(self, handles: list[BuildHandle]) -> None:
        """Cancel the parent tasks behind `handles` (koji cancels their children); says so."""
        parents = sorted({int(h.external_id) for h in handles if h.external_id})
        if not parents:
            return
        try:
            session = self.session(logged_in=True)
            session.new_session()  # a signal may have cut a request short on the old connection

            def cancel_all():
                with session.multicall() as m:
                    return {p: m.cancelTask(p) for p in parents}

            calls = self._hub(cancel_all, f"cancelling tasks {parents}")
        except RelEngError as exc:
            log.error("could not cancel koji tasks %s: %s; cancel them with: koji cancel %s",
                      ", ".join(map(str, parents)), exc, " ".join(map(str, parents)))
            return
        for parent, call in calls.items():
            try:
                call.result
            except koji.GenericError as exc:
                log.error("koji task %d (%s) not cancelled: %s", parent,
                          self.profile.task_url(parent), fault_text(exc))
            else:
                log.warning("cancelled koji task %d and its children (%s)", parent,
                            self.profile.task_url(parent))


# --- watching -------------------------------------------------------------------------------

@dataclass
class _Tree:
    """One parent `image` task and what the last round said about it and its children."""

    task_id: int
    arches: set[str]
    info: dict | None = None
    missing: bool = False
    children: dict[str, dict] = field(default_factory=dict)  # koji arch -> task info
    children_complete: bool = False

    @property
    def final(self) -> bool:
        return self.missing or (self.info is not None and self.info["state"] in FINAL)


class TaskWatcher:
    """The task trees behind some handles; `poll()` refreshes all of them in one round trip."""

    def __init__(self, session: koji.ClientSession, profile: HubProfile,
                 handles: list[BuildHandle]):
        self.session = session
        self.profile = profile
        self.trees: dict[int, _Tree] = {}
        for h in handles:
            if not h.external_id or "koji_arch" not in h.data:
                raise Conflict(f"{h.job_key}: build record has no koji task "
                               f"(external id {h.external_id!r}, data {sorted(h.data)})",
                               hint="remove the stale build record and rebuild")
            tree = self.trees.setdefault(int(h.external_id), _Tree(int(h.external_id), set()))
            tree.arches.add(h.data["koji_arch"])
        self.faults: dict[int, str] = {}  # FAILED task -> its fault, one line
        self.fault_details: dict[int, str] = {}  # FAILED task -> the whole fault text
        self.failed_outputs: dict[int, dict] = {}  # FAILED createImage -> listTaskOutput(stat)
        self._pending: set[int] = set()  # FAILED tasks whose fault is not fetched yet

    def describe(self) -> str:
        ids = sorted(self.trees)
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        return ", ".join(map(str, ids[:5])) + more

    @staticmethod
    def parent_of(handle: BuildHandle) -> int:
        return int(handle.external_id)

    def _child_ids(self) -> set[int]:
        return {c["id"] for t in self.trees.values() for c in t.children.values()}

    def poll(self) -> None:
        """One multicall: info of every unfinished task, children of parents whose children are
        not all known yet, and the fault (and outputs) of tasks seen failing last round."""
        info_ids = [t.task_id for t in self.trees.values() if not t.final]
        info_ids += [c["id"] for t in self.trees.values() for c in t.children.values()
                     if c["state"] not in FINAL]
        kids_for = [t.task_id for t in self.trees.values() if not t.children_complete]
        pending = sorted(self._pending)
        children = self._child_ids()
        with self.session.multicall() as m:
            info_call = m.getTaskInfo(info_ids) if info_ids else None
            kid_calls = {p: m.getTaskChildren(p) for p in kids_for}
            result_calls = {t: m.getTaskResult(t, raise_fault=False) for t in pending}
            output_calls = {t: m.listTaskOutput(t, stat=True) for t in pending if t in children}
        infos = self._result(info_call, info_ids) if info_call else []
        by_id = dict(zip(info_ids, infos))
        for tree in self.trees.values():
            if tree.task_id in by_id:
                tree.info = by_id[tree.task_id]
                tree.missing = tree.info is None
            for arch, child in list(tree.children.items()):
                if child["id"] in by_id and by_id[child["id"]] is not None:
                    tree.children[arch] = by_id[child["id"]]
        for parent, call in kid_calls.items():
            tree = self.trees[parent]
            for child in self._result(call, [parent]) or []:
                if child["method"] == "createImage":
                    tree.children[child.get("label") or child["arch"]] = child
            # The parent's info came earlier in the same multicall: if it had finished by
            # then, this list of children is the final one.
            if tree.final or tree.arches <= set(tree.children):
                tree.children_complete = True
        for task_id, call in result_calls.items():
            result = self._result(call, [task_id])
            if isinstance(result, dict) and "faultCode" in result:
                self.faults[task_id] = fault_from_result(result)
                self.fault_details[task_id] = full_fault(result)
            else:
                self.faults[task_id] = f"task failed: {result!r}"
            self._pending.discard(task_id)
        for task_id, call in output_calls.items():
            self.failed_outputs[task_id] = self._result(call, [task_id]) or {}
        for task_id, info in self._all_infos():
            if info["state"] == STATES["FAILED"] and task_id not in self.faults:
                self._pending.add(task_id)

    def _all_infos(self):
        for tree in self.trees.values():
            if tree.info is not None:
                yield tree.task_id, tree.info
            for child in tree.children.values():
                yield child["id"], child

    def _result(self, call, task_ids: list[int]):
        try:
            return call.result
        except koji.GenericError as exc:
            where = ", ".join(f"{t} ({self.profile.task_url(t)})" for t in task_ids[:5])
            raise HubError(f"koji hub {self.profile.server} fault for task(s) {where}: "
                           f"{fault_text(exc)}") from None

    def details_pending(self) -> bool:
        return bool(self._pending)

    def done(self) -> bool:
        return not self._pending and all(t.final and t.children_complete
                                         for t in self.trees.values())

    def outcome(self, handle: BuildHandle, elapsed: float) -> tuple[BuildOutcome, int | None]:
        """The handle's outcome and its createImage task id (if one exists)."""
        key, arch = handle.job_key, handle.data["koji_arch"]
        tree = self.trees[int(handle.external_id)]
        url = self.profile.task_url(tree.task_id)
        child = tree.children.get(arch)
        child_id = child["id"] if child else None

        def fail(reason: str) -> tuple[BuildOutcome, int | None]:
            return BuildOutcome(key, False, reason), child_id

        if tree.missing:
            return fail(f"koji task {tree.task_id} does not exist on {self.profile.server}")
        if child and child["state"] == STATES["FAILED"]:
            return fail(f"koji createImage task {child_id} ({arch}) FAILED: "
                        f"{self.faults.get(child_id, 'no fault reported')} - "
                        f"{self.profile.task_url(child_id)}")
        if not tree.final:
            state = STATES[tree.info["state"]] if tree.info else "unknown"
            return fail(f"koji task {tree.task_id} still {state} after {elapsed:.0f}s ({url}); "
                        "koji keeps building: rerun the compose to resume watching")
        state = tree.info["state"]
        if state == STATES["CLOSED"] and child and child["state"] == STATES["CLOSED"]:
            return BuildOutcome(key, True, f"koji task {child_id} ({arch})"), child_id
        if state == STATES["CANCELED"]:
            return fail(f"koji task {tree.task_id} was cancelled ({url})")
        if state == STATES["FAILED"]:
            why = self.faults.get(tree.task_id, "no fault reported")
            held = IN_PROGRESS.search(why)
            if held:  # kojihub's recycle_build: another task holds the NVR (a compose racing us)
                other = int(held.group(1))
                nvr = handle.data.get("nvr") or "this image's build"
                return fail(f"koji build {nvr} is already in progress in task {other} "
                            f"({self.profile.task_url(other)}), so task {tree.task_id} failed "
                            f"({url}); a rerun of the compose takes the next respin")
            done = (f"; its {arch} task {child_id} was {STATES[child['state']]}"
                    if child else f"; no {arch} task was started")
            return fail(f"koji task {tree.task_id} FAILED: {why} ({url}){done}")
        what = f"{arch} task {child_id} is {STATES[child['state']]}" if child else f"no {arch} task"
        return fail(f"koji task {tree.task_id} finished but its {what} ({url})")


# --- helpers --------------------------------------------------------------------------------

def _keep_faults(watcher: TaskWatcher, task_ids: list, logdir: Path) -> str:
    """Write the whole text of each multi-line fault (kojid's traceback) of these tasks into
    the image's log dir; returns where, "" when there was none."""
    from rel_eng.atomic import atomic_write
    from rel_eng.redact import redact

    kept = []
    for task_id in task_ids:
        text = watcher.fault_details.get(task_id, "") if task_id else ""
        if "\n" not in text.strip():
            continue  # one line: the reason already says all of it
        path = logdir / f"koji-task-{task_id}-fault.txt"
        try:
            logdir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, redact(text).rstrip("\n") + "\n")
        except OSError as exc:
            log.warning("koji task %s: fault not kept in %s: %s", task_id, path, exc)
            continue
        kept.append(str(path))
    return ", ".join(kept)


def _weekly(requests_: list[BuildRequest]) -> bool:
    """Whether these requests belong to a weekly (scratch) drop."""
    flags = {r.weekly for r in requests_}
    if len(flags) > 1:
        raise Conflict("requests mix weekly and milestone images")
    return flags.pop()


def _one_kickstart(requests_: list[BuildRequest]) -> Path:
    """The flattened kickstart of an image type; one koji build uses it for every arch."""
    first = requests_[0]
    text = first.kickstart.read_bytes()
    for req in requests_[1:]:
        if req.kickstart.read_bytes() != text:
            raise Conflict(f"{req.kickstart} differs from {first.kickstart}",
                           hint="koji builds every arch of an image from one kickstart")
    return first.kickstart


def _pick_image(result: object, listing: object, job, arch: str, where: str) -> str:
    """The raw(.xz) file of a createImage result, after checking every name the hub gave."""
    if not isinstance(result, dict) or not isinstance(listing, dict):
        raise HubError(f"{where}: unexpected result {type(result).__name__}/"
                       f"{type(listing).__name__} from the hub")
    names = [*result.get("files", []), *result.get("logs", []), *listing]
    for name in names:
        check_name(name, where)  # all of them, before anything touches the disk
    nvr = (result.get("name"), result.get("version"), result.get("release"))
    if nvr != (job.name, job.version, job.release) or result.get("arch") != arch:
        raise HubError(f"{where}: built {'-'.join(map(str, nvr))}.{result.get('arch')}, "
                       f"expected {job.name}-{job.version}-{job.release}.{arch}")
    for part in nvr:
        check_name(part, where)  # they become URL path components
    stem = f"{job.name}-{job.version}-{job.release}.{arch}"
    for ext in ("raw.xz", "raw"):
        name = f"{stem}.{ext}"
        if name in result.get("files", []):
            if name not in listing:
                raise HubError(f"{where}: {name} is in the task result but not in its output")
            return name
    raise HubError(f"{where}: no {stem}.raw.xz or .raw among the task's files "
                   f"({', '.join(result.get('files', []))})",
                   hint="keep raw-xz in [koji] formats")
