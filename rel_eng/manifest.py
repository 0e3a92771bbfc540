"""The manifest passed between steps: artifacts with arch, image type and intent, plus step records.

Steps never parse file names: a builder records its raw disk here, post-processing records the
deliverables with their checksums, metadata and staging read them back. Updates are atomic
(write + rename) under a file lock, so concurrent workers on one compose dir don't clobber it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from rel_eng.atomic import atomic_write
from rel_eng.errors import InputError
from rel_eng.inputfile import read_capped


@dataclass(frozen=True)
class Artifact:
    job_key: str
    image_type: str
    arch: str
    kind: str  # raw-disk, raw-xz, qcow2, raw.tar.xz, log, tdl, kickstart
    intent: str  # build-output, deliverable, log
    path: str  # relative to the compose top dir
    size: int = 0
    # Hex sha256 of the file. For raw disks (kind raw-disk, several GiB and mostly holes) it is
    # the block digest of rel_eng.digest (sha256 over each 1 MiB block's sha256), which costs
    # what the data costs; the builder records it as it hands the disk over, and every later
    # reader checks it (rel_eng.digest.check_raw).
    sha256: str = ""
    bootable: bool = False

    @classmethod
    def raw_disk(cls, job, path: Path, topdir: Path, block_digest: str,
                 bootable: bool) -> "Artifact":
        """The one way a builder hands its raw disk over: a build output, with its block digest
        (rel_eng.digest.raw_digest) and the size of the (sparse) file."""
        return cls(job_key=job.key, image_type=job.image_type, arch=job.arch, kind="raw-disk",
                   intent="build-output", path=str(Path(path).relative_to(topdir)),
                   size=Path(path).stat().st_size, sha256=block_digest, bootable=bootable)


def step_digest(*parts: Any) -> str:
    """Content key of a step: sha256 of its canonical JSON inputs."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class Manifest:
    """`<topdir>/work/manifest.json`: {"steps": {step: {...}}, "artifacts": [...], "builds": {...}}."""

    def __init__(self, topdir: Path):
        self.topdir = topdir
        self.path = topdir / "work" / "manifest.json"
        self.lock_path = topdir / "work" / ".manifest.lock"

    def read(self) -> dict:
        try:
            data = json.loads(read_capped(self.path))
        except FileNotFoundError:
            return {"steps": {}, "artifacts": [], "builds": {}}
        except (OSError, ValueError, RecursionError, InputError) as exc:
            raise self._damaged(f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}") from None
        if not (isinstance(data, dict) and isinstance(data.get("steps"), dict)
                and isinstance(data.get("artifacts"), list) and isinstance(data.get("builds"), dict)
                and all(isinstance(a, dict) for a in data["artifacts"])):
            raise self._damaged("not the manifest's shape")
        return data

    def _damaged(self, why: str) -> InputError:
        return InputError(f"{self.path}: damaged ({why})",
                          hint="this compose cannot be resumed; start a new one")

    def check(self) -> None:
        """Raise InputError (exit 2) when the manifest cannot be read back whole."""
        try:
            self.artifacts()
        except TypeError as exc:  # an artifact record with missing or unknown fields
            raise self._damaged(f"an artifact record: {exc}") from None

    @contextlib.contextmanager
    def update(self) -> Iterator[dict]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.read()
            yield data
            atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True))

    def artifacts(self, **match: str) -> list[Artifact]:
        out = [Artifact(**a) for a in self.read()["artifacts"]]
        return [a for a in out if all(getattr(a, k) == v for k, v in match.items())]

    def add_artifacts(self, artifacts: list[Artifact]) -> None:
        with self.update() as data:
            keep = {(a["job_key"], a["kind"]) for a in map(dataclasses.asdict, artifacts)}
            data["artifacts"] = [a for a in data["artifacts"] if (a["job_key"], a["kind"]) not in keep]
            data["artifacts"].extend(dataclasses.asdict(a) for a in artifacts)
            # One order however the steps interleaved (parallel workers finish in any order).
            data["artifacts"].sort(key=lambda a: (a["job_key"], a["kind"], a["path"]))

    def reject_artifacts(self, job_key: str) -> list[Artifact]:
        """Take an image's artifacts (all but its logs) out of the drop, keeping them under
        "rejected" for the record; returns what was taken out."""
        with self.update() as data:
            gone = [a for a in data["artifacts"] if a["job_key"] == job_key and a["kind"] != "log"]
            data["artifacts"] = [a for a in data["artifacts"] if a not in gone]
            if gone:
                data.setdefault("rejected", {})[job_key] = gone
        return [Artifact(**a) for a in gone]

    def step_done(self, step: str, digest: str) -> bool:
        rec = self.read()["steps"].get(step)
        return bool(rec and rec.get("state") == "done" and rec.get("digest") == digest)

    def set_step(self, step: str, digest: str, state: str, reason: str = "") -> None:
        with self.update() as data:
            data["steps"][step] = {"digest": digest, "state": state, "reason": reason}

    def set_build(self, job_key: str, **info: Any) -> None:
        """Record builder ids (task ids, ...) the moment they exist."""
        with self.update() as data:
            data["builds"].setdefault(job_key, {}).update(info)

    def builds(self) -> dict[str, dict]:
        return self.read()["builds"]
