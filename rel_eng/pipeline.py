"""The pipeline of a compose, declared once: its steps in order, as data.

Each step has a name, a scope (once per image, or once per compose), the function that gives
the inputs its key is computed from (the key is `step_key`: the sha256 of their canonical JSON),
what it records in the manifest, its lock, the [celery] route that picks its queue, and its run
function. The in-process run (rel_eng.compose.run), the Celery canvas and its one generic task
(rel_eng.distributed), `rel-eng plan`, the dashboard's step timeline and the compose log all
read this list; adding a step is one entry here and one function.

Functions are named "module:function" and imported when first called, as the builder registry
does, so reading the list (plan, the dashboard) loads neither the compose package nor a backend.

Per-image steps run in order for each image; an image whose build failed (the boot gate marks a
failed boot so too) goes no further. Per-compose steps run once every image is settled. The
finalize step runs its own declared sub-steps, FINALIZE_STEPS, in order, each keyed the same way.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from rel_eng.manifest import step_digest

IMAGE, COMPOSE = "image", "compose"  # a step's scope


def step_key(name: str, *inputs: Any) -> str:
    """The one way a step's key is computed: sha256 of the canonical JSON of (name, *inputs)."""
    return step_digest(name, *inputs)


def resolve(target: str) -> Callable:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Step:
    name: str
    scope: str  # IMAGE or COMPOSE
    inputs: str  # "module:function" (c, image) -> what the step's key is computed from
    outputs: str  # what it records in the manifest
    route: str  # the [celery] routes key ("build" is looked up by builder and arch)
    run: str  # "module:function": (c, images, progress) per image, (c, mirror_root, progress)
    # A failure of this step is a recorded outcome (a verdict), not an error to retry.
    verdict: bool = False

    def lock(self, image: str = "") -> str:
        """The step's lock and manifest record: `build:generic-x86_64`, `finalize`."""
        return f"{self.name}:{image}" if self.scope == IMAGE else self.name

    def key(self, c, image: str = "") -> str:
        return step_key(self.name, *resolve(self.inputs)(c, image))

    def __call__(self, *args, **kwargs):
        return resolve(self.run)(*args, **kwargs)


@dataclass(frozen=True)
class SubStep:
    """A step of finalize: run in order over one FinalizeRun (rel_eng.compose.finalize)."""

    name: str
    outputs: str
    inputs: str | None  # "module:function" (run) -> inputs; None: not keyed, runs every time
    run: str  # "module:function" (run) -> None
    applies: str | None = None  # "module:function" (run) -> bool; None: always
    # "module:function" (run) -> the files that must exist for a recorded key to count as done
    found: str | None = None
    # "module:function" (run) -> None, run when the step was done before (a crash's repair)
    when_done_before: str | None = None


PIPELINE: tuple[Step, ...] = (
    Step("build", IMAGE, "rel_eng.compose.build:build_inputs",
         "the raw disk (artifact kind raw-disk, its block digest), the builder's ids (builds)",
         "build", "rel_eng.compose.build:build_step"),
    Step("process", IMAGE, "rel_eng.compose.postprocess:process_inputs",
         "the deliverables ([compose] outputs) with size and sha256", "process",
         "rel_eng.compose.postprocess:process_step"),
    Step("boottest", IMAGE, "rel_eng.compose.boot_gate:boottest_inputs",
         "the verdict (work/boottest/<image>.json), <NVRA>-packages.txt; a gated failure marks "
         "the build failed", "boottest", "rel_eng.compose.boot_gate:boottest_step", verdict=True),
    Step("finalize", COMPOSE, "rel_eng.compose.finalize:finalize_inputs",
         "STATUS, and the records of its sub-steps (FINALIZE_STEPS)", "finalize",
         "rel_eng.compose.finalize:finalize"),
)

_F = "rel_eng.compose.finalize"
FINALIZE_STEPS: tuple[SubStep, ...] = (
    SubStep("metadata", "compose/metadata/images.json", f"{_F}:metadata_inputs",
            f"{_F}:run_metadata", found=f"{_F}:metadata_outputs"),
    SubStep("checksum", "<arch>/images/*-CHECKSUM", f"{_F}:checksum_inputs", f"{_F}:run_checksum",
            found=f"{_F}:checksum_outputs"),
    SubStep("publish", "compose/metadata/ec2.json (private AMIs)", f"{_F}:publish_inputs",
            f"{_F}:run_publish", applies=f"{_F}:has_publishers", found=f"{_F}:publish_outputs"),
    SubStep("readme", "<arch>/images/README, rel-eng.json, the download page",
            f"{_F}:readme_inputs", f"{_F}:run_readme", found=f"{_F}:readme_outputs"),
    SubStep("stage", "the drop in the mirror", f"{_F}:stage_inputs", f"{_F}:run_stage",
            when_done_before=f"{_F}:settle_stage"),
    SubStep("verify", "nothing: the staged drop read back, then recorded and announced", None,
            f"{_F}:run_verify"),
    SubStep("share", "public AMIs, their messages", f"{_F}:share_inputs", f"{_F}:run_share",
            applies=f"{_F}:has_publishers"),
)



