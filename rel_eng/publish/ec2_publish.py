"""Publish a drop's EC2 raw disks as AMIs: snapshot, register in the base region, copy to every
region, then (only once every region is available) share and deprecate, record and announce.

Every step first looks up what already exists by tag (compose id, image NVRA, region), so a rerun
after a crash finishes only what is missing and never makes a second AMI for an image and region.
All input is checked before the first upload.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import boto3
import botocore.exceptions

from rel_eng.errors import InputError, RelEngError
from rel_eng.manifest import Manifest, step_digest
from rel_eng.plan import DropPlan, ImageJob, load_plan
from rel_eng.publish import ami, ami_verified, ec2_tags, messages
from rel_eng.publish.aws_clients import AwsClients, Ec2Error, describe_failure, error_code
from rel_eng.publish.ebs_upload import GIB, UploadResult, upload_ebs_direct, volume_size_gib
from rel_eng.config.ec2 import Ec2Config, known_regions
from rel_eng.publish.ec2_results import load_results, results_path, write_results
from rel_eng.publish.s3_import import upload_s3_import

if TYPE_CHECKING:
    from rel_eng.config import Config

log = logging.getLogger(__name__)

MAX_COPY_WORKERS = 8
AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


@dataclass(frozen=True)
class Target:
    """One EC2 raw disk to publish."""

    job: ImageJob
    path: Path
    size: int
    volume_gib: int
    sha256: str = ""  # the raw disk's manifest digest, checked by the upload
    declared: ami_verified.Declared | None = None  # the AMI attributes and how they were verified


@dataclass(frozen=True)
class ImageResult:
    job: ImageJob
    volume_gib: int
    images: dict[str, dict]  # region -> the AMI as describe_images returns it
    upload: UploadResult | None  # None when the base AMI already existed
    public: bool = False
    deprecate_at: dt.datetime | None = None
    declared: dict | None = None  # ami_verified.Declared.as_dict() of a registration made now

    @property
    def amis(self) -> dict[str, str]:
        return {region: image["ImageId"] for region, image in self.images.items()}

    @property
    def created(self) -> bool:
        return self.upload is not None


@dataclass(frozen=True)
class PublishReport:
    compose_id: str
    images: tuple[ImageResult, ...]
    skipped: dict[str, str]  # nvra -> why
    messages: tuple[dict, ...]
    metadata: Path


def resolve_regions(cfg: Ec2Config, regions: list[str] | None) -> tuple[str, ...]:
    """The regions of this run: the base region (copies come from it) plus the chosen ones."""
    if regions is None:
        return cfg.all_regions
    unknown = [r for r in regions if r not in known_regions()]
    if unknown:
        raise InputError(f"--regions: unknown EC2 region {', '.join(unknown)}",
                         hint="see `aws ec2 describe-regions` for valid names")
    return tuple(dict.fromkeys((cfg.base_region, *regions)))


def select_targets(topdir: Path, plan: DropPlan, cfg: Ec2Config) -> tuple[list[Target], dict[str, str]]:
    """The raw disks to publish and the ones skipped on purpose; raises on any bad one."""
    jobs = {j.key: j for j in plan.images}
    manifest = Manifest(topdir)
    artifacts = sorted(manifest.artifacts(kind="raw-disk", image_type="ec2"), key=lambda a: a.job_key)
    if not artifacts:
        raise InputError(f"{manifest.path}: no EC2 raw disk recorded",
                         hint="build the drop's EC2 images before publishing")
    targets, skipped, problems = [], {}, []
    for art in artifacts:
        job = jobs.get(art.job_key)
        if job is None:
            problems.append(f"{manifest.path}: {art.path} belongs to job '{art.job_key}', which the plan lacks")
            continue
        if job.arch not in ami.EC2_ARCH:
            skipped[job.nvra] = f"arch {job.arch} has no EC2 architecture"
            continue
        if ami.EC2_ARCH[job.arch] == "i386" and not cfg.i386:
            skipped[job.nvra] = "i386 publishing is off (set ec2.i386 = true to publish i686 images)"
            continue
        path = topdir / art.path
        if not path.is_file():
            problems.append(f"{path}: raw disk of {job.nvra} is missing (rebuild the image)")
            continue
        size = path.stat().st_size
        gib = volume_size_gib(size, cfg.volume_size_gib)
        if size > gib * GIB:
            need = volume_size_gib(size, 0)
            problems.append(f"{path}: {job.nvra} is {size} bytes, larger than ec2.volume_size_gib = "
                            f"{cfg.volume_size_gib} GiB (set it to at least {need})")
            continue
        if not art.sha256:
            problems.append(f"{manifest.path}: no digest recorded for the raw disk {path} "
                            f"(rebuild {job.nvra})")
            continue
        targets.append(Target(job, path, size, gib, art.sha256))
    if problems:
        raise InputError("; ".join(problems))
    return targets, skipped


def is_public(plan: DropPlan, cfg: Ec2Config) -> bool:
    return cfg.weekly_public if plan.weekly else cfg.public_milestones


class Ec2Publisher:
    """Runtime state of one publish run: clients, the plan and the regions."""

    def __init__(self, clients: AwsClients, cfg: Ec2Config, plan: DropPlan, regions: tuple[str, ...]):
        self.clients = clients
        self.cfg = cfg
        self.plan = plan
        self.regions = regions

    def _tags(self, job: ImageJob) -> dict[str, str]:
        return ec2_tags.image_tags(self.plan.compose_id, job.nvra, self.plan.weekly)

    def snapshot(self, target: Target) -> tuple[str, UploadResult | None]:
        """A completed snapshot of the image in the base region: an earlier one, or a new upload."""
        region = self.cfg.base_region
        ec2 = self.clients.ec2(region)
        tags = self._tags(target.job)
        keys = {k: tags[k] for k in (ec2_tags.COMPOSE, ec2_tags.IMAGE)}
        found = ec2.describe_snapshots(OwnerIds=["self"], Filters=ec2_tags.tag_filters(keys))["Snapshots"]
        for snap in sorted(found, key=lambda s: str(s.get("StartTime", ""))):
            complete = ec2_tags.tag_dict(snap.get("Tags")).get(ec2_tags.UPLOAD) == "complete"
            if complete and snap.get("State") == "completed":
                log.info("%s: reusing snapshot %s", target.job.nvra, snap["SnapshotId"])
                return snap["SnapshotId"], None
        for snap in found:  # an upload a crash interrupted: its blocks are unknown, start afresh
            try:
                ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])
                log.info("%s: deleted unfinished snapshot %s", target.job.nvra, snap["SnapshotId"])
            except botocore.exceptions.ClientError as exc:
                log.warning("could not delete unfinished snapshot %s: %s", snap["SnapshotId"], error_code(exc))
        upload = upload_ebs_direct if self.cfg.upload_mode == "ebs-direct" else upload_s3_import
        description = ami.ami_description(target.job.description, target.job.nvra, self.plan.compose_id)
        result = upload(self.clients, self.cfg, region, target.path, target.volume_gib, tags,
                        description, raw_sha256=target.sha256)
        return result.snapshot_id, result

    def publish_image(self, target: Target) -> ImageResult:
        job, base = target.job, self.cfg.base_region
        name = ami.ami_name(job.nvra)
        description = ami.ami_description(job.description, job.nvra, self.plan.compose_id)
        base_tags = {**self._tags(job), ec2_tags.REGION: base}
        ec2 = self.clients.ec2(base)
        upload = None
        existing = ami.find_own_image(ec2, base_tags, name)
        if existing:
            image_id = existing["ImageId"]
            log.info("%s: found %s in %s", job.nvra, image_id, base)
        else:
            snapshot_id, upload = self.snapshot(target)
            params = ami.register_params(self.cfg, name=name, description=description, arch=job.arch,
                                         snapshot_id=snapshot_id, volume_gib=target.volume_gib,
                                         tags=base_tags,
                                         attributes=target.declared.attributes if target.declared else None)
            image_id = ami.register(ec2, params, base_tags)
        images = {base: ami.wait_available(ec2, self.cfg, image_id, base)}

        others = [r for r in self.regions if r != base]
        errors = []
        if others:
            workers = min(MAX_COPY_WORKERS, len(others))
            with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ami-copy") as pool:
                futures = {pool.submit(self.copy_to, region, image_id, job, name, description): region
                           for region in others}
                for fut in cf.as_completed(futures):
                    region = futures[fut]
                    try:
                        images[region] = fut.result()
                    except RelEngError as exc:
                        errors.append(f"{region}: {exc}")
                    except AWS_ERRORS as exc:
                        errors.append(f"{region}: {describe_failure('copy', exc)}")
        if errors:
            raise Ec2Error(f"{job.nvra}: " + "; ".join(sorted(errors)))
        ordered = {r: images[r] for r in self.regions}
        return ImageResult(job, target.volume_gib, ordered, upload,
                           declared=target.declared.as_dict() if target.declared else None)

    def copy_to(self, region: str, source_id: str, job: ImageJob, name: str, description: str) -> dict:
        ec2 = self.clients.ec2(region)
        tags = {**self._tags(job), ec2_tags.REGION: region, ec2_tags.SOURCE_AMI: source_id}
        existing = ami.find_own_image(ec2, tags, name)
        if existing:
            image_id = existing["ImageId"]
            log.info("%s: found %s in %s", job.nvra, image_id, region)
        else:
            token = step_digest("copy-image", self.plan.compose_id, job.nvra, region, source_id)
            params = ami.copy_params(source_region=self.cfg.base_region, source_ami=source_id,
                                     name=name, description=description, tags=tags,
                                     client_token=token)
            image_id = ami.copy(ec2, params, tags, region)
        return ami.wait_available(ec2, self.cfg, image_id, region)

    def finish(self, result: ImageResult) -> ImageResult:
        """Visibility and deprecation; only called once every image is available everywhere."""
        public = is_public(self.plan, self.cfg)
        when = None
        if self.plan.weekly and self.cfg.deprecate_days:
            when = ami.deprecate_at(result.images[self.cfg.base_region], self.cfg.deprecate_days)
        for region, image in result.images.items():
            ec2 = self.clients.ec2(region)
            if public:
                ami.make_public(ec2, image["ImageId"], ami.snapshot_ids(image))
            if when:
                ami.deprecate(ec2, image["ImageId"], when)
        if public:
            log.info("%s: public in %d regions", result.job.nvra, len(result.images))
        return dataclasses.replace(result, public=public, deprecate_at=when)


def results_document(plan: DropPlan, cfg: Ec2Config, results: list[ImageResult],
                     skipped: dict[str, str]) -> dict[str, Any]:
    images = {}
    for r in results:
        base_snaps = ami.snapshot_ids(r.images[cfg.base_region])
        images[r.job.nvra] = {
            "arch": r.job.arch,
            "architecture": ami.EC2_ARCH[r.job.arch],
            "subvariant": r.job.subvariant,
            "name": r.job.name,
            "snapshot_id": base_snaps[0] if base_snaps else None,
            "volume_size_gib": r.volume_gib,
            "public": r.public,
            "deprecate_at": r.deprecate_at.isoformat() if r.deprecate_at else None,
            "regions": r.amis,
            "snapshots": {region: ami.snapshot_ids(image) for region, image in r.images.items()},
        }
        if r.declared:  # kept from the registering run when a later run only shares
            images[r.job.nvra]["ami_attributes"] = r.declared["attributes"]
            images[r.job.nvra]["ami_attributes_verified"] = r.declared["verified"]
    return {"compose_id": plan.compose_id, "base_region": cfg.base_region,
            "images": images, "skipped": dict(skipped)}


def publish_ec2(
    topdir: Path,
    config: "Config",
    regions: list[str] | None = None,
    *,
    session: boto3.session.Session | None = None,
    out: Callable[[str], None] = print,
    share: bool = True,
) -> PublishReport:
    """Publish every EC2 image of the drop in `topdir`; `regions` overrides the configured copies.

    `session` lets callers (and tests) supply a boto3 session; by default credentials and
    endpoints come from the standard AWS chain and environment. With `share=False` the AMIs are
    registered and copied but stay private and nothing is announced: `rel-eng compose` stages
    the drop first and calls `share_ec2` only once the drop is in the mirror.
    """
    cfg = config.ec2
    found = cfg.problems(config.source, "ec2.")  # a config built in code was never parsed
    if found:
        raise InputError("; ".join(found))
    all_regions = resolve_regions(cfg, regions)
    plan = load_plan(topdir)
    targets, skipped = select_targets(topdir, plan, cfg)
    # Before any upload: an attribute the gate did not verify refuses the image, no orphan left.
    targets = [dataclasses.replace(t, declared=ami_verified.declared(topdir, config, plan, t.job, t.sha256))
               for t in targets]
    for nvra, reason in skipped.items():
        log.warning("ec2: skipped %s: %s", nvra, reason)
    clients = AwsClients(cfg, session)
    clients.require_credentials()

    publisher = Ec2Publisher(clients, cfg, plan, all_regions)
    results, failures = [], []
    for target in targets:
        log.info("ec2: publishing %s to %s", target.job.nvra, ", ".join(all_regions))
        try:
            results.append(publisher.publish_image(target))
        except RelEngError as exc:
            failures.append(str(exc))
        except AWS_ERRORS as exc:
            failures.append(str(describe_failure(target.job.nvra, exc)))
    if failures:
        # Nothing was shared yet: a rerun picks up every finished snapshot and AMI.
        raise Ec2Error("EC2 publishing incomplete: " + "; ".join(failures),
                       hint="rerun `rel-eng ec2 publish`; finished steps are not repeated")
    if not share:
        path = write_results(topdir, results_document(plan, cfg, results, skipped))
        return PublishReport(plan.compose_id, tuple(results), skipped, (), path)
    return _share_and_announce(publisher, plan, results, skipped, topdir, out,
                               config.messaging.enabled)


def share_ec2(
    topdir: Path,
    config: "Config",
    *,
    session: boto3.session.Session | None = None,
    out: Callable[[str], None] = print,
) -> PublishReport:
    """Share (when configured), deprecate and announce the AMIs ec2.json records for `topdir`,
    as registered by `publish_ec2(..., share=False)`. Safe to rerun: sharing twice is a no-op."""
    cfg = config.ec2
    plan = load_plan(topdir)
    recorded = load_results(topdir)
    if not recorded or recorded.get("compose_id") != plan.compose_id:
        raise InputError(f"{results_path(topdir)}: no AMIs recorded for {plan.compose_id}",
                         hint="publish the drop's EC2 images first")
    clients = AwsClients(cfg, session)
    clients.require_credentials()
    jobs = {j.nvra: j for j in plan.images}
    results = []
    try:
        for nvra, info in sorted(recorded.get("images", {}).items()):
            images = {}
            for region, image_id in info["regions"].items():
                found = clients.ec2(region).describe_images(ImageIds=[image_id])["Images"]
                if not found:
                    raise Ec2Error(f"{nvra}: AMI {image_id} in {region} no longer exists",
                                   hint="rerun `rel-eng ec2 publish` to register it again")
                images[region] = found[0]
            results.append(ImageResult(jobs[nvra], info["volume_size_gib"], images, None))
    except AWS_ERRORS as exc:
        raise describe_failure("looking up the AMIs to share", exc) from None
    regions = tuple(dict.fromkeys((cfg.base_region, *(r for res in results for r in res.images))))
    publisher = Ec2Publisher(clients, cfg, plan, regions)
    return _share_and_announce(publisher, plan, results, recorded.get("skipped", {}), topdir, out,
                               config.messaging.enabled)


def _share_and_announce(publisher: Ec2Publisher, plan: DropPlan, results: list[ImageResult],
                        skipped: dict[str, str], topdir: Path,
                        out: Callable[[str], None], send: bool) -> PublishReport:
    cfg = publisher.cfg
    try:
        results = [publisher.finish(r) for r in results]
    except AWS_ERRORS as exc:
        raise describe_failure("sharing/deprecating the AMIs", exc) from None

    path = write_results(topdir, results_document(plan, cfg, results, skipped))
    bodies = [
        messages.published_body(arch=r.job.arch, compose_id=plan.compose_id, image_name=r.job.nvra,
                                regions=r.amis, release=plan.fedora_version,
                                subvariant=r.job.subvariant)
        for r in results
    ]
    messages.emit(bodies, send, out)
    return PublishReport(plan.compose_id, tuple(results), skipped, tuple(bodies), path)
