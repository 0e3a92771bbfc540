"""The Oz builder: `oz-install` on a bare-metal KVM host (nested virtualization is not usable).

Each image gets its own oz.cfg, an explicit output disk and a log in the compose's log dir.
oz-install runs at `-d3` because at its default log level it prints `ERROR: ...` and exits 0 on
failure; an `ERROR:` line with exit 0 still counts as failure, and so does a missing or empty
disk. On failure or cancel the libvirt domain (named after the TDL's <name>) is destroyed and
undefined and the temp disk removed.
"""

from __future__ import annotations

import configparser
import io
import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from rel_eng import runner
from rel_eng.builders.base import Builder, BuildHandle, BuildOutcome, BuildRequest
from rel_eng.digest import raw_digest
from rel_eng.errors import CommandFailed, RelEngError, TimedOut, ToolMissing
from rel_eng.manifest import Artifact
from rel_eng.config.oz import OzConfig

log = logging.getLogger(__name__)

LOG_LEVEL = "-d3"  # the lowest level at which oz-install exits non-zero on failure
# What oz-install prints at log levels below 3 before exiting 0. `-d4` formats log records as
# "ERROR:oz.Guest:..." (no space), which is a log line, not this verdict.
ERROR_LINE = re.compile(rb"^ERROR: (.*)$", re.MULTILINE)
VIRSH_TIMEOUT_S = 60


@dataclass(frozen=True)
class OzFiles:
    """Where one image's Oz run keeps its files."""

    oz_cfg: Path
    disk: Path  # oz-install -s: the temp disk, renamed to `raw` once verified
    raw: Path
    libvirt_xml: Path
    log: Path
    output_dir: Path
    screenshot_dir: Path

    @classmethod
    def of(cls, req: BuildRequest, oz: OzConfig) -> "OzFiles":
        work, logs, arch = req.workdir.resolve(), req.logdir.resolve(), req.job.arch
        return cls(
            oz_cfg=work / "oz.cfg",
            disk=work / f".{req.job.nvra}.oz-disk",
            raw=work / f"{req.job.nvra}.raw",
            libvirt_xml=work / f"libvirt-raw-{arch}.xml",
            log=logs / f"oz-{arch}.log",  # the name Koji gives the same log
            output_dir=Path(oz.output_dir) if oz.output_dir else work,
            screenshot_dir=Path(oz.screenshot_dir) if oz.screenshot_dir else logs,
        )


# --- pure builders: tested directly --------------------------------------------------------

def render_oz_cfg(oz: OzConfig, output_dir: Path, screenshot_dir: Path) -> str:
    """The per-build oz.cfg. Oz reads it with interpolation, so '%' is written as '%%'."""
    libvirt = {"uri": oz.libvirt_uri, "type": oz.libvirt_type, "cpus": oz.cpus,
               "memory": oz.memory_mib, "image_type": "raw"}
    if oz.bridge_name:
        libvirt["bridge_name"] = oz.bridge_name
    sections = {
        "paths": {"output_dir": output_dir, "data_dir": oz.data_dir,
                  "screenshot_dir": screenshot_dir},
        "libvirt": libvirt,
        # Cache the install media only; a cached JEOS would skip the kickstart.
        "cache": {"original_media": "yes", "modified_media": "no", "jeos": "no"},
        "icicle": {"safe_generation": "yes"},
        "timeouts": {"install": oz.install_timeout_s, "inactivity": oz.inactivity_timeout_s,
                     "boot": oz.boot_timeout_s, "shutdown": oz.shutdown_timeout_s},
    }
    parser = configparser.ConfigParser(interpolation=None)
    for name, values in sections.items():
        parser[name] = {k: str(v).replace("%", "%%") for k, v in values.items()}
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def oz_install_argv(oz: OzConfig, files: OzFiles, tdl: Path, kickstart: Path) -> list[str]:
    """-p removes a stale guest of the same name; -x keeps the libvirt XML out of the cwd."""
    return ["oz-install", LOG_LEVEL, "-p", "-t", str(oz.install_timeout_s),
            "-c", str(files.oz_cfg), "-a", str(kickstart.resolve()), "-s", str(files.disk),
            "-x", str(files.libvirt_xml), str(tdl.resolve())]


def virsh_argv(uri: str, *args: str) -> list[str]:
    return ["virsh", "-c", uri, *args]


def domain_name(tdl: Path) -> str:
    """Oz names the libvirt domain after the TDL's <name>."""
    name = etree.parse(str(tdl)).findtext("name")
    if not name:
        raise RelEngError(f"{tdl}: TDL has no <name>")
    return name.strip()


def reported_error(log_bytes: bytes) -> str | None:
    m = ERROR_LINE.search(log_bytes)
    return m.group(1).decode("utf-8", "replace").strip() if m else None


# --- the builder ---------------------------------------------------------------------------