@dataclass(frozen=True)
class ReleaseStep:
    """A step of `rel-eng release` (rel_eng.release.run): not a compose step, but keyed, locked
    and recorded the same way, as `release:<name>` in the candidate's manifest."""

    name: str
    outputs: str
    inputs: str | None  # "module:function" (run) -> inputs; None: not keyed, runs every time
    run: str  # "module:function" (run) -> None
    applies: str | None = None  # "module:function" (run) -> bool; None: always
    found: str | None = None  # "module:function" (run) -> bool: a recorded key's output exists

    def applies_to(self, run) -> bool:
        return self.applies is None or bool(resolve(self.applies)(run))

    def inputs_of(self, run) -> list:
        return resolve(self.inputs)(run)

    def found_in(self, run) -> bool:
        return self.found is None or bool(resolve(self.found)(run))

    def __call__(self, run) -> None:
        resolve(self.run)(run)


_R = "rel_eng.release.run"
RELEASE_STEPS: tuple[ReleaseStep, ...] = (
    ReleaseStep("check", "nothing: refuses before any write", None, f"{_R}:run_check"),
    ReleaseStep("link", "a hidden temp tree: hardlinks of the inodes the check hashed, or "
                "verified copies", None, f"{_R}:run_link", applies=f"{_R}:needs_tree"),
    ReleaseStep("resign", "the CHECKSUM copies signed with [signing] release_key (or taken "
                "from --signed-checksums), as new files", None, f"{_R}:run_resign",
                applies=f"{_R}:resigning"),
    ReleaseStep("seal", "metadata/release.json and the tree's MANIFEST, the tree verified",
                None, f"{_R}:run_seal", applies=f"{_R}:needs_tree"),
    ReleaseStep("swap", "<release dir>/<variant>/ (one rename, or an exchange with --replace)",
                f"{_R}:tree_inputs", f"{_R}:run_swap", applies=f"{_R}:needs_tree",
                found=f"{_R}:swapped"),
    ReleaseStep("withdraw", "--withdraw: the tree moved aside in one rename", None,
                f"{_R}:run_withdraw", applies=f"{_R}:withdrawing"),
    ReleaseStep("open", "the top dir readable (0755); skipped under --closed", None,
                f"{_R}:run_open", applies=f"{_R}:opening"),
    ReleaseStep("share", "the candidate's AMIs public in every region ([ec2] "
                "public_milestones), once open", None, f"{_R}:run_share",
                applies=f"{_R}:sharing"),
    ReleaseStep("unshare", "the replaced or withdrawn candidate's AMIs private again, or "
                "deprecated ([release] replaced_amis)", None, f"{_R}:run_unshare",
                applies=f"{_R}:unsharing"),
    ReleaseStep("announce", "the store's release row and act; rel_eng.release.published.v1 "
                "once open", None, f"{_R}:run_announce"),
)

STEPS = {s.name: s for s in PIPELINE}
IMAGE_STEPS = tuple(s for s in PIPELINE if s.scope == IMAGE)
COMPOSE_STEPS = tuple(s for s in PIPELINE if s.scope == COMPOSE)


def describe() -> list[dict]:
    """The list as plain data, for `rel-eng plan --json` and the dashboard."""
    out = [{"name": s.name, "scope": s.scope, "route": s.route, "outputs": s.outputs,
            "lock": s.lock("<image>" if s.scope == IMAGE else "")} for s in PIPELINE]
    finalize = next(d for d in out if d["name"] == "finalize")
    finalize["steps"] = [{"name": f.name, "outputs": f.outputs, "keyed": f.inputs is not None}
                         for f in FINALIZE_STEPS]
    return out


def describe_release() -> list[dict]:
    """`rel-eng release`'s steps as plain data, for `rel-eng plan --released --json`."""
    return [{"name": s.name, "outputs": s.outputs, "keyed": s.inputs is not None,
             "lock": "the mirror's lock", "record": f"release:{s.name}"} for s in RELEASE_STEPS]
