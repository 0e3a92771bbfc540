"""Post-processing: a builder's raw disk -> its deliverables (qcow2, raw.tar.xz, optionally
raw.xz), each with sha256 and size.

Sparse-aware where the format allows, so cost follows the data and not the virtual size: qemu-img
and GNU tar both skip holes (SEEK_DATA/SEEK_HOLE). The xz outputs are hashed as they stream out of
`xz -T0` on their way to disk. qemu-img cannot write qcow2 to a stream (it seeks), so its digest
is taken in one read of the just-written file, while xz is still compressing on another thread.
The qcow2 is compressed per cluster (`qemu-img convert -c`, zlib by default, as Fedora ships it):
on this data qemu-img finishes well before xz, so running it beside xz costs almost nothing.
A raw.xz has no holes (xz knows none), so its cost follows the virtual size; it is optional.
The raw disk's block digest is checked against the one its builder recorded on one more thread,
reading the same data from the page cache; on a mismatch the outputs are removed and nothing is
recorded.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from rel_eng import runner
from rel_eng.atomic import atomic_path
from rel_eng.digest import check_raw
from rel_eng.errors import CommandFailed, InputError
from rel_eng.manifest import Artifact
from rel_eng.naming import QCOW2_COMPRESSION
from rel_eng.plan import ImageJob

CHUNK = 1024 * 1024
TOOLS = ("qemu-img", "tar", "xz")




@dataclass(frozen=True)
class ProcessOptions:
    xz_preset: int = 6
    qcow2_compression: str = "zlib"
    epoch: int = 0  # mtime of the tar member, for reproducible tarballs


@dataclass(frozen=True)
class Written:
    path: Path
    size: int
    sha256: str


def qcow2_argv(raw: Path, dest: Path, compression: str = "zlib") -> list[str]:
    if compression not in QCOW2_COMPRESSION:
        raise InputError(f"qcow2 compression {compression!r} is not one qemu-img is given",
                         hint=f"use {', '.join(QCOW2_COMPRESSION)}")
    options = "compat=1.1"
    if compression == "zstd":
        options += ",compression_type=zstd"
    argv = ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", options]
    if compression != "none":
        argv.append("-c")
    return argv + [str(raw), str(dest)]


def to_qcow2(raw: Path, dest: Path, compression: str = "zlib") -> Written:
    with atomic_path(dest) as tmp:
        runner.run(qcow2_argv(raw, tmp, compression))
        digest = hashlib.sha256()
        size = 0
        with open(tmp, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return Written(dest, size, digest.hexdigest())


def _xz_to(dest: Path, xz, *feeders) -> Written:
    """Stream a running xz's stdout into dest's temp file, hashing it; renamed when xz (and the
    `feeders` piping into it) succeeded. On any error (a signal, a full disk) all are stopped."""
    digest = hashlib.sha256()
    size = 0
    with atomic_path(dest) as tmp:
        try:
            with open(tmp, "wb") as out:
                while chunk := xz.stdout.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except BaseException as exc:  # stop them all, keep the first error
            if isinstance(exc, OSError) and exc.filename is None:
                exc.filename = str(dest)  # write() errors (a full disk) carry no path
            for proc in (xz, *feeders):
                proc.kill()
            xz.stdout.close()
            for proc in (xz, *feeders):
                proc.wait()
            raise
        xz.stdout.close()
        runner.wait(xz)
        for proc in feeders:
            runner.wait(proc)
    return Written(dest, size, digest.hexdigest())


def to_raw_xz(raw: Path, dest: Path, preset: int = 6) -> Written:
    """The raw disk compressed on its own (`xz -T0`), hashed while written to dest."""
    return _xz_to(dest, runner.start(["xz", "-T0", f"-{preset}", "-c", "--", str(raw)]))


def to_raw_tar_xz(raw: Path, dest: Path, member: str, preset: int = 6, epoch: int = 0) -> Written:
    """GNU tar (sparse member) | xz -T0, hashed while written to dest."""
    tar = runner.start([
        "tar", "--sparse", "--format=gnu", "--numeric-owner", "--owner=0", "--group=0",
        f"--mtime=@{epoch}", "--transform", f"s|^{raw.name}$|{member}|",
        "-C", str(raw.parent), "-cf", "-", raw.name,
    ])
    xz = runner.start(["xz", "-T0", f"-{preset}", "-c"], stdin=tar.stdout)
    tar.stdout.close()  # xz owns the read end now; tar gets SIGPIPE if xz dies
    return _xz_to(dest, xz, tar)


def _full_disk(out_dir: Path, exc: BaseException) -> OSError | None:
    """A tool that failed while its output's filesystem is full ran out of space: say so as the
    OSError it is (path and errno), not as the tool's own message."""
    if not isinstance(exc, CommandFailed):
        return None
    st = os.statvfs(out_dir)
    if st.f_bavail * st.f_frsize >= FULL_BELOW:
        return None
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out_dir))