class OzBuilder(Builder):
    name = "oz"
    tools = ("oz-install", "virsh")

    def __init__(self, config, on_submitted=None):
        super().__init__(config, on_submitted)
        self.oz: OzConfig = config.oz
        self._requests: dict[str, BuildRequest] = {}
        self._procs: dict[str, runner.Process] = {}
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    def submit(self, requests: list[BuildRequest]) -> list[BuildHandle]:
        handles = []
        for req in requests:
            files = OzFiles.of(req, self.oz)
            handle = BuildHandle(req.job.key, external_id=domain_name(req.tdl), data={
                "oz_log": str(files.log.relative_to(req.topdir.resolve())),
                "libvirt_uri": self.oz.libvirt_uri, "host": os.uname().nodename,
            })
            self._requests[req.job.key] = req
            self.on_submitted(handle)
            handles.append(handle)
        return handles

    def wait(self, handles: list[BuildHandle], timeout: float | None = None) -> list[BuildOutcome]:
        pool = ThreadPoolExecutor(max_workers=self.oz.parallel, thread_name_prefix="oz")
        try:
            futures = {h.job_key: pool.submit(self._build, h) for h in handles}
            _, late = wait_futures(futures.values(), timeout=timeout)
            if late:  # past the caller's deadline: stop them, let them clean up (bounded)
                self._kill([k for k, f in futures.items() if f in late])
                wait_futures(late, timeout=4 * VIRSH_TIMEOUT_S)
            return [BuildOutcome(key, False, f"not finished within {timeout}s: stopped")
                    if f in late else f.result() for key, f in futures.items()]
        except BaseException:
            # Interrupted: start nothing more, and no oz-install outlives the compose.
            self._cancelled.set()
            self._kill(list(self._requests))
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def collect(self, handle: BuildHandle, request: BuildRequest) -> list[Artifact]:
        files = OzFiles.of(request, self.oz)
        job, top = request.job, request.topdir.resolve()

        def art(path: Path, kind: str, intent: str) -> Artifact:
            return Artifact(job_key=job.key, image_type=job.image_type, arch=job.arch, kind=kind,
                            intent=intent, path=str(path.relative_to(top)),
                            size=path.stat().st_size)

        arts = [Artifact.raw_disk(job, files.raw, top, raw_digest(files.raw), bootable=True),
                art(files.log, "log", "log")]
        if files.libvirt_xml.is_file():
            arts.append(art(files.libvirt_xml, "libvirt-xml", "log"))
        return arts

    def cancel(self, handles: list[BuildHandle]) -> None:
        self._cancelled.set()
        self._kill([h.job_key for h in handles])
        for h in handles:
            req = self._requests.get(h.job_key)
            if req is not None:
                self._clean_up(req, h.external_id)

    # --- one image ---

    def _build(self, handle: BuildHandle) -> BuildOutcome:
        req = self._requests[handle.job_key]
        files = OzFiles.of(req, self.oz)
        try:
            reason = self._run(handle.job_key, req, files)
        except (RelEngError, OSError) as exc:
            reason = str(exc)
        if reason is None:
            os.replace(files.disk, files.raw)
            return BuildOutcome(handle.job_key, True)
        self._clean_up(req, handle.external_id)
        return BuildOutcome(handle.job_key, False, f"{reason} (log: {files.log})")

    def _run(self, key: str, req: BuildRequest, files: OzFiles) -> str | None:
        """Run oz-install for one image; the failure reason, or None when the disk is good."""
        for d in (files.oz_cfg.parent, files.log.parent, files.output_dir, files.screenshot_dir):
            d.mkdir(parents=True, exist_ok=True)
        files.oz_cfg.write_text(render_oz_cfg(self.oz, files.output_dir, files.screenshot_dir))
        argv = oz_install_argv(self.oz, files, req.tdl, req.kickstart)
        deadline = self.oz.install_timeout_s + self.oz.kill_grace_s
        with open(files.log, "ab") as logfh:  # appended: a retried image keeps every attempt
            logfh.write(f"$ {' '.join(argv)}\n".encode())
            logfh.flush()
            this_run = logfh.tell()
            with self._lock:
                if self._cancelled.is_set():
                    return "cancelled before oz-install started"
                proc = runner.start(argv, stdin=runner.DEVNULL, stdout=logfh,
                                    stderr_copy=logfh)
                self._procs[key] = proc
            try:
                runner.wait(proc, timeout=deadline)
            except CommandFailed as exc:
                if self._cancelled.is_set():
                    return "cancelled"
                if isinstance(exc, TimedOut):
                    return (f"oz-install hung: killed after {deadline}s (install timeout "
                            f"{self.oz.install_timeout_s}s + {self.oz.kill_grace_s}s grace)")
                return f"oz-install exited {exc.returncode}: {_last_line(exc.stderr_tail)}"
            finally:
                with self._lock:
                    self._procs.pop(key, None)
        with open(files.log, "rb") as logfh:
            logfh.seek(this_run)
            error = reported_error(logfh.read())
        if error is not None:
            return f"oz-install reported 'ERROR: {error}' and exited 0"
        if not files.disk.is_file():
            return f"oz-install exited 0 but wrote no image at {files.disk}"
        if files.disk.stat().st_size == 0:
            return f"oz-install exited 0 but the image {files.disk} is empty"
        return None

    def _kill(self, keys: list[str]) -> None:
        with self._lock:
            procs = [self._procs[k] for k in keys if k in self._procs]
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    def _clean_up(self, req: BuildRequest, domain: str) -> None:
        """Remove the domain Oz may have left and the temp disk; never mask the build's failure."""
        try:
            remove_domain(self.oz.libvirt_uri, domain)
        except (CommandFailed, ToolMissing) as exc:
            log.warning("could not clean up libvirt domain %s: %s", domain, exc)
        OzFiles.of(req, self.oz).disk.unlink(missing_ok=True)


def remove_domain(uri: str, name: str) -> None:
    """virsh destroy + undefine, each only when the domain is there (absence is fine)."""
    if name in _domains(uri, "--name"):
        runner.run(virsh_argv(uri, "destroy", name), timeout=VIRSH_TIMEOUT_S)
    if name in _domains(uri, "--all", "--name"):
        runner.run(virsh_argv(uri, "undefine", name), timeout=VIRSH_TIMEOUT_S)


def _domains(uri: str, *flags: str) -> set[str]:
    out = runner.run(virsh_argv(uri, "list", *flags), timeout=VIRSH_TIMEOUT_S).stdout
    return {line.strip() for line in out.decode("utf-8", "replace").splitlines() if line.strip()}


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no output)"
