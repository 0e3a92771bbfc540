"""The builder interface: submit, wait, collect artifacts into the manifest."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar

from rel_eng.manifest import Artifact

if TYPE_CHECKING:  # only a type: a builder is handed jobs, it never plans
    from rel_eng.plan import ImageJob


@dataclass(frozen=True)
class BuildRequest:
    compose_id: str
    job: ImageJob
    kickstart: Path  # flattened kickstart file
    tdl: Path
    workdir: Path  # the builder writes its outputs here
    logdir: Path
    topdir: Path  # compose top dir; artifact paths are relative to it
    epoch: int = 0  # SOURCE_DATE_EPOCH for reproducible outputs (compose date, midnight UTC)
    weekly: bool = False  # a weekly drop: Koji builds it as scratch


@dataclass(frozen=True)
class BuildHandle:
    job_key: str
    external_id: str = ""  # Koji task id, Oz domain name...
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BuildOutcome:
    job_key: str
    ok: bool
    reason: str = ""


class Builder(abc.ABC):
    name: ClassVar[str]

    def __init__(self, config, on_submitted: Callable[[BuildHandle], None] | None = None):
        self.config = config
        # Called the moment an external id exists, so a restart resumes instead of resubmitting.
        self.on_submitted = on_submitted or (lambda handle: None)

    @abc.abstractmethod
    def submit(self, requests: list[BuildRequest]) -> list[BuildHandle]:
        """Start builds for these images; one handle per request."""

    @abc.abstractmethod
    def wait(self, handles: list[BuildHandle], timeout: float | None = None) -> list[BuildOutcome]:
        """Block until every handle has finished (or timeout); one outcome per handle."""

    @abc.abstractmethod
    def collect(self, handle: BuildHandle, request: BuildRequest) -> list[Artifact]:
        """Bring a finished build's raw disk and logs into workdir; return manifest artifacts."""

    def cancel(self, handles: list[BuildHandle]) -> None:
        """Stop builds still running. Builders that finish synchronously need nothing."""
