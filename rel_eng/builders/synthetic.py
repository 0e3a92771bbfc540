"""The embedded default builder: a real, NOT BOOTABLE disk image, with no network and no VM.

It writes a sparse raw disk of the configured virtual size with a DOS partition table and an
ext4 filesystem made by `mkfs.ext4 -d` at the partition's offset (no root, no loop device).
The filesystem holds an os-release, the flattened kickstart, the TDL and a manifest. UUIDs,
label id and timestamps derive from the job, so the same job gives the same bytes.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

from rel_eng import runner
from rel_eng.atomic import atomic_path
from rel_eng.builders.base import Builder, BuildHandle, BuildOutcome, BuildRequest
from rel_eng.digest import raw_digest
from rel_eng.errors import Interrupted, RelEngError
from rel_eng.manifest import Artifact, step_digest

PART_START_SECTOR = 2048  # 1 MiB, as anaconda aligns
NOT_BOOTABLE = "NOT BOOTABLE: synthetic test image made by rel-eng's synthetic builder"


class SyntheticBuilder(Builder):
    name = "synthetic"
    tools = ("sfdisk", "mkfs.ext4", "debugfs")

    def submit(self, requests: list[BuildRequest]) -> list[BuildHandle]:
        handles = []
        for req in requests:
            handle = BuildHandle(req.job.key, external_id=f"synthetic:{req.job.nvra}")
            self.on_submitted(handle)
            handles.append(handle)
        self._requests = {r.job.key: r for r in requests}
        return handles

    def wait(self, handles: list[BuildHandle], timeout: float | None = None) -> list[BuildOutcome]:
        outcomes = []
        for handle in handles:
            req = self._requests[handle.job_key]
            try:
                build_disk(req)
            except Interrupted:
                raise  # a signal stops the compose; it is no failure of this image
            except RelEngError as exc:
                outcomes.append(BuildOutcome(handle.job_key, False, str(exc)))
            else:
                outcomes.append(BuildOutcome(handle.job_key, True))
        return outcomes

    def collect(self, handle: BuildHandle, request: BuildRequest) -> list[Artifact]:
        raw = raw_path(request)
        return [Artifact.raw_disk(request.job, raw, request.topdir, raw_digest(raw), bootable=False)]


def raw_path(req: BuildRequest) -> Path:
    return req.workdir / f"{req.job.nvra}.raw"


def build_disk(req: BuildRequest) -> Path:
    job = req.job
    seed = step_digest("synthetic", req.compose_id, job.key, job.nvra)
    fs_uuid = str(uuid.UUID(seed[:32]))
    label_id = "0x" + seed[32:40]
    epoch = req.epoch
    size = job.disk_size_gib * 1024**3
    out = raw_path(req)
    req.workdir.mkdir(parents=True, exist_ok=True)
    # Temp names carry the pid so a --resume after a SIGKILL can sweep them.
    with atomic_path(out) as tmp, tempfile.TemporaryDirectory(
            prefix=f".root.tmp-{os.getpid()}-", dir=req.workdir) as rootdir:
        root = Path(rootdir)
        _populate(root, req, epoch)
        with open(tmp, "wb") as fh:
            fh.truncate(size)  # sparse: costs nothing until written
        table = f"label: dos\nlabel-id: {label_id}\nstart={PART_START_SECTOR}, type=83, bootable\n"
        runner.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(tmp)],
                   input=table.encode())
        part_kib = (size - PART_START_SECTOR * 512) // 1024
        env = {**os.environ, "E2FSPROGS_FAKE_TIME": str(epoch)}
        runner.run([
            "mkfs.ext4", "-q", "-F", "-L", "_/", "-U", fs_uuid,
            "-E", f"offset={PART_START_SECTOR * 512},lazy_itable_init=1,lazy_journal_init=1,"
                  f"nodiscard,hash_seed={fs_uuid}",
            "-d", str(root), str(tmp), f"{part_kib}k",
        ], env=env)
        _pin_inode_times(tmp, root, epoch, env)
    return out


def _pin_inode_times(disk: Path, root: Path, epoch: int, env: dict) -> None:
    """mke2fs -d copies each source file's ctime (which utime cannot set) and the directories'
    atime (touched as mke2fs reads them) into the image; pin both so the bytes depend on the
    job alone."""
    paths = ["/"] + sorted("/" + str(p.relative_to(root)) for p in root.rglob("*"))
    script = "".join(f"sif {p} {field} @{epoch}\n" for p in paths for field in ("ctime", "atime"))
    cmds = disk.with_name(disk.name + ".debugfs")
    try:
        cmds.write_text(script)
        runner.run(["debugfs", "-w", "-f", str(cmds), f"{disk}?offset={PART_START_SECTOR * 512}"],
                   env=env)
    finally:
        cmds.unlink(missing_ok=True)


def _populate(root: Path, req: BuildRequest, epoch: int) -> None:
    job = req.job
    files = {
        "etc/os-release": (
            f'NAME=Fedora\nVERSION="{job.version} (Cloud)"\nID=fedora\n'
            f"VERSION_ID={job.fedora_version}\n"
            f'PRETTY_NAME="Fedora {job.version} Cloud ({NOT_BOOTABLE})"\n'
            f'VARIANT="Cloud"\nVARIANT_ID=cloud\n'
        ),
        "NOT-BOOTABLE": NOT_BOOTABLE + "\n",
        "root/anaconda-ks.cfg": req.kickstart.read_text(),
        f"root/{job.nvra}.tdl": req.tdl.read_text(),
        "etc/rel-eng/manifest.json": json.dumps({
            "compose_id": req.compose_id, "image": job.nvra, "arch": job.arch,
            "image_type": job.image_type, "subvariant": job.subvariant,
            "bootable": False, "note": NOT_BOOTABLE,
        }, indent=2, sort_keys=True) + "\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(Path(dirpath) / name, (epoch, epoch))
    os.utime(root, (epoch, epoch))
