"""The README placed beside the images of each arch. Regenerated from plan, manifest and metadata."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

from rel_eng.config.ami_attributes import describe_recorded
from rel_eng.manifest import Artifact
from rel_eng.plan import DropPlan

EC2_PLACEHOLDER = "No AMIs have been published for this drop."
KINDS = {  # deliverable suffix -> what the README says it is
    "qcow2": "qcow2 disk image, compressed clusters (OpenStack, Eucalyptus, KVM)",
    "raw.tar.xz": "raw disk in an xz-compressed tar (sparse member; EC2, dd to a disk)",
    "raw.xz": "raw disk compressed with xz on its own (xz -dc IMAGE.raw.xz | dd of=DISK)",
    "packages-list": "the packages installed in the image, read during its boot test",
}
# Only these EC2 instance families run 32-bit (Architecture=i386) AMIs.
I386_INSTANCE_FAMILIES = ("t1", "m1", "c1", "c3", "t2")


def render(plan: DropPlan, arch: str, deliverables: list[Artifact], checksum_name: str,
           signed: bool, default_user: str, bootable: bool, failed: dict[str, str],
           amis: dict | None) -> str:
    """The README text: this module picks what it says, templates/README.txt lays it out."""
    jobs = {j.key: j for j in plan.images}
    mine = sorted((a for a in deliverables if a.arch == arch), key=lambda a: a.path)
    files = [{"name": Path(a.path).name, "description": jobs[a.job_key].description,
              "kind": KINDS.get(a.kind, a.kind), "size": a.size} for a in mine]
    # The first qcow2 in manifest order is the example.
    qcow2 = next((Path(a.path).name for a in deliverables if a.arch == arch and a.kind == "qcow2"),
                 "IMAGE.qcow2")
    return _template().render(
        plan=plan, arch=arch, files=files, checksum_name=checksum_name, signed=signed,
        default_user=default_user, bootable=bootable,
        failed=[(jobs[k].nvra, v) for k, v in sorted(failed.items())],
        qcow2=qcow2, qcow2_stem=Path(qcow2).stem, euca_arch="i386" if arch == "i686" else arch,
        amis=_amis(amis, {j.nvra for j in plan.images if j.arch == arch}),
        i386_families=", ".join(I386_INSTANCE_FAMILIES), placeholder=EC2_PLACEHOLDER)


@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    # Plain text, not HTML: nothing to escape. Undefined names fail instead of printing "".
    env = jinja2.Environment(loader=jinja2.PackageLoader("rel_eng", "templates"),
                             autoescape=False, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, keep_trailing_newline=True)
    return env.get_template("README.txt")


def _amis(amis: dict | None, nvras: set[str]) -> list[tuple[str, list[tuple[str, str]], str]]:
    """(NVRA, [(region, AMI id)], its attributes and whether a boot verified them) per image of
    this arch. `amis` is compose/metadata/ec2.json."""
    out = []
    for nvra, info in sorted((amis or {}).get("images", {}).items()):
        if nvra not in nvras:
            continue
        regions = info.get("regions", {})
        declared = describe_recorded(info)
        out.append((nvra, [(region, r.get("ami_id") if isinstance(r, dict) else r)
                           for region, r in sorted(regions.items())], declared))
    return out
