"""A small tmpfs for tests that need a full or a read-only filesystem, on any machine.

It is mounted in a user and mount namespace of its own (`unshare -rm`), so it needs no root and
no host mount: a process holding the namespace keeps it alive; commands run inside it through
`nsenter`, and the test itself reaches the files through /proc/<pid>/root. The same path is taken
on every machine (root or not), so what CI runs is what a laptop runs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


class NamespacedTmpfs:
    def __init__(self, mountpoint: Path, size: str = "40m", readonly: bool = False):
        for tool in ("unshare", "nsenter"):
            if shutil.which(tool) is None:  # util-linux: part of every Debian base system
                pytest.fail(f"{tool} (util-linux) is not installed: the test cannot make its tmpfs")
        mountpoint.mkdir(parents=True, exist_ok=True)
        self.inside = mountpoint  # the path as processes inside the namespace see it
        opts = ("ro," if readonly else "") + f"size={size}"
        script = f'mount -t tmpfs -o {opts} tmpfs "$1" && echo "$$" && exec sleep infinity'
        self._proc = subprocess.Popen(
            ["unshare", "-rm", "--propagation", "private", "sh", "-c", script, "sh",
             str(mountpoint)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline().strip()
        if not line.isdigit():
            err = self._proc.stderr.read()
            self._proc.kill()
            self._proc.wait()
            pytest.fail(f"cannot make a tmpfs in a user and mount namespace: {err.strip()} "
                        "(user namespaces disabled? sysctl kernel.unprivileged_userns_clone=1)")
        self.pid = int(line)
        # the test's own view of the same files; never resolve() it (the link reads as "/")
        self.outside = Path(f"/proc/{self.pid}/root") / str(mountpoint).lstrip("/")

    def argv(self, argv: list[str], cwd: Path | str | None = None) -> list[str]:
        """`argv` run inside the namespace (with `cwd` as its working directory)."""
        wd = [f"--wd={cwd}"] if cwd else []
        return ["nsenter", "-t", str(self.pid), "-U", "-m", "--preserve-credentials", *wd,
                "--", *argv]

    def run(self, argv: list[str], cwd: Path | str | None = None, **kw):
        return subprocess.run(self.argv(argv, cwd), cwd=cwd, **kw)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for fh in (self._proc.stdout, self._proc.stderr):
            fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def in_readonly_tmpfs(path: Path, argv: list[str]) -> list[str]:
    """`argv` run in a namespace of its own where `path` is an empty read-only tmpfs (root
    ignores permission bits, not a read-only filesystem); the mount dies with the command."""
    path.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o ro,size=1m tmpfs "$1" && shift && exec "$@"'
    return ["unshare", "-rm", "--propagation", "private", "sh", "-c", script, "sh", str(path),
            *argv]


__all__ = ["NamespacedTmpfs", "in_readonly_tmpfs"]
