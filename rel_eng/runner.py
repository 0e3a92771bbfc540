"""The one place subprocesses start: argv lists only, never a shell.

A missing tool is an input problem (exit 2) naming the Debian package; a non-zero exit raises
CommandFailed with the command, exit code and stderr tail (TimedOut past its deadline).

The runner also owns its children's lifetime. Every child gets PR_SET_PDEATHSIG (SIGKILL), so
one whose parent dies (even by SIGKILL) goes with it; long-lived children (a VM) are started
with `spawn()` and ended with `stop()`. Inside `recording(dir)` (a compose holds one on
its work/children/) every child is written down by pid and kernel start time, with the run
that started it, while it runs, and struck off once waited for. A run killed with SIGKILL runs
no cleanup, so its children outlive it; `reap(dir)` (what `--resume` does first) kills every
one still running whose run is gone, each recognised by its start time so a recycled pid is
never touched, before anything is written again. A run still alive keeps its children.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Callable, Iterator, Sequence

from rel_eng.errors import CommandFailed, TimedOut, ToolMissing

# For callers that hand a child's stdin over or keep a handle to one, without the module.
DEVNULL = subprocess.DEVNULL
PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
Process = subprocess.Popen
TimeoutExpired = subprocess.TimeoutExpired  # what Process.wait(timeout=...) raises

log = logging.getLogger(__name__)

# Debian package that ships each tool, for the "install it" hint.
TOOL_PACKAGES = {
    "qemu-img": "qemu-utils",
    "xz": "xz-utils",
    "tar": "tar",
    "mkfs.ext4": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "sfdisk": "fdisk",
    "gpg": "gnupg",
    "sha256sum": "coreutils",
    "oz-install": "oz",
    "virsh": "libvirt-clients",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-system-i386": "qemu-system-x86",
    "genisoimage": "genisoimage",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "debootstrap": "debootstrap",
    "grub-mkimage": "grub-common",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "mdir": "mtools",
}

STDERR_TAIL_LINES = 20


PR_SET_PDEATHSIG = 1
try:  # resolved once here: the function run between fork and exec only calls it
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except OSError:  # not glibc: children are still recorded and reaped
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the thread that started it ends (a SIGKILLed
    rel-eng leaves nothing running). Callers wait for their children in that same thread."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def require(tool: str) -> str:
    """Resolve a tool on PATH or raise ToolMissing naming its package."""
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(tool, TOOL_PACKAGES.get(tool, tool))
    return path


def require_all(tools: Sequence[str]) -> None:
    for tool in tools:
        require(tool)


def _check_argv(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, (str, bytes)):
        raise TypeError("argv must be a list, not a string")
    argv = [str(a) for a in argv]
    require(argv[0])
    return argv


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: bytes | str | None = None,
    timeout: float | None = None,
    capture: bool = True,
    check: bool = True,
    text: bool = False,
) -> subprocess.CompletedProcess:
    """Run argv to completion; raise CommandFailed on non-zero exit (unless `check=False`: the
    caller reads the exit code) and TimedOut past `timeout` (its `stdout` holds what came so
    far). stdin is /dev/null unless `input` is given; `text` decodes the output (and encodes
    `input`) as UTF-8, undecodable bytes replaced."""
    argv = _check_argv(argv)
    log.debug("run: %s", " ".join(argv))
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.Popen(argv, cwd=cwd, env=env,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE,
                            preexec_fn=_die_with_parent)
    _record(proc)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        rest, _ = proc.communicate()
        timed_out = TimedOut(argv, -1, f"timed out after {timeout}s")
        partial = (exc.stdout or b"") + (rest or b"")
        timed_out.stdout = partial.decode("utf-8", "replace") if text else partial
        raise timed_out from exc
    except BaseException:  # interrupted: the child never outlives the call
        proc.kill()
        proc.wait()
        raise
    finally:
        _forget(proc)
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, _tail(err))
    if text:
        out = out.decode("utf-8", "replace") if out is not None else None
        err = err.decode("utf-8", "replace")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def start(
    argv: Sequence[str | Path],
    *,
    stdin: int | IO | None = None,
    stdout: int | IO | None = subprocess.PIPE,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stderr_copy: IO[bytes] | None = None,
) -> subprocess.Popen:
    """Start argv for a streaming pipeline; finish it with `wait()`.

    `stderr_copy` also receives every stderr line (a log file that keeps all of it, not the tail).
    """
    argv = _check_argv(argv)
    log.debug("start: %s", " ".join(argv))
    proc = subprocess.Popen(
        argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, cwd=cwd, env=env,
        preexec_fn=_die_with_parent,
    )
    _record(proc)
    # Drain stderr in the background so a chatty tool never blocks on a full pipe.
    tail: deque[bytes] = deque(maxlen=STDERR_TAIL_LINES)
    drain = threading.Thread(target=_drain, args=(proc.stderr, tail, stderr_copy), daemon=True)
    drain.start()
    proc._rel_eng_stderr = (drain, tail)  # type: ignore[attr-defined]
    return proc


def spawn(
    argv: Sequence[str | Path],
    *,
    stdout: int | IO | None = subprocess.DEVNULL,
    stderr: int | IO | None = subprocess.DEVNULL,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start a long-lived child (a VM, a probe read as it runs) with stdin on /dev/null; the
    caller reads its pipes itself and ends it with `stop()`."""
    argv = _check_argv(argv)
    log.debug("spawn: %s", " ".join(argv))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            cwd=cwd, preexec_fn=_die_with_parent)
    _record(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 5.0) -> int:
    """End a spawned child: SIGTERM, SIGKILL after `grace` seconds (at once with 0), wait for
    it and strike it off the ledger. Returns its exit status."""
    if proc.poll() is None:
        if grace > 0:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
        else:
            proc.kill()
    rc = proc.wait()
    _forget(proc)
    return rc


