"""The one place subprocesses start: argv lists only, never a shell.

A missing tool is an input problem (exit 2) naming the Debian package; a non-zero exit raises
CommandFailed with the command, exit code and stderr tail.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import IO, Sequence

from rel_eng.errors import CommandFailed, ToolMissing

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
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            input=input,
            timeout=timeout,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, -1, f"timed out after {timeout}s") from exc
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, _tail(proc.stderr))
    return proc


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
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        drain.join(timeout=5)  # so a stderr copy is complete and no longer written to
        raise CommandFailed(list(proc.args), -1, f"timed out after {timeout}s")
    drain.join(timeout=5)
    if rc != 0:
        raise CommandFailed(list(proc.args), rc, _tail(b"".join(tail)))


def _tail(data: bytes | None) -> str:
    if not data:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-STDERR_TAIL_LINES:])
