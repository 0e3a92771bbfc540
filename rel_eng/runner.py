"""The one place subprocesses start: argv lists only, never a shell.

A missing tool is an input problem (exit 2) naming the Debian package; a non-zero exit raises
CommandFailed with the command, exit code and stderr tail (TimedOut past its deadline).

The runner also owns its children's lifetime. Inside `recording(dir)` (a compose holds one on
its work/children/) every child is written down by pid and kernel start time, with the run
that started it, while it runs, and struck off once waited for. A run killed with SIGKILL runs
no cleanup, so its children outlive it; `reap(dir)` (what `--resume` does first) kills every
one still running whose run is gone, each recognised by its start time so a recycled pid is
never touched, before anything is written again. A run still alive keeps its children.
"""

from __future__ import annotations

import contextlib
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
Process = subprocess.Popen

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
    input: bytes | None = None,
    timeout: float | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess:
    """Run argv to completion; raise CommandFailed on non-zero exit."""
    argv = _check_argv(argv)
    log.debug("run: %s", " ".join(argv))
    proc = subprocess.Popen(argv, cwd=cwd, env=env,
                            stdin=subprocess.PIPE if input is not None else None,
                            stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE)
    _record(proc)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise TimedOut(argv, -1, f"timed out after {timeout}s") from exc
    except BaseException:  # interrupted: the child never outlives the call
        proc.kill()
        proc.wait()
        raise
    finally:
        _forget(proc)
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, _tail(err))
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
        argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, cwd=cwd, env=env
    )
    _record(proc)
    # Drain stderr in the background so a chatty tool never blocks on a full pipe.
    tail: deque[bytes] = deque(maxlen=STDERR_TAIL_LINES)
    drain = threading.Thread(target=_drain, args=(proc.stderr, tail, stderr_copy), daemon=True)
    drain.start()
    proc._rel_eng_stderr = (drain, tail)  # type: ignore[attr-defined]
    return proc


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
