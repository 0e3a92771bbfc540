"""The README placed beside the images of each arch. Regenerated from plan, manifest and metadata."""

from __future__ import annotations

from pathlib import Path

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
    jobs = {j.key: j for j in plan.images}
    title = f"Fedora {plan.release_version} Cloud images ({plan.label or 'weekly'}), {arch}"
    out = [title, "=" * len(title), "",
           f"Compose: {plan.compose_id}",
           f"Built by the '{plan.builder}' builder.", ""]
    if not bootable:
        out += ["WARNING: these images are NOT BOOTABLE. They were made by the synthetic test",
                "builder and hold only metadata (os-release, kickstart, TDL, manifest).", ""]
    out += ["Files", "-----"]
    for art in sorted((a for a in deliverables if a.arch == arch), key=lambda a: a.path):
        job = jobs[art.job_key]
        kind = KINDS.get(art.kind, art.kind)
        out.append(f"  {Path(art.path).name}")
        out.append(f"      {job.description}: {kind}, {art.size} bytes")
    out.append(f"  {checksum_name}")
    out.append("      SHA256 checksums of the files above" + (", clearsigned with gpg" if signed else ""))
    if failed:
        out += ["", "Images that failed to build (this drop is incomplete)",
                "-----------------------------------------------------"]
        out += [f"  {jobs[k].nvra}: {v}" for k, v in sorted(failed.items())]
    out += ["", "Verifying", "---------"]
    if signed:
        out += ["  Import the Fedora signing key, then check the signature:",
                f"    gpg --verify {checksum_name}"]
    out += ["  Check every file against its checksum:",
            f"    sha256sum -c {checksum_name}", "",
            "Logging in", "----------",
            f"  The root account is locked. Log in as '{default_user}' with the ssh key you gave",
            "  the cloud; cloud-init installs it on first boot. Use sudo for root.", "",
            "Booting in OpenStack", "--------------------"]
    qcow2 = next((Path(a.path).name for a in deliverables if a.arch == arch and a.kind == "qcow2"), "IMAGE.qcow2")
    out += ["    openstack image create --disk-format qcow2 --container-format bare \\",
            f"        --file {qcow2} {Path(qcow2).stem}",
            f"    openstack server create --image {Path(qcow2).stem} --flavor m1.small \\",
            "        --key-name KEY my-instance", "",
            "Booting in Eucalyptus", "---------------------",
            "  Unpack the raw disk and install it as an image:",
            "    tar -xJSf IMAGE.raw.tar.xz",
            f"    euca-install-image -i IMAGE.raw -b BUCKET -r {arch if arch != 'i686' else 'i386'} \\",
            "        --virtualization-type hvm",
            "    euca-run-instances -k KEY EMI-ID", "",
            "Booting in EC2", "--------------"]
    rows = _ami_rows(amis, {j.nvra for j in plan.images if j.arch == arch})
    if rows:
        out += ["  Launch one of these AMIs with your key pair:",
                "    aws ec2 run-instances --image-id AMI-ID --key-name KEY --region REGION", ""]
        if arch == "i686":
            families = ", ".join(I386_INSTANCE_FAMILIES)
            out += ["  These are i386 AMIs: only the 32-bit capable instance families run them",
                    f"  ({families}; e.g. --instance-type t2.micro or m1.small).", ""]
        else:
            out += ["  These are x86_64 AMIs: any current x86_64 instance type runs them.", ""]
        out += rows
    else:
        out += [f"  {EC2_PLACEHOLDER}"]
    return "\n".join(out) + "\n"


def _ami_rows(amis: dict | None, nvras: set[str]) -> list[str]:
    """A table per image: region, AMI id. `amis` is compose/metadata/ec2.json."""
    rows: list[str] = []
    for nvra, info in sorted((amis or {}).get("images", {}).items()):
        if nvra not in nvras:
            continue
        regions = info.get("regions", {})
        rows += [f"  {nvra}", "    region           AMI"]
        for region in sorted(regions):
            ami = regions[region]
            ami_id = ami.get("ami_id") if isinstance(ami, dict) else ami
            rows.append(f"    {region:<16} {ami_id}")
        rows.append("")
    return rows
