"""The attributes an AMI is registered with: those its release declares, and only once the boot
gate verified each of them on the very disk being uploaded (its raw digest). With the gate off
(`[boot_test] enabled = false` or `gate = "none"`), or an image the gate cannot boot, the config's
values are taken and recorded "not verified by a boot"."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rel_eng.config import ami_attributes
from rel_eng.config.ami_attributes import AmiAttributes
from rel_eng.inputfile import read_capped
from rel_eng.publish.aws_clients import Ec2Error

if TYPE_CHECKING:
    from rel_eng.config import Config
    from rel_eng.plan import DropPlan, ImageJob

NOT_VERIFIED = "not verified by a boot"


@dataclass(frozen=True)
class Declared:
    attributes: AmiAttributes
    verified: str  # "verified by a boot (<checks>)" or NOT_VERIFIED with why

    def as_dict(self) -> dict:
        return {"attributes": self.attributes.full(), "verified": self.verified}


def _step_state(topdir: Path, key: str) -> dict:
    try:
        steps = json.loads(read_capped(topdir / "work" / "manifest.json")).get("steps", {})
    except (OSError, ValueError):
        return {}
    return steps.get(f"boottest:{key}", {})


def declared(topdir: Path, config: "Config", plan: "DropPlan", job: "ImageJob",
             raw_sha256: str) -> Declared:
    """What `job`'s AMI may declare; raises Ec2Error (one line naming the attribute) when the
    configured attributes are not what the gate verified for this disk. Reads only: called for
    every image before the first upload, so a refusal leaves no orphan snapshot."""
    attrs = ami_attributes.for_image(config.ec2, config.release(plan.release_key), job.arch)
    bt = config.boot_test
    if not bt.enabled or bt.gate == "none":
        return Declared(attrs, f"{NOT_VERIFIED} (the boot gate is off)")
    path = topdir / "work" / "boottest" / f"{job.key}.json"
    try:
        verdict = json.loads(read_capped(path))
    except FileNotFoundError:
        step = _step_state(topdir, job.key)
        if step.get("state") == "skipped":  # a disk the gate cannot boot (synthetic)
            return Declared(attrs, f"{NOT_VERIFIED} ({step.get('reason') or 'not booted'})")
        if not step:  # a drop made without the gate step (built before it existed)
            return Declared(attrs, f"{NOT_VERIFIED} (the drop has no boot-test record)")
        raise Ec2Error(f"{job.nvra}: no boot verdict ({path} is missing), so no AMI attribute is "
                       "verified", hint="run the compose's boot gate first (rel-eng compose --resume)"
                       ) from None
    except (OSError, ValueError) as exc:
        raise Ec2Error(f"{path}: unreadable boot verdict ({type(exc).__name__})") from None
    if verdict.get("raw_sha256") != raw_sha256:
        raise Ec2Error(f"{job.nvra}: the boot verdict is for another disk (raw sha256 "
                       f"{str(verdict.get('raw_sha256'))[:12] or 'none'}, the upload's {raw_sha256[:12]})",
                       hint="boot-test this disk before publishing it")
    seen = verdict.get("ami_attributes") or {}
    for key, value in attrs.full().items():
        if key not in seen or seen[key] != value:
            got = f"verified {key}={seen[key]!r}" if key in seen else f"did not verify {key}"
            raise Ec2Error(f"{job.nvra}: refusing to register with {key}={value!r}: its boot test {got}",
                           hint="boot-test the image with this attribute, or change the release's "
                                "ec2_* keys back")
    return Declared(attrs, f"verified by a boot ({', '.join(attrs.proving_checks)})")
