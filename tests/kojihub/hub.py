"""The test hub's state and XML-RPC API, plus a simulated kojid running the image tasks.

The API methods keep kojihub's names, signatures (checked with koji.util.call_with_argcheck, so a
wrong call is a koji.ParameterError fault), permission checks and faults (koji's own exception
classes and codes). kojid is simulated by a thread that moves tasks FREE -> OPEN ->
CLOSED/FAILED/CANCELED the way kojid's BuildBaseImageTask (`image`) and BaseImageTask
(`createImage`) do: children per arch labelled with the arch, optional arches allowed to fail,
a required failure cancelling the siblings and failing the parent, scratch outputs moved to
scratch/<user>/task_<id>/ and build outputs to packages/<n>/<v>/<r>/images/, with symlinks left
in the task work dir. Image files are real (see assets.py).

Each behaviour the client relies on follows koji's own source, read at koji 1.35.2-154-g2083513a
(github koji-project/koji, kojihub/kojihub.py and builder/kojid):
- NVR reuse: kojid BuildImageTask.initImageBuild -> HostExports.initImageBuild ->
  get_next_build -> new_build -> recycle_build. A BUILDING build is refused unless it is the same
  task; a FAILED or CANCELED build is recycled (same build id) only when it has no tag history,
  no rpms and no archives; any other state is "Build already exists".
- Scratch outputs: kojid BuildBaseImageTask.handler -> HostExports.moveImageBuildToScratch moves
  every file and log of each createImage result to scratch/<owner name>/task_<subtask id>/ with
  koji.util.move_and_symlink (relative symlink left in the task's work dir); the report names the
  work dirs ("Scratch image build results in: ...").
- Non-scratch outputs: HostExports.completeImageBuild -> importImage -> import_archive_internal,
  which hashes each file itself (sha256 when no checksum is given) before the build is COMPLETE.
- Package list: BuildImageTask.initImageBuild refuses an image not in the destination tag's
  list (getPackageConfig), unless scratch or skip_tag; checkTagPackage says the same.
- Arches: BuildBaseImageTask.handler refuses an arch whose koji.canonArch is not in the build
  tag's arches ("Invalid arch for build tag"); a hyphen in version or release is an
  ApplianceError; required children failing fail the parent (wait(failany=True, canfail=...)),
  "all subtasks failed" when every child failed.
- listTaskOutput(stat=True): list_task_output walks the task's work dir and os.stat()s each file
  (so a moved image's symlink reports the moved file), st_size as a string.
- cancelTask: RootExports.cancelTask -> Task.cancel(recurse=True) cancels the children too.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import shutil
import stat as statmod
import threading
import time
import xml.sax.saxutils as saxutils
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import koji
import koji.util
from koji.xmlrpcplus import Fault

from .assets import Images

S = koji.TASK_STATES
FINAL = (S["CLOSED"], S["FAILED"], S["CANCELED"])
USERS = {  # name -> (id, permissions)
    "releng": (1, {"image"}),
    "nobody": (2, set()),
    "kojiadmin": (3, {"admin"}),
}
TARGETS = {  # target -> (build tag, dest tag)
    "f19-candidate": ("f19-build", "f19"),
    "rawhide": ("f20-build", "f20"),
}
TAG_ARCHES = "i686 x86_64"
TAGS = {  # name -> (id, arches); build tags 10/20 and destination tags 11/21, as getBuildTarget says
    "f19-build": (10, TAG_ARCHES), "f19": (11, None),
    "f20-build": (20, TAG_ARCHES), "f20": (21, None),
}
# The package list of each destination tag: kojid refuses a non-scratch image not listed there.
TAG_PACKAGES = {"f19": {"Fedora-Cloud-Base", "Fedora-Cloud-Base-EC2"},
                "f20": {"Fedora-Cloud-Base", "Fedora-Cloud-Base-EC2"}}
CHANNELS = {"default": 1, "image": 2}
OZ_ARCHES = ("i386", "x86_64", "ppc64", "ppc64le", "aarch64", "armv7l", "s390x")
FIRST_TASK_ID = 9998  # ids cross 10000, so tasks/<id % 10000>/<id> is exercised
WRITE_METHODS = {"buildImageOz", "cancelTask", "uploadFile", "rawUpload"}
SUPPORTED_FORMATS = ("docker", "liveimg-squashfs", "qcow", "qcow2", "raw", "raw-xz", "rhevm-ova",
                     "tar-gz", "vagrant-hyperv", "vagrant-libvirt", "vagrant-virtualbox",
                     "vagrant-vmware-fusion", "vdi", "vmdk", "vpc", "vsphere-ova")


@dataclass
class Injections:
    """Failures the hub can be told to produce. Each one has a test."""

    fail_arches: set = field(default_factory=set)  # createImage for these koji arches FAILS
    slow: dict = field(default_factory=dict)  # koji arch -> seconds its createImage runs
    submit_fault: Exception | None = None  # raised by buildImageOz number `submit_fault_on`
    submit_fault_on: int = 1
    restart_after_rounds: int = 0  # restart the HTTP server after this many watch rounds
    down_for: float = 1.0
    truncate: dict | None = None  # {"suffix": ".raw.xz", "at": bytes, "times": 1}
    corrupt: dict | None = None  # {"suffix": ".raw.xz", "at": byte offset}: served flipped
    hostile_name: str = ""  # listed in every createImage result and output
    hold_free: bool = False  # kojid takes no task: each stays FREE (queued, not started)
    crash_arches: dict = field(default_factory=dict)  # koji arch -> a non-koji exception kojid
    # raises in createImage (e.g. libvirt's OSError): a Fault 1 holding the traceback


@dataclass
class Task:
    id: int
    method: str
    arch: str
    owner: int
    channel_id: int
    request: list
    parent: int | None = None
    label: str | None = None
    priority: int = koji.PRIO_DEFAULT
    state: int = S["FREE"]
    host_id: int | None = None
    create_ts: float = field(default_factory=time.time)
    start_ts: float | None = None
    completion_ts: float | None = None
    waiting: bool | None = None
    awaited: bool | None = None
    weight: float = 1.0
    result: Any = None  # a value, or a Fault when FAILED
    due: float = 0.0  # simulation: when an OPEN createImage finishes
    sim: dict = field(default_factory=dict)


def _when(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}+00:00"


def _as_fault(exc: BaseException) -> Fault:
    """koji.daemon.TaskManager.runTask (koji 1.35.2): a koji error passes through as its
    faultCode and message; any other exception becomes Fault(1, <the whole traceback>)."""
    if isinstance(exc, Fault):
        return exc
    if isinstance(exc, koji.GenericError):
        return Fault(exc.faultCode, str(exc))
    import traceback

    return Fault(getattr(type(exc), "faultCode", 1),
                 "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


class Hub:
    """State shared by every HTTP server incarnation (a restart keeps it)."""

    exposed = ("hello", "getKojiVersion", "getAPIVersion", "getLoggedInUser", "sslLogin",
               "logout", "getBuildTarget", "buildImageOz", "getTaskInfo", "getTaskChildren",
               "getTaskResult", "listTaskOutput", "cancelTask", "uploadFile", "checkUpload",
               "getBuild", "listArchives", "listRPMs", "queryHistory", "getTag", "listPackages",
               "checkTagPackage", "hasPerm", "listTasks")

    def __init__(self, topdir: Path, images: Images, *, task_seconds: float = 0.1,
                 tick: float = 0.02, scm_root: Path | None = None):
        self.topdir = topdir
        self.images = images
        self.task_seconds = task_seconds
        self.tick = tick
        self.scm_root = scm_root
        self.inject = Injections()
        self.lock = threading.RLock()
        self.ctx = threading.local()
        self.tasks: dict[int, Task] = {}
        self.builds: dict[tuple, dict] = {}
        self.archives: list[dict] = []  # import_archive's records of non-scratch image files
        self.tag_history: list[dict] = []  # tag_listing rows (tagBuild/untagBuild), by build_id
        self.sessions: dict[int, dict] = {}
        self._ids = itertools.count(FIRST_TASK_ID)
        self._session_ids = itertools.count(100)
        self.submissions: list[dict] = []  # every accepted or refused buildImageOz call
        self.images_made: dict[str, str] = {}  # image file name -> the format it was made for
        self.tag_packages = {tag: set(pkgs) for tag, pkgs in TAG_PACKAGES.items()}
        self.tag_arches = {name: arches for name, (_id, arches) in TAGS.items()}
        self.watch_rounds = 0
        self._stop = threading.Event()
        self._kojid = threading.Thread(target=self._kojid_loop, name="test-kojid", daemon=True)
        for sub in ("work", "packages", "scratch"):
            (topdir / sub).mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self._kojid.start()

    def stop(self) -> None:
        self._stop.set()
        if self._kojid.is_alive():
            self._kojid.join(timeout=5)

    # --- request context (what auth.Session does from the HTTP headers) ---------------------

    def begin(self, method: str, headers: dict, client_user: str | None, ssllogin: bool) -> None:
        ctx = self.ctx
        ctx.method, ctx.client_user, ctx.ssllogin = method, client_user, ssllogin
        ctx.session = ctx.user = None
        sid = headers.get("Koji-Session-Id")
        if sid is None:
            return
        with self.lock:
            sess = self.sessions.get(int(sid))
            if not sess or sess["key"] != headers.get("Koji-Session-Key") or sess["closed"]:
                raise koji.AuthError("Invalid session or bad credentials")
            callnum = headers.get("Koji-Session-Callnum")
            if callnum is not None:
                callnum = int(callnum)
                last = sess["callnum"]
                if last is not None and last > callnum:
                    raise koji.SequenceError(f"{last} > {callnum} (session {sid})")
                if last is not None and last == callnum:
                    raise koji.RetryError(f"unable to retry call {callnum} (method {method}) "
                                          f"for session {sid}")
                # kojihub stores the callnum only with a commit, i.e. for calls that write.
                if method in WRITE_METHODS:
                    sess["callnum"] = callnum
            ctx.session = sess
            ctx.user = sess["user"]

    def _user(self) -> str | None:
        return getattr(self.ctx, "user", None)

    def assert_login(self) -> str:
        if not self._user():
            raise koji.ActionNotAllowed("you must be logged in for this operation")
        return self._user()

    def has_perm(self, perm: str) -> bool:
        user = self._user()
        return bool(user) and perm in USERS[user][1]

    def assert_perm(self, perm: str) -> None:
        if not self.has_perm(perm) and not self.has_perm("admin"):
            msg = f"{perm} permission required"
            user = self._user()
            msg += f" (logged in as {user})" if user else " (user not logged in)"
            raise koji.ActionNotAllowed(msg)

    def call(self, method: str, params: tuple) -> Any:
        """Dispatch one call the way kojixmlrpc does (named args via koji.decode_args)."""
        if method not in self.exposed:
            raise koji.GenericError(f"Invalid method: {method}")
        args, kwargs = koji.decode_args(*params)
        with self.lock:
            return koji.util.call_with_argcheck(getattr(self, method), args, kwargs)

    # --- auth -------------------------------------------------------------------------------

    def hello(self, *args):
        return "Hello World"

    def getKojiVersion(self):
        return koji.__version__

    def getAPIVersion(self):
        return koji.API_VERSION

    def getLoggedInUser(self):
        user = self._user()
        if not user:
            return None
        return {"id": USERS[user][0], "name": user, "status": 0, "usertype": 0,
                "krb_principals": [], "authtype": koji.AUTHTYPES["SSL"]}

    def sslLogin(self, proxyuser=None, proxyauthtype=None, renew=False, exclusive=None):
        if not self.ctx.ssllogin:
            raise koji.AuthError("sslLogin must be called at the /ssllogin handler")
        if self._user():
            raise koji.AuthError("Already logged in")
        user = self.ctx.client_user
        if user is None:
            raise koji.AuthError("could not verify client: NONE")
        if user not in USERS:
            raise koji.AuthError(f"Unknown user: {user}")
        sid = next(self._session_ids)
        key = f"{USERS[user][0]}-{hashlib.sha256(os.urandom(16)).hexdigest()[:19]}"
        self.sessions[sid] = {"id": sid, "key": key, "user": user, "callnum": None,
                              "closed": False}
        return {"session-id": sid, "session-key": key, "header-auth": True}

    def hasPerm(self, perm, strict=False):
        """kojihub RootExports.hasPerm (koji 1.35.2): the session's own permission only (an
        admin is not told True for 'image'; assertPerm is what accepts either)."""
        if strict and perm not in {p for _uid, perms in USERS.values() for p in perms}:
            raise koji.GenericError(f"No such permission {perm} defined")
        return self.has_perm(perm)

    def logout(self, session_id=None):
        if self.ctx.session:
            self.ctx.session["closed"] = True

    # --- targets and submission ---------------------------------------------------------------

    def getBuildTarget(self, info, event=None, strict=False):
        if info not in TARGETS:
            if strict:
                raise koji.GenericError(f"No such build target: {info}")
            return None
        build_tag, dest_tag = TARGETS[info]
        tid = sorted(TARGETS).index(info) + 1
        return {"id": tid, "name": info, "build_tag": tid * 10, "build_tag_name": build_tag,
                "dest_tag": tid * 10 + 1, "dest_tag_name": dest_tag}

    # --- builds, tags and package lists (what koji's CLI reads before it submits) -------------

    def add_build(self, name: str, version: str, release: str, state: str = "COMPLETE", *,
                  archives: int = 0, tagged: str | None = None) -> dict:
        """A build that exists on the hub already (made by someone else, on another host),
        optionally with archive records or a tag_listing history row (once tagged into `tagged`)."""
        build = {"id": len(self.builds) + 1, "name": name, "version": version,
                 "release": release, "state": koji.BUILD_STATES[state], "task_id": None}
        self.builds[(name, version, release)] = build
        for n in range(archives):
            self.archives.append({"id": len(self.archives) + 1, "build_id": build["id"],
                                  "filename": f"{name}-{version}-{release}.{n}.raw.xz",
                                  "btype": "image"})
        if tagged:
            self.tag_history.append({"build_id": build["id"], "tag_name": tagged,
                                     "active": None, "revoke_event": 1})
        return build

    def listRPMs(self, buildID=None, buildrootID=None, imageID=None, componentBuildrootID=None,
                 hostID=None, arches=None, queryOpts=None, draft=None):
        return []  # image builds here never carry rpms (no specfile wrapper)

    def queryHistory(self, tables=None, **kwargs):
        """query_history, for the one table and filter served: tag_listing by build."""
        build = kwargs.get("build")
        rows = [dict(r) for r in self.tag_history if build is None or r["build_id"] == build]
        return {t: (rows if t == "tag_listing" else []) for t in (tables or ["tag_listing"])}

    def _recycle(self, old: dict, task: Task) -> None:
        """kojihub recycle_build: which existing NVRs a new build may take over."""
        st = koji.BUILD_STATES[old["state"]]
        if st == "BUILDING":
            if old.get("task_id") == task.id:
                return
            raise koji.GenericError(f"Build already in progress (task {old['task_id']})")
        if st not in ("FAILED", "CANCELED"):
            raise koji.GenericError(f"Build already exists (id={old['id']}, state={st}): "
                                    f"{old['name']}-{old['version']}-{old['release']}")
        if any(r["build_id"] == old["id"] for r in self.tag_history):
            raise koji.GenericError("Build already exists. Unable to recycle, has tag history")
        if any(a["build_id"] == old["id"] for a in self.archives):
            raise koji.GenericError("Build already exists. Unable to recycle, has archive data")

    def getBuild(self, buildInfo, strict=False):
        if isinstance(buildInfo, str):
            parts = koji.parse_NVR(buildInfo)
            key = (parts["name"], parts["version"], parts["release"])
            found = self.builds.get(key)
        elif isinstance(buildInfo, int):
            found = next((b for b in self.builds.values() if b["id"] == buildInfo), None)
        else:
            found = self.builds.get((buildInfo.get("name"), buildInfo.get("version"),
                                     buildInfo.get("release")))
        if found is None:
            if strict:
                raise koji.GenericError(f"No such build: {buildInfo}")
            return None
        return {**found, "nvr": f"{found['name']}-{found['version']}-{found['release']}",
                "package_name": found["name"], "epoch": None}

    def _tag_name(self, info) -> str | None:
        if isinstance(info, int):
            return next((n for n, (i, _a) in TAGS.items() if i == info), None)
        return info if info in TAGS else None

    def getTag(self, tagInfo, strict=False, event=None, blocked=False):
        name = self._tag_name(tagInfo)
        if name is None:
            if strict:
                raise koji.GenericError(f"No such tagInfo: {tagInfo!r}")
            return None
        return {"id": TAGS[name][0], "name": name, "arches": self.tag_arches[name],
                "locked": False, "perm": None, "perm_id": None, "maven_support": False,
                "maven_include_all": False, "extra": {}}

    def listPackages(self, tagID=None, userID=None, pkgID=None, prefix=None, inherited=False,
                     with_dups=False, event=None, queryOpts=None, with_owners=True,
                     with_blocked=True):
        name = self._tag_name(tagID) if tagID is not None else None
        if tagID is not None and name is None:
            raise koji.GenericError(f"No such tagInfo: {tagID!r}")
        pkgs = sorted(self.tag_packages.get(name, set())) if name else sorted(
            {p for ps in self.tag_packages.values() for p in ps})
        if pkgID is not None:
            pkgs = [p for p in pkgs if p == pkgID]
        return [{"package_id": i + 1, "package_name": p, "tag_id": TAGS[name][0] if name else None,
                 "tag_name": name, "owner_name": "kojiadmin", "blocked": False,
                 "extra_arches": ""} for i, p in enumerate(pkgs)]

    def checkTagPackage(self, tag, pkg):
        name = self._tag_name(tag)
        return bool(name) and pkg in self.tag_packages.get(name, set())

    def buildImageOz(self, name, version, arches, target, inst_tree, opts=None, priority=None):
        record = {"name": name, "version": version, "arches": arches, "target": target,
                  "inst_tree": inst_tree, "opts": opts, "priority": priority,
                  "user": self._user(), "task_id": None, "fault": None}
        self.submissions.append(record)
        try:
            for value in (name, inst_tree, version):
                if not isinstance(value, str):
                    raise koji.ParameterError(f"Invalid type for value '{value}': {type(value)}, "
                                              "expected type <class 'str'>")
            self.assert_perm("image")
            if self.inject.submit_fault and len(self.submissions) == self.inject.submit_fault_on:
                raise self.inject.submit_fault
            task_priority = koji.PRIO_DEFAULT
            if priority:
                if priority < 0 and not self.has_perm("admin"):
                    raise koji.ActionNotAllowed("only admins may create high-priority tasks")
                task_priority += priority
            task = self._make_task("image", [name, version, arches, target, inst_tree, opts],
                                   arch="noarch", owner=USERS[self._user()][0],
                                   channel="image", priority=task_priority)
        except Exception as exc:
            record["fault"] = _as_fault(exc).faultString
            raise
        record["task_id"] = task.id
        return task.id

    def _make_task(self, method, request, *, arch, owner, channel, parent=None, label=None,
                   priority=koji.PRIO_DEFAULT) -> Task:
        task = Task(id=next(self._ids), method=method, arch=arch, owner=owner,
                    channel_id=CHANNELS[channel], request=request, parent=parent, label=label,
                    priority=priority)
        self.tasks[task.id] = task
        return task

    # --- tasks --------------------------------------------------------------------------------

    def _task(self, task_id) -> Task | None:
        return self.tasks.get(int(task_id))

    def _info(self, task: Task, request: bool) -> dict:
        info = {
            "id": task.id, "state": task.state, "create_time": _when(task.create_ts),
            "create_ts": task.create_ts, "start_time": _when(task.start_ts),
            "start_ts": task.start_ts, "completion_time": _when(task.completion_ts),
            "completion_ts": task.completion_ts, "channel_id": task.channel_id,
            "host_id": task.host_id, "parent": task.parent, "label": task.label,
            "waiting": task.waiting, "awaited": task.awaited, "owner": task.owner,
            "method": task.method, "arch": task.arch, "priority": task.priority,
            "weight": task.weight,
        }
        if request:
            info["request"] = task.request
        return info

    def getTaskInfo(self, task_id, request=False, strict=False):
        single = not isinstance(task_id, (list, tuple))
        ids = [task_id] if single else task_id
        out = []
        for tid in ids:
            task = self._task(tid)
            if task is None and strict:
                raise koji.GenericError("query returned no rows")
            out.append(self._info(task, request) if task else None)
        return out[0] if single else out

    def listTasks(self, opts=None, queryOpts=None):
        """kojihub RootExports.listTasks (koji 1.35.2), the options rel-eng uses: method,
        state (a list), owner, parent, and decode (the request as the call's params, not XML)."""
        opts = opts or {}
        out = []
        for task in sorted(self.tasks.values(), key=lambda t: t.id):
            if "method" in opts and task.method != opts["method"]:
                continue
            if "state" in opts and task.state not in opts["state"]:
                continue
            if "owner" in opts and task.owner != opts["owner"]:
                continue
            if "parent" in opts and task.parent != opts["parent"]:
                continue
            info = self._info(task, True)
            if not opts.get("decode"):
                info["request"] = koji.xmlrpcplus.dumps(tuple(task.request), methodname=task.method,
                                                        allow_none=1)
            owner = next((u for u, (uid, _) in USERS.items() if uid == task.owner), None)
            out.append({**info, "owner_name": owner, "owner_type": 0, "result": None})
        return out

    def getTaskChildren(self, task_id, request=False, strict=False):
        if strict and self._task(task_id) is None:
            raise koji.GenericError("query returned no rows")
        return [self._info(t, request) for t in self.tasks.values() if t.parent == int(task_id)]

    def getTaskResult(self, taskId, raise_fault=True):
        task = self._task(taskId)
        if task is None:
            raise koji.GenericError("No such task")
        if task.state == S["CANCELED"]:
            raise koji.GenericError(f"Task {task.id} is canceled")
        if task.state not in (S["CLOSED"], S["FAILED"]):
            raise koji.GenericError(f"Task {task.id} is not finished")
        if isinstance(task.result, Fault):
            if raise_fault:
                raise task.result
            return {"faultCode": task.result.faultCode, "faultString": task.result.faultString}
        return task.result

    def task_dir(self, task_id: int) -> Path:
        return self.topdir / "work" / koji.pathinfo.taskrelpath(task_id)

    def listTaskOutput(self, taskID, stat=False, all_volumes=False, strict=False):
        if strict and self._task(taskID) is None:
            raise koji.GenericError("Task doesn't exist")
        result = {} if (stat or all_volumes) else []
        task_dir = self.task_dir(int(taskID))
        for path, _dirs, files in os.walk(task_dir):
            for filename in files:
                rel = os.path.relpath(os.path.join(path, filename), task_dir)
                if stat:
                    st = os.stat(os.path.join(path, filename))  # follows the move symlinks
                    info = {"st_size": str(st.st_size), "st_atime": st.st_atime,
                            "st_mtime": st.st_mtime, "st_ctime": st.st_ctime}
                    result[rel] = {"DEFAULT": info} if all_volumes else info
                elif all_volumes:
                    result[rel] = ["DEFAULT"]
                else:
                    result.append(rel)
        hostile = self.inject.hostile_name
        task = self._task(taskID)
        if hostile and task and task.method == "createImage" and task.state == S["CLOSED"]:
            # A compromised hub: the name points outside any directory it is joined to.
            if stat:
                result[hostile] = {"st_size": "4096", "st_atime": 0.0, "st_mtime": 0.0,
                                   "st_ctime": 0.0}
            elif isinstance(result, list):
                result.append(hostile)
        return result

    def cancelTask(self, task_id, recurse=True):
        task = self._task(task_id)
        if task is None:
            raise koji.GenericError("query returned no rows")
        user = self._user()
        if not (user and USERS[user][0] == task.owner) and not self.has_perm("admin"):
            raise koji.ActionNotAllowed("Cannot cancel task, not owner")
        self._cancel(task, recurse)

    def _cancel(self, task: Task, recurse: bool) -> bool:
        if task.state == S["CANCELED"]:
            return True
        if task.state in (S["CLOSED"], S["FAILED"]):
            return False
        task.state = S["CANCELED"]
        task.completion_ts = time.time()
        # kojihub Task.cancel (1.35.2): a BUILDING build of the task is cancelled with it
        # (cancel_build), so its NVR may be recycled by the next build.
        build = task.sim.get("build")
        if build and build["state"] == koji.BUILD_STATES["BUILDING"]:
            build["state"] = koji.BUILD_STATES["CANCELED"]
        if recurse:
            for child in [t for t in self.tasks.values() if t.parent == task.id]:
                self._cancel(child, True)
        return True

    # --- uploads (kojihub.get_upload_path, uploadFile, checkUpload, handle_upload) -------------

    def upload_path(self, reldir: str, name: str, create: bool = False) -> Path:
        d, base = os.path.split(name)
        if d or base.startswith("."):
            raise koji.GenericError(f"Invalid upload filename: {name}")
        norm = os.path.normpath(reldir)
        if not norm or norm.startswith("..") or os.path.isabs(norm):
            raise koji.GenericError(f"Invalid upload directory: {reldir}")
        if norm.split("/")[0] == "tasks":
            raise koji.GenericError("only the host running a task may upload into tasks/")
        udir = self.topdir / "work" / norm
        if create:
            udir.mkdir(parents=True, exist_ok=True)
            owner = udir / ".user"
            uid = USERS[self.assert_login()][0]
            if owner.exists():
                if int(owner.read_text()) != uid:
                    raise koji.GenericError(f"Invalid upload directory, not owner: {reldir}")
            else:
                owner.write_text(str(uid))
        return udir / base

    def uploadFile(self, path, name, size, md5sum, offset, data, volume=None, checksum=None):
        self.assert_login()
        contents = base64.b64decode(data)
        offset, size = koji.decode_int(offset), koji.decode_int(size)
        checksum = checksum if checksum is not None else md5sum
        verify, digest = (("md5", checksum) if isinstance(checksum, str)
                          else (None, None) if checksum is None else checksum)
        algo = {"md5": hashlib.md5, "sha256": hashlib.sha256,
                "adler32": koji.util.adler32_constructor}
        if verify and verify not in algo:
            raise koji.GenericError(f"Unsupported verify type: {verify}")
        if offset != -1:
            if size is not None and size != len(contents):
                return False
            if verify and digest != algo[verify](contents).hexdigest():
                return False
        fn = self.upload_path(path, name, create=True)
        if fn.exists() and offset == 0 and not fn.name.endswith(".log"):
            raise koji.GenericError(f"file already exists: {fn}")
        with open(fn, "r+b" if fn.exists() else "wb") as fh:
            if offset == 0 or (offset == -1 and size == len(contents)):
                fh.truncate(0)
            fh.seek(0, 2) if offset == -1 else fh.seek(offset)
            fh.write(contents)
        if offset == -1 and verify:
            whole = algo[verify](fn.read_bytes()).hexdigest()
            if whole != digest:
                raise koji.GenericError(f"Uploaded file has wrong checksum: {path}/{name}")
        return True

    def checkUpload(self, path, name, verify=None, tail=None, volume=None):
        fn = self.upload_path(path, name)
        if not fn.exists():
            return None
        st = fn.stat()
        if not statmod.S_ISREG(st.st_mode):
            raise koji.GenericError(f"Not a regular file: {fn}")
        data = {"size": st.st_size, "mtime": st.st_mtime}
        if verify:
            algo = {"md5": hashlib.md5, "sha256": hashlib.sha256,
                    "adler32": koji.util.adler32_constructor}[verify]()
            body = fn.read_bytes()
            if tail is not None:
                body = body[max(len(body) - tail, 0):]
            algo.update(body)
            data["sumlength"] = len(body)
            data["hexdigest"] = algo.hexdigest()
        return data

    def raw_upload(self, query: dict, body: bytes) -> dict:
        """kojihub.handle_upload: the body of a rawUpload POST, args in the query string."""
        self.assert_login()
        name = query["filename"][0]
        path = query.get("filepath", [""])[0]
        verify = query.get("fileverify", [""])[0]
        overwrite = query.get("overwrite", [""])[0]
        offset = int(query.get("offset", ["0"])[0])
        with self.lock:
            fn = self.upload_path(path, name, create=True)
            if fn.is_symlink():
                raise koji.GenericError(f"destination is a symlink: {fn}")
            if fn.exists() and offset == 0 and not overwrite:
                raise koji.GenericError(f"upload path exists: {fn}")
            with open(fn, "r+b" if fn.exists() else "wb") as fh:
                if offset == -1:
                    offset = fh.seek(0, 2)
                elif overwrite:
                    fh.truncate(offset)
                    fh.seek(offset)
                else:
                    fh.seek(offset)
                fh.write(body)
        ret = {"size": len(body), "fileverify": verify, "offset": offset}
        if verify:
            algo = {"adler32": koji.util.adler32_constructor, "md5": hashlib.md5,
                    "sha256": hashlib.sha256}[verify]
            ret["hexdigest"] = algo(body).hexdigest()
        return ret

    # --- the simulated kojid --------------------------------------------------------------

    def _kojid_loop(self) -> None:
        while not self._stop.wait(self.tick):
            with self.lock:
                for task in list(self.tasks.values()):
                    self._step(task)

    def _step(self, task: Task) -> None:
        now = time.monotonic()
        if task.state == S["FREE"] and self.inject.hold_free:
            return  # no builder has taken it yet: submitted, not started
        if task.state == S["FREE"]:
            task.state, task.start_ts, task.host_id = S["OPEN"], time.time(), 1
            if task.method == "image":
                self._guard(task, self._start_image)
            else:
                task.due = now + self.inject.slow.get(task.arch, self.task_seconds)
        elif task.state == S["OPEN"] and task.method == "createImage" and now >= task.due:
            self._guard(task, self._create_image)
        elif task.state == S["OPEN"] and task.method == "image":
            self._guard(task, self._finish_image)

    def _guard(self, task: Task, step) -> None:
        try:
            step(task)
        except Exception as exc:  # kojid turns a handler's exception into the task's fault
            self._close(task, _as_fault(exc), S["FAILED"])
            if task.method == "image" and task.sim.get("build"):
                task.sim["build"]["state"] = koji.BUILD_STATES["FAILED"]

    def _close(self, task: Task, result: Any, state: int) -> None:
        task.result, task.state, task.completion_ts = result, state, time.time()

    def _start_image(self, task: Task) -> None:
        """BuildBaseImageTask.handler up to spawning the createImage children."""
        name, version, arches, target, inst_tree, opts = task.request
        target_info = self.getBuildTarget(target, strict=True)
        arches_text = self.tag_arches.get(target_info["build_tag_name"]) or ""
        tag_arches = [koji.canonArch(a) for a in arches_text.split()]
        for arch in arches:
            if koji.canonArch(arch) not in tag_arches:
                raise koji.BuildError(f"Invalid arch for build tag: {arch}")
        opts = opts or {}
        release = opts.get("release")
        if "-" in version:
            raise koji.ApplianceError("The Version may not have a hyphen")
        if release and "-" in release:
            raise koji.ApplianceError("The Release may not have a hyphen")
        if not opts.get("scratch"):
            dest = target_info["dest_tag_name"]
            if name not in self.tag_packages.get(dest, set()):
                raise koji.BuildError(f"package (image) {name} not in list for tag {dest}")
            nvr = (name, version, release)
            old = self.builds.get(nvr)
            if old:
                self._recycle(old, task)  # raises unless kojihub would take the NVR over
            build = {"id": old["id"] if old else len(self.builds) + 1,  # recycled: same id
                     "name": name, "version": version,
                     "release": release, "state": koji.BUILD_STATES["BUILDING"],
                     "task_id": task.id}
            self.builds[nvr] = build
            task.sim["build"] = build
        elif not release:
            # kojid asks getNextRelease({name, version}) here; rel-eng always sends a release,
            # so the test hub, which keeps no release history for scratch, answers "1"
            release = "1"
        task.sim.update(release=release, subtasks={}, opts=opts)
        repo_info = {"id": 1, "create_event": 1}
        for arch in arches:
            child = self._make_task(
                "createImage",
                [name, version, release, arch, target_info, target_info["build_tag"], repo_info,
                 inst_tree.replace("$arch", arch), opts],
                arch=arch, owner=task.owner, channel="image", parent=task.id, label=arch,
                priority=task.priority - 1)
            task.sim["subtasks"][arch] = child.id
        task.waiting = True

    def _finish_image(self, task: Task) -> None:
        """BuildBaseImageTask.handler from waiting on the children to the report."""
        opts = task.sim["opts"]
        canfail = set(opts.get("optional_arches", []))
        kids = {arch: self.tasks[tid] for arch, tid in task.sim["subtasks"].items()}
        for arch, kid in kids.items():
            # wait(failany=True, canfail=...): a required failure fails the parent at once
            # and cancels the children still running.
            if kid.state in (S["FAILED"], S["CANCELED"]) and arch not in canfail:
                for other in kids.values():
                    self._cancel(other, True)
                if kid.state == S["CANCELED"]:
                    raise koji.GenericError(f"Task {kid.id} is canceled")
                raise kid.result
        if any(k.state not in FINAL for k in kids.values()):
            return
        results = {arch: k.result for arch, k in kids.items()}
        if all(isinstance(r, Fault) or r is None for r in results.values()):
            raise koji.GenericError("all subtasks failed")
        ok = {arch: r for arch, r in results.items() if isinstance(r, dict)}
        if "kickstart" in opts and not opts.get("scratch"):
            ks, seen = os.path.basename(opts["kickstart"]), False
            for r in ok.values():
                if ks in r["files"]:
                    if seen:
                        r["files"].remove(ks)
                    seen = True
        owner = next(u for u, (uid, _) in USERS.items() if uid == task.owner)
        for arch, r in ok.items():
            src = self.task_dir(r["task_id"])
            if opts.get("scratch"):
                dest = self.topdir / "scratch" / owner / f"task_{r['task_id']}"
                names = r["files"] + r["logs"]
            else:
                build = task.sim["build"]
                dest = (self.topdir / "packages" / build["name"] / build["version"]
                        / build["release"] / "images")
                names = r["files"]
                logdir = dest.parent / "data" / "logs" / "image"
                for log_name in r["logs"]:
                    _move_and_symlink(src / log_name, logdir / f"{arch}-{log_name}")
            for img in names:
                if (src / img).exists():
                    _move_and_symlink(src / img, dest / img)
                    if not opts.get("scratch") and img in r["files"]:
                        self._import_archive(dest / img, task.sim["build"], arch)
        if opts.get("scratch"):
            where = ", ".join(f"{self.topdir}/work/{koji.pathinfo.taskrelpath(k.id)}"
                              for k in kids.values())
            report = f"Scratch image build results in: {where}"
        else:
            task.sim["build"]["state"] = koji.BUILD_STATES["COMPLETE"]
            report = f"image build results in: {dest}"
        task.waiting = False
        self._close(task, report, S["CLOSED"])

    def _import_archive(self, path: Path, build: dict, arch: str) -> None:
        """import_archive_internal: the hub hashes every imported file itself (sha256)."""
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        ext = path.name.rsplit(".", 1)[-1]
        self.archives.append({
            "id": len(self.archives) + 1, "build_id": build["id"], "filename": path.name,
            "size": path.stat().st_size, "checksum": digest.hexdigest(),
            "checksum_type": koji.CHECKSUM_TYPES["sha256"], "btype": "image", "btype_id": 4,
            "type_name": ext, "type_id": 1, "buildroot_id": None, "metadata_only": False,
            "extra": None, "arch": arch})

    # --- builds and archives (kojihub's getBuild and listArchives, the fields we serve) -----

    def listArchives(self, buildID=None, buildrootID=None, componentBuildrootID=None,
                     hostID=None, type=None, filename=None, size=None, checksum=None,
                     checksum_type=None, typeInfo=None, queryOpts=None, imageID=None,
                     archiveID=None, strict=False):
        out = [a for a in self.archives
               if (buildID is None or a["build_id"] == buildID)
               and (type is None or a["btype"] == type)
               and (filename is None or a["filename"] == filename)]
        if strict and not out:
            raise koji.GenericError("No such archive")
        return [dict(a) for a in out]

    def _create_image(self, task: Task) -> None:
        """BaseImageTask.handler: kickstart, TDL, the image files and the result dict."""
        name, version, release, arch, target_info, _tag, _repo, inst_url, opts = task.request
        formats = opts.get("format") or []
        for fmt in formats:
            if fmt not in SUPPORTED_FORMATS:
                raise koji.ApplianceError(f"Invalid format: {fmt}")
        workdir = self.task_dir(task.id)
        workdir.mkdir(parents=True, exist_ok=True)
        ozlog = workdir / f"oz-{arch}.log"
        if arch in self.inject.crash_arches:
            _libvirt_open(self.inject.crash_arches[arch])
        if arch in self.inject.fail_arches:
            ozlog.write_text(f"oz-install for {name} {arch}: no disk activity in 300 seconds\n")
            # A small real PPM, as libvirt's screenshot of the stuck installer would be.
            (workdir / "screenshot.ppm").write_bytes(b"P6\n2 2\n255\n" + bytes(range(12)))
            raise koji.ApplianceError(
                "Image status is FAILED: Automated install failed or prompted for input. "
                "See the screenshot in the task results for more information")
        kspath = self._fetch_kickstart(opts, workdir)
        ks = self._read_kickstart(kspath, opts)
        ks.handler.repo.repoList = []
        from pykickstart.handlers.control import dataMap

        repo_class = dataMap[ks.version]["RepoData"]
        for i, url in enumerate(sorted(set(opts.get("repo") or []))):
            ks.handler.repo.repoList.append(repo_class(baseurl=url.replace("$arch", arch),
                                                       name=f"koji-override-{i}"))
        ks.handler.url(url=inst_url)
        kskoji = workdir / f"koji-{target_info['build_tag_name']}-{task.id}-base.ks"
        kskoji.write_text(str(ks.handler))
        distro = opts.get("distro") or ""
        if not distro.startswith("Fedora-"):
            raise koji.BuildError(f"Unknown or supported distro given: {distro}")
        distname, distver = distro.split("-")
        if arch not in OZ_ARCHES:  # Oz's TDL check, run by ImageFactory inside kojid
            raise koji.GenericError("OzException: Architecture must be one of 'i386, x86_64, "
                                    "ppc64, ppc64le, armv7l, aarch64, or s390x'")
        imgname = f"{name}-{version}-{release}.{arch}"
        tdl = workdir / f"tdl-{arch}.xml"
        tdl.write_text(
            f"<template>\n  <name>{saxutils.escape(imgname)}</name>\n  <os>\n"
            f"    <name>{distname}</name>\n    <version>{distver}</version>\n"
            f"    <arch>{arch}</arch>\n    <install type='url'>\n"
            f"      <url>{saxutils.escape(inst_url)}</url>\n    </install>\n  </os>\n"
            f"  <description>{saxutils.escape(name)} OS</description>\n"
            f"  <disk>\n    <size>{opts.get('disk_size')}</size>\n  </disk>\n</template>\n")
        files = [tdl.name, kspath.name, kskoji.name]
        for fmt in formats or ["raw"]:
            ext, source = {"raw": ("raw", self.images.raw), "raw-xz": ("raw.xz", self.images.raw_xz),
                           "qcow2": ("qcow2", self.images.qcow2),
                           "qcow": ("qcow", self.images.qcow2)}.get(fmt, (None, None))
            if source is None:
                raise koji.ApplianceError(f"the test hub cannot make {fmt} images")
            libvirt = workdir / f"libvirt-{fmt}-{arch}.xml"
            libvirt.write_text(f"<domain><name>{imgname}</name><devices><disk><source "
                               f"file='{imgname}.{fmt}'/></disk></devices></domain>\n")
            image = workdir / f"{imgname}.{ext}"
            _link(source, image)
            files += [libvirt.name, image.name]
            self.images_made[image.name] = fmt  # what a client must fetch, or not have asked for
        ozlog.write_text(f"oz-install for {imgname}: install finished\n")
        result = {"arch": arch, "task_id": task.id, "logs": [ozlog.name], "name": name,
                  "version": version, "release": release, "rpmlist": [], "files": files}
        if self.inject.hostile_name:
            result["files"].append(self.inject.hostile_name)
        self._close(task, result, S["CLOSED"])

    def _fetch_kickstart(self, opts: dict, workdir: Path) -> Path:
        ksfile = opts.get("kickstart") or ""
        if opts.get("ksurl"):
            if self.scm_root is None:
                raise koji.BuildError(f"SCM checkout of {opts['ksurl']} is not possible here")
            source = self.scm_root / os.path.basename(ksfile)
        else:
            source = (self.topdir / ksfile).resolve()
            if not source.is_relative_to(self.topdir.resolve()):
                raise koji.GenericError(f"Invalid kickstart path: {ksfile}")
        if not source.is_file():
            raise koji.BuildError(f"Kickstart {workdir / os.path.basename(ksfile)} does not exist.")
        kspath = workdir / source.name
        shutil.copyfile(source, kspath)
        return kspath

    def _read_kickstart(self, kspath: Path, opts: dict):
        """OzImageTask.readKickstart: pykickstart with makeVersion(opts['ksversion'])."""
        from pykickstart import errors as kserrors
        from pykickstart.parser import KickstartParser
        from pykickstart.version import makeVersion

        version = makeVersion(opts["ksversion"]) if opts.get("ksversion") else makeVersion()
        ks = KickstartParser(version)
        try:
            ks.readKickstart(str(kspath))
        except kserrors.KickstartError as exc:
            raise koji.BuildError(f"Failed to parse kickstart file '{kspath}' : {exc}") from None
        return ks


def _libvirt_open(exc: BaseException) -> None:
    """Where oz's libvirt connection fails inside kojid: a frame of its own in the traceback."""
    raise exc


def _link(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _move_and_symlink(src: Path, dest: Path) -> None:
    """kojihub's move_and_symlink: the file moves, a relative symlink stays behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, dest)
    os.symlink(os.path.relpath(dest, src.parent), src)