def _drain(stream: IO[bytes], tail: deque, copy: IO[bytes] | None = None) -> None:
    for line in stream:
        tail.append(line)
        if copy is not None:
            copy.write(line)
            copy.flush()
    stream.close()


def wait(proc: subprocess.Popen, timeout: float | None = None) -> None:
    """Wait for a started process, draining stderr; raise CommandFailed on non-zero exit."""
    drain, tail = proc._rel_eng_stderr  # type: ignore[attr-defined]
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.wait()
        _forget(proc)
        drain.join(timeout=5)  # so a stderr copy is complete and no longer written to
        raise TimedOut(list(proc.args), -1, f"timed out after {timeout}s") from exc
    _forget(proc)
    drain.join(timeout=5)
    if rc != 0:
        raise CommandFailed(list(proc.args), rc, _tail(b"".join(tail)))


def _tail(data: bytes | None) -> str:
    if not data:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-STDERR_TAIL_LINES:])


# --- children's lifetime -----------------------------------------------------------------

_ledger: dict[str, Path | None] = {"dir": None}  # process-wide: worker threads spawn too
_ledger_lock = threading.Lock()


@contextlib.contextmanager
def recording(directory: Path) -> Iterator[Path]:
    """Write down every child started inside the block in `directory`, one file per pid."""
    directory.mkdir(parents=True, exist_ok=True)
    with _ledger_lock:
        previous, _ledger["dir"] = _ledger["dir"], directory
    try:
        yield directory
    finally:
        with _ledger_lock:
            _ledger["dir"] = previous


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), None once it is gone or a
    zombie: with the pid it names one process, never a later one that reuses the number."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3
    return None if fields[0] in ("Z", "X") else fields[19]


def _record(proc: subprocess.Popen) -> None:
    directory = _ledger["dir"]
    begun = start_time(proc.pid)
    if directory is None or begun is None:
        return
    me = os.getpid()
    line = (f"{begun} {socket.gethostname()} {me} {start_time(me)} "
            f"{proc.args[0] if proc.args else ''}\n")
    (directory / str(proc.pid)).write_text(line)
    proc._rel_eng_ledger = directory  # type: ignore[attr-defined]


def _forget(proc: subprocess.Popen) -> None:
    directory = getattr(proc, "_rel_eng_ledger", None)
    if directory is not None:
        (directory / str(proc.pid)).unlink(missing_ok=True)


def reap(directory: Path, *, sleep: Callable[[float], None] = time.sleep,
         polls: int = 200) -> list[int]:
    """Kill the children a killed run left running (those written down in `directory` on this
    host whose pid still names the same process, and whose run is gone), wait until they are
    gone, and strike them off. Returns the pids killed."""
    if not directory.is_dir():
        return []
    host = socket.gethostname()
    killed = []
    for entry in sorted(directory.iterdir()):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        begun, where, owner, owner_begun, *_ = (entry.read_text().split() + ["", "", "", ""])[:4]
        if where != host:
            continue  # another host's children are that host's to reap
        if owner.isdigit() and start_time(int(owner)) == owner_begun:
            continue  # its run is alive (another resume of this compose): its child, its job
        if start_time(pid) == begun:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # also ends a stopped process
            killed.append(pid)
            for _ in range(polls):  # bounded: SIGKILL takes effect at once, init reaps it
                if start_time(pid) != begun:
                    break
                sleep(0.05)
            else:
                log.warning("child %d of an earlier run survived SIGKILL", pid)
        entry.unlink(missing_ok=True)
    return killed
