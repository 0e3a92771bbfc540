"""Publish a drop's EC2 raw disks as AMIs: snapshot, register in the base region and set its
deprecation, copy to every region (each copy deprecated alike), then (only once every region is
available) share region by region (rel_eng.publish.ec2_sharing), record and announce.

Every step first looks up what already exists by tag (compose id, image NVRA, region), so a rerun
after a crash finishes only what is missing and never makes a second AMI for an image and region.
All input is checked before the first upload.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import boto3
import botocore.exceptions

from rel_eng.errors import InputError, RelEngError
from rel_eng.manifest import Manifest, step_digest
from rel_eng.plan import DropPlan, ImageJob, load_plan
from rel_eng.publish import ami, ami_verified, ec2_sharing, ec2_tags, messages
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
    public: bool = False  # public in every region
    deprecate_at: dt.datetime | None = None
    visibility: dict[str, str] = field(default_factory=dict)  # region -> ec2_sharing.PUBLIC, ...
    pointers: dict[str, str] = field(default_factory=dict)  # region -> SSM parameter naming it
    declared: dict | None = None  # ami_verified.Declared.as_dict() of a registration made now

    @property
    def amis(self) -> dict[str, str]:
        return {region: image["ImageId"] for region, image in self.images.items()}

    @property
    def created(self) -> bool:
        return self.upload is not None

    @property
    def announced(self) -> dict[str, str]:
        """The AMIs a message names: not those Block Public Access kept private against the rule."""
        return {r: a for r, a in self.amis.items() if self.visibility.get(r) != ec2_sharing.BLOCKED}


@dataclass(frozen=True)
class PublishReport:
    compose_id: str
    images: tuple[ImageResult, ...]
    skipped: dict[str, str]  # nvra -> why
    messages: tuple[dict, ...]
    metadata: Path
    blocked: dict[str, str] = field(default_factory=dict)  # region -> why and how to lift it


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


def is_public(plan: DropPlan, cfg: Ec2Config, public: bool | None = None) -> bool:
    """Whether the AMIs are shared with group "all" now. `public` (True at release) overrides.
    A milestone candidate's AMIs stay private at staging: `public_milestones` acts when the
    candidate is released (`rel-eng release`), never before."""
    if public is not None:
        return public
    return cfg.weekly_public if plan.weekly else False


def deprecation_days(plan: DropPlan, cfg: Ec2Config) -> int:
    """Weeklies: deprecate_days; milestones: milestone_deprecate_days (0 = never)."""
    return cfg.deprecate_days if plan.weekly else cfg.milestone_deprecate_days


class Ec2Publisher:
    """Runtime state of one publish run: clients, the plan and the regions."""

    def __init__(self, clients: AwsClients, cfg: Ec2Config, plan: DropPlan, regions: tuple[str, ...]):
        self.clients = clients
        self.cfg = cfg
        self.plan = plan
        self.regions = regions
        self._blocks: dict[str, ec2_sharing.Block | None] = {}  # read once per region and run

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
        when = self.deprecate(ec2, images[base], images[base])

        others = [r for r in self.regions if r != base]
        errors = []
        if others:
            workers = min(MAX_COPY_WORKERS, len(others))
            with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ami-copy") as pool:
                futures = {pool.submit(self.copy_to, region, image_id, job, name, description,
                                       images[base]): region
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
        return ImageResult(job, target.volume_gib, ordered, upload, deprecate_at=when,
                           declared=target.declared.as_dict() if target.declared else None)

    def deprecate(self, ec2: Any, image: dict, base_image: dict) -> dt.datetime | None:
        """DeprecateAt right after registration (and after each copy): from the base AMI's
        creation time, so every region and every rerun sets the same time."""
        days = deprecation_days(self.plan, self.cfg)
        if not days:
            return None
        when = ami.deprecate_at(base_image, days)
        ami.deprecate(ec2, image["ImageId"], when)
        return when

    def copy_to(self, region: str, source_id: str, job: ImageJob, name: str, description: str,
                base_image: dict) -> dict:
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
        image = ami.wait_available(ec2, self.cfg, image_id, region)
        self.deprecate(ec2, image, base_image)
        return image

    def block(self, region: str) -> ec2_sharing.Block | None:
        if region not in self._blocks:
            found = ec2_sharing.public_block(self.clients.ec2(region), region)
            if found:
                log.warning("%s", found.line())
            self._blocks[region] = found
        return self._blocks[region]

    def blocked(self) -> dict[str, str]:
        return {r: b.line() for r, b in sorted(self._blocks.items()) if b}

    def finish(self, result: ImageResult, public: bool) -> ImageResult:
        """Share region by region; only called once every image is available everywhere.

        A region whose Block Public Access refuses public AMIs keeps this one private (still
        shared with the configured organizations) and the other regions go on. The SSM pointer
        is written only where the AMI is now shared."""
        visibility, pointers = {}, {}
        for region, image in result.images.items():
            ec2 = self.clients.ec2(region)
            image_id, snaps = image["ImageId"], ami.snapshot_ids(image)
            orgs = ec2_sharing.share_orgs(ec2, self.cfg, image_id)
            state = ec2_sharing.SHARED if orgs else ec2_sharing.PRIVATE
            made = False
            if public and self.block(region) is None:
                made = ec2_sharing.make_public(ec2, image_id, snaps)  # again on reruns: a no-op
                if not made:  # refused: turned on after it was read (or not yet visible there)
                    self._blocks[region] = ec2_sharing.Block(
                        region, (("image", f"refusing it ({ec2_sharing.REFUSED_PUBLIC})", "account"),))
                    log.warning("%s", self._blocks[region].line())
            if made or image.get("Public"):  # a block turned on later keeps public AMIs public
                state = ec2_sharing.PUBLIC
            elif public:
                state = ec2_sharing.BLOCKED
            visibility[region] = state
            if self.cfg.ssm_prefix and state in ec2_sharing.VISIBLE:
                name = ec2_sharing.pointer_name(self.cfg, self.plan.release_version, self.plan.weekly,
                                                result.job.arch)
                done = ec2_sharing.put_pointer(self.clients.ssm(region), name, image_id,
                                               self.plan.compose_id)
                log.info("%s: %s %s in %s", result.job.nvra, name, done, region)
                pointers[region] = name
        everywhere = bool(visibility) and all(v == ec2_sharing.PUBLIC for v in visibility.values())
        if everywhere:
            log.info("%s: public in %d regions", result.job.nvra, len(result.images))
        return dataclasses.replace(result, public=everywhere, visibility=visibility, pointers=pointers)


def results_document(plan: DropPlan, cfg: Ec2Config, results: list[ImageResult],
                     skipped: dict[str, str], blocked: dict[str, str] | None = None) -> dict[str, Any]:
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
            "visibility": dict(r.visibility),
            "ssm": dict(r.pointers),
        }
        if cfg.share_organizations or cfg.share_organizational_units:
            images[r.job.nvra]["shared_with"] = {
                "organizations": list(cfg.share_organizations),
                "organizational_units": list(cfg.share_organizational_units)}
        if r.declared:  # kept from the registering run when a later run only shares
            images[r.job.nvra]["ami_attributes"] = r.declared["attributes"]
            images[r.job.nvra]["ami_attributes_verified"] = r.declared["verified"]
    return {"compose_id": plan.compose_id, "base_region": cfg.base_region,
            "images": images, "skipped": dict(skipped),
            **({"blocked_regions": dict(blocked)} if blocked is not None else {})}


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
    public: bool | None = None,
    session: boto3.session.Session | None = None,
    out: Callable[[str], None] = print,
) -> PublishReport:
    """Share, point the SSM pointer at and announce the AMIs ec2.json records for `topdir`, as
    registered by `publish_ec2(..., share=False)`. `public`: None follows the config's rule for
    the drop (is_public: weekly_public; a milestone waits for its release), True makes them
    public now, False shares them with the configured organizations only. Block Public Access is read per region here, so a
    release that makes a drop public reads it then. Safe to rerun: sharing twice is a no-op."""
    publisher, plan, recorded, results = _recorded(topdir, config, session)
    return _share_and_announce(publisher, plan, results, recorded.get("skipped", {}), topdir, out,
                               config.messaging.enabled, public)


UNSHARE = ("private", "deprecate")


def unshare_ec2(
    topdir: Path,
    config: "Config",
    *,
    how: str = "private",
    session: boto3.session.Session | None = None,
    out: Callable[[str], None] = print,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> PublishReport:
    """Take back the AMIs ec2.json records for `topdir`, in every region.

    "private": remove every launch permission and every createVolumePermission they have now
    (public, organizations, accounts), and delete the SSM pointer where it names them.
    "deprecate": DeprecateAt now (rounded up to the minute, as EC2 keeps minutes); they stay
    launchable by id but leave DescribeImages listings. Nothing is announced. Safe to rerun."""
    if how not in UNSHARE:
        raise InputError(f"unshare: unknown way '{how}'", hint=f"use one of {', '.join(UNSHARE)}")
    publisher, plan, recorded, results = _recorded(topdir, config, session)
    cfg, clients = publisher.cfg, publisher.clients
    when = None
    if how == "deprecate":
        moment = now().astimezone(dt.timezone.utc)
        when = (moment + dt.timedelta(seconds=59)).replace(second=0, microsecond=0)
    done = []
    try:
        for r in results:
            if how == "deprecate":
                for region, image in r.images.items():
                    ami.deprecate(clients.ec2(region), image["ImageId"], when)
                done.append(dataclasses.replace(r, deprecate_at=when))
                continue
            for region, image in r.images.items():
                ec2_sharing.take_back(clients.ec2(region), image["ImageId"], ami.snapshot_ids(image))
                name = r.pointers.get(region)
                if name and ec2_sharing.drop_pointer(clients.ssm(region), name, image["ImageId"]):
                    log.info("%s: deleted %s in %s", r.job.nvra, name, region)
            done.append(dataclasses.replace(
                r, public=False, pointers={},
                visibility={region: ec2_sharing.PRIVATE for region in r.images}))
    except AWS_ERRORS as exc:
        raise describe_failure(f"taking back the AMIs ({how})", exc) from None
    # "private": the pointers are gone, so their names are dropped, not merged
    path = write_results(topdir, results_document(plan, cfg, done, recorded.get("skipped", {})),
                         replace=("ssm",) if how == "private" else ())
    for r in done:
        out(f"{r.job.nvra}: {how} in {', '.join(r.images)}")
    return PublishReport(plan.compose_id, tuple(done), recorded.get("skipped", {}), (), path)


def _recorded(topdir: Path, config: "Config", session: boto3.session.Session | None
              ) -> tuple[Ec2Publisher, DropPlan, dict[str, Any], list[ImageResult]]:
    """The AMIs ec2.json records for the drop, looked up again in every region."""
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
            when = info.get("deprecate_at")
            results.append(ImageResult(
                jobs[nvra], info["volume_size_gib"], images, None, public=bool(info.get("public")),
                deprecate_at=dt.datetime.fromisoformat(when) if when else None,
                visibility=dict(info.get("visibility", {})), pointers=dict(info.get("ssm", {}))))
    except AWS_ERRORS as exc:
        raise describe_failure("looking up the AMIs", exc) from None
    regions = tuple(dict.fromkeys((cfg.base_region, *(r for res in results for r in res.images))))
    return Ec2Publisher(clients, cfg, plan, regions), plan, recorded, results


def _share_and_announce(publisher: Ec2Publisher, plan: DropPlan, results: list[ImageResult],
                        skipped: dict[str, str], topdir: Path,
                        out: Callable[[str], None], send: bool,
                        public: bool | None = None) -> PublishReport:
    cfg = publisher.cfg
    share_public = is_public(plan, cfg, public)
    try:
        results = [publisher.finish(r, share_public) for r in results]
    except AWS_ERRORS as exc:
        raise describe_failure("sharing the AMIs", exc) from None

    blocked = publisher.blocked()
    path = write_results(topdir, results_document(plan, cfg, results, skipped, blocked))
    bodies = [
        messages.published_body(arch=r.job.arch, compose_id=plan.compose_id, image_name=r.job.nvra,
                                regions=r.announced, release=plan.fedora_version,
                                subvariant=r.job.subvariant)
        for r in results if r.announced
    ]
    messages.emit(bodies, send, out)
    return PublishReport(plan.compose_id, tuple(results), skipped, tuple(bodies), path, blocked)
