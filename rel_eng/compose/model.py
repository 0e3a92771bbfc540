"""The compose model: its directory, plan and config, its STATUS, and the store it reports to."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rel_eng.config import Config
from rel_eng.errors import InputError, Interrupted, RelEngError
from rel_eng.atomic import atomic_write
from rel_eng.inputfile import read_capped
from rel_eng.manifest import Manifest
from rel_eng.plan import DropPlan, load_plan

STARTED, FINISHED, INCOMPLETE, DOOMED, TERMINATED = (
    "STARTED", "FINISHED", "FINISHED_INCOMPLETE", "DOOMED", "TERMINATED")


class ComposeDoomed(RelEngError):
    pass


class Terminated(Interrupted):
    pass


class Recorder(Protocol):
    """Mirrors a compose's progress outside its directory (rel_eng.store); the dir stays the truth."""

    # The manifest whose step, build and artifact updates also reach the store (recorded()).
    def manifest(self, c: "Compose") -> Manifest: ...

    def status_changed(self, c: "Compose", status: str) -> None: ...

    # compose/metadata/ec2.json; `announce` queues the "published" messages with the ids
    def amis(self, c: "Compose", ec2: dict, announce: bool = True) -> None: ...

    # The drop is staged: `expected` maps each file in it to the sha256 the compose recorded.
    def staged(self, c: "Compose", drop: Path, expected: dict[str, str]) -> None: ...


@dataclass(frozen=True)
class Compose:
    topdir: Path
    plan: DropPlan
    config: Config
    recorder: Recorder | None = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, topdir: Path, recorder: Recorder | None = None) -> "Compose":
        plan = load_plan(topdir)  # the one plan.json reader; refuses a dir that is no compose
        work = topdir / "work"
        try:
            config = Config.from_dict(json.loads(read_capped(work / "config.json")))
        except FileNotFoundError:
            raise InputError(f"{topdir} is not a compose directory (no work/config.json)") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError,
                InputError) as exc:
            # Damaged or hand-edited: say which record, never guess at a partial compose.
            raise InputError(f"{work}: plan.json or config.json is damaged ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:120]})",
                             hint="this compose cannot be resumed; start a new one") from None
        return cls(topdir, plan, config, recorder)

    @property
    def manifest(self) -> Manifest:
        """work/manifest.json alone: its writes reach no store (recorded() for those that must)."""
        return Manifest(self.topdir)

    @property
    def metadir(self) -> Path:
        return self.topdir / "compose" / "metadata"

    @property
    def logdir(self) -> Path:
        return self.topdir / "logs"

    def workdir(self, job_key: str) -> Path:
        return self.topdir / "work" / job_key

    def images_dir(self, arch: str) -> Path:
        return self.topdir / "compose" / self.plan.variant / arch / "images"

    def job(self, key: str):
        return next(j for j in self.plan.images if j.key == key)

    def read_status(self) -> str:
        """STATUS as it is on disk now (a method: it reads a file every time it is called)."""
        try:
            return (self.topdir / "STATUS").read_text().strip()
        except FileNotFoundError:
            return ""

    def set_status(self, status: str, recorder: Recorder | None) -> None:
        """Writes STATUS, then tells `recorder` (the store's status row and its outbox message;
        None: nothing outside the compose dir). Callers name it: usually `c.recorder`, the one
        Compose.load was given."""
        atomic_write(self.topdir / "STATUS", status + "\n")
        if recorder is not None:
            recorder.status_changed(self, status)


def recorded(c: Compose, recorder: Recorder | None) -> Manifest:
    """The compose's manifest whose step, build and artifact updates also reach `recorder` (the
    compose store); with None, the manifest alone. Reads are the same either way."""
    return c.manifest if recorder is None else recorder.manifest(c)