FULL_BELOW = 4 << 20  # less than this left counts as full (qemu-img writes in MiB clusters)


def _makers(raw: Path, job: ImageJob, out_dir: Path, opts: ProcessOptions) -> dict:
    """suffix -> a callable making that output; one per output the job plans."""
    makers = {
        "qcow2": lambda o: to_qcow2(raw, out_dir / o.filename, opts.qcow2_compression),
        "raw.tar.xz": lambda o: to_raw_tar_xz(raw, out_dir / o.filename, f"{job.nvra}.raw",
                                              opts.xz_preset, opts.epoch),
        "raw.xz": lambda o: to_raw_xz(raw, out_dir / o.filename, opts.xz_preset),
    }
    unknown = [o.suffix for o in job.outputs if o.suffix not in makers]
    if unknown:
        raise InputError(f"{job.key}: no post-processing for output(s) {', '.join(unknown)}",
                         hint=f"[compose] outputs takes {', '.join(makers)}")
    return {o.suffix: (lambda o=o: makers[o.suffix](o)) for o in job.outputs}


def process_image(raw: Path, job: ImageJob, out_dir: Path, topdir: Path,
                  opts: ProcessOptions, *, raw_sha256: str) -> list[Artifact]:
    """Make every output of `job` from its raw disk, all conversions side by side, and the raw
    disk checked against `raw_sha256` (its manifest digest) beside them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    makers = _makers(raw, job, out_dir, opts)
    results: dict[str, Written] = {}
    errors: list[BaseException] = []
    bad_raw: list[BaseException] = []

    def make(suffix: str) -> None:
        try:
            results[suffix] = makers[suffix]()
        except BaseException as exc:  # re-raised below on the caller's thread
            errors.append(exc)

    def check() -> None:
        try:
            check_raw(raw, raw_sha256, f"post-processing of {job.nvra}")
        except BaseException as exc:
            bad_raw.append(exc)

    # The longest (an xz) runs on this thread; the others and the raw check beside it.
    order = sorted(makers, key=lambda s: s == "raw.tar.xz")
    workers = [threading.Thread(target=make, args=(s,), name=f"{s}-{job.key}")
               for s in order[:-1]]
    workers.append(threading.Thread(target=check, name=f"check-{job.key}"))
    for w in workers:
        w.start()
    try:  # directly: a signal's exception on this thread propagates as it is
        results[order[-1]] = makers[order[-1]]()
    except Exception as exc:
        errors.append(exc)
    finally:
        for w in workers:
            w.join()
    if bad_raw:  # made from bytes nobody vouches for: gone before anyone sees them
        for w in results.values():
            w.path.unlink(missing_ok=True)
        raise bad_raw[0]
    if errors:
        full = _full_disk(out_dir, errors[0])
        if full is not None:
            raise full from errors[0]
        raise errors[0]
    return [
        Artifact(job_key=job.key, image_type=job.image_type, arch=job.arch, kind=suffix,
                 intent="deliverable", path=str(w.path.relative_to(topdir)), size=w.size,
                 sha256=w.sha256, bootable=False)
        for suffix, w in sorted(results.items())
    ]
