"""Post-processing: a builder's raw disk -> qcow2 and raw.tar.xz deliverables with sha256 and size.

Sparse-aware throughout, so cost follows the data and not the virtual size: qemu-img and GNU tar
both skip holes (SEEK_DATA/SEEK_HOLE). The raw.tar.xz is hashed as it streams out of `xz -T0` on
its way to disk. qemu-img cannot write qcow2 to a stream (it seeks), so its digest is taken in one
read of the just-written file, while xz is still compressing on the other thread. The raw disk's
block digest is checked against the one its builder recorded on a third thread, reading the same
data from the page cache; on a mismatch the outputs are removed and nothing is recorded.
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
from rel_eng.errors import CommandFailed
from rel_eng.manifest import Artifact
from rel_eng.plan import ImageJob

CHUNK = 1024 * 1024
TOOLS = ("qemu-img", "tar", "xz")


@dataclass(frozen=True)
class ProcessOptions:
    xz_preset: int = 6
    qcow2_compress: bool = False
    epoch: int = 0  # mtime of the tar member, for reproducible tarballs


@dataclass(frozen=True)
class Written:
    path: Path
    size: int
    sha256: str


def to_qcow2(raw: Path, dest: Path, compress: bool = False) -> Written:
    argv = ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "compat=1.1"]
    if compress:
        argv.append("-c")
    with atomic_path(dest) as tmp:
        runner.run(argv + [str(raw), str(tmp)])
        digest = hashlib.sha256()
        size = 0
        with open(tmp, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return Written(dest, size, digest.hexdigest())


def to_raw_tar_xz(raw: Path, dest: Path, member: str, preset: int = 6, epoch: int = 0) -> Written:
    """GNU tar (sparse member) | xz -T0, hashed while written to dest."""
    tar = runner.start([
        "tar", "--sparse", "--format=gnu", "--numeric-owner", "--owner=0", "--group=0",
        f"--mtime=@{epoch}", "--transform", f"s|^{raw.name}$|{member}|",
        "-C", str(raw.parent), "-cf", "-", raw.name,
    ])
    xz = runner.start(["xz", "-T0", f"-{preset}", "-c"], stdin=tar.stdout)
    tar.stdout.close()  # xz owns the read end now; tar gets SIGPIPE if xz dies
    digest = hashlib.sha256()
    size = 0
    with atomic_path(dest) as tmp:
        try:
            with open(tmp, "wb") as out:
                while chunk := xz.stdout.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except BaseException as exc:  # a signal or a full disk: stop both, keep the first error
            if isinstance(exc, OSError) and exc.filename is None:
                exc.filename = str(dest)  # write() errors (a full disk) carry no path
            for proc in (xz, tar):
                proc.kill()
            xz.stdout.close()
            xz.wait()
            tar.wait()
            raise
        xz.stdout.close()
        runner.wait(xz)
        runner.wait(tar)
    return Written(dest, size, digest.hexdigest())


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


def process_image(raw: Path, job: ImageJob, out_dir: Path, topdir: Path,
                  opts: ProcessOptions, *, raw_sha256: str) -> list[Artifact]:
    """Make every output of `job` from its raw disk, the two conversions side by side, and the
    raw disk checked against `raw_sha256` (its manifest digest) beside them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {o.suffix: o for o in job.outputs}
    results: dict[str, Written] = {}
    errors: list[BaseException] = []
    bad_raw: list[BaseException] = []

    def qcow2():
        try:
            results["qcow2"] = to_qcow2(raw, out_dir / outputs["qcow2"].filename, opts.qcow2_compress)
        except BaseException as exc:  # re-raised below on the caller's thread
            errors.append(exc)

    def check():
        try:
            check_raw(raw, raw_sha256, f"post-processing of {job.nvra}")
        except BaseException as exc:
            bad_raw.append(exc)

    workers = [threading.Thread(target=qcow2, name=f"qcow2-{job.key}"),
               threading.Thread(target=check, name=f"check-{job.key}")]
    for w in workers:
        w.start()
    try:
        results["raw.tar.xz"] = to_raw_tar_xz(
            raw, out_dir / outputs["raw.tar.xz"].filename, f"{job.nvra}.raw",
            opts.xz_preset, opts.epoch)
    except BaseException as exc:
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
