"""Pure builders of the Koji hub calls a drop makes: one `buildImageOz` per image type.

No I/O and no session here, so `rel-eng plan --builder koji` shows exactly what a compose sends
and tests assert the calls directly. The opts keys are the ones koji's own CLI sends
(koji_cli.commands._build_image_oz), each only when set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import koji

from rel_eng.errors import InputError
from rel_eng.plan import DropPlan, ImageJob

if TYPE_CHECKING:
    from rel_eng.config import Config, Release
    from rel_eng.config.koji import KojiConfig

UPLOAD_PREFIX = "cli-image"  # where koji's CLI stages a local kickstart in the hub's work dir
UNIQUE_PLACEHOLDER = "<unique>"  # stands for the per-submission dir in `rel-eng plan` output


@dataclass(frozen=True)
class ImageCall:
    """One buildImageOz call and the jobs (one per arch) it builds."""

    image_type: str
    name: str
    version: str
    arches: tuple[str, ...]  # koji's spelling: koji.canonArch(job.arch), i686 -> i386
    target: str
    inst_tree: str  # `$arch` left in: kojid substitutes each child's arch
    opts: dict = field(hash=False)
    jobs: dict = field(hash=False)  # koji arch -> ImageJob

    @property
    def args(self) -> list:
        return [self.name, self.version, list(self.arches), self.target, self.inst_tree]

    def as_dict(self) -> dict:
        return {"method": "buildImageOz", "args": self.args, "opts": self.opts}


def koji_arch(job: ImageJob) -> str:
    """The arch koji's CLI sends for this job (it canonicalises: i686 -> i386).

    kojid writes it verbatim into the Oz TDL, and Oz accepts only i386/x86_64, so sending
    i686 would fail every i686 build; it also substitutes it for `$arch` in URLs, which
    must therefore be the arch the install tree spells (the planner's oz_arch).
    """
    arch = koji.canonArch(job.arch)
    if arch != job.oz_arch:
        raise InputError(f"image {job.key}: koji builds arch {job.arch} as '{arch}' but the "
                         f"install tree spells it '{job.oz_arch}'",
                         hint="use an arch whose koji and Oz names agree")
    return arch


def upload_dir(unique: str) -> str:
    """Server dir for one submission's kickstart, as koji_cli.lib.unique_path('cli-image')."""
    return f"{UPLOAD_PREFIX}/{unique}"


def kickstart_opt(upload_name: str, unique: str) -> str:
    """opts['kickstart'] for an uploaded kickstart: relative to the hub's topdir."""
    return f"work/{upload_dir(unique)}/{upload_name}"


def group_jobs(jobs: Iterable[ImageJob]) -> dict[str, list[ImageJob]]:
    """Jobs by image type, in first-seen order; each type must be one consistent koji build."""
    groups: dict[str, list[ImageJob]] = {}
    for job in jobs:
        groups.setdefault(job.image_type, []).append(job)
    for itype, members in groups.items():
        first = members[0]
        for job in members[1:]:
            for attr in ("name", "version", "release", "kickstart", "ksversion",
                         "fedora_version", "disk_size_gib"):
                if getattr(job, attr) != getattr(first, attr):
                    raise InputError(
                        f"images {first.key} and {job.key} differ in {attr} "
                        f"({getattr(first, attr)!r} vs {getattr(job, attr)!r})",
                        hint="one koji image build covers every arch of an image type")
        arches = [j.arch for j in members]
        if len(set(arches)) != len(arches):
            raise InputError(f"image type {itype} lists an arch twice: {', '.join(arches)}")
    return groups


def release_for(jobs: list[ImageJob], config: "Config") -> "Release":
    """The release whose ($arch) install tree and repos resolve to exactly these jobs' URLs.

    Jobs carry resolved URLs; koji wants the `$arch` templates (one call serves every arch),
    so the release definition they came from is found by what it resolves to.
    """
    matches = [
        r for r in config.releases
        if r.fedora_version == jobs[0].fedora_version and all(
            r.install_tree.replace("$arch", j.oz_arch) == j.install_tree
            and tuple(u.replace("$arch", j.oz_arch) for u in r.repos) == tuple(j.repos)
            for j in jobs)
    ]
    targets = {r.koji_target for r in matches}
    if not matches:
        raise InputError(f"image {jobs[0].key}: no release in {config.releases_file} has install "
                         f"tree {jobs[0].install_tree}",
                         hint="plan the drop from the same config the compose uses")
    if len(targets) > 1:
        keys = ", ".join(r.key for r in matches)
        raise InputError(f"image {jobs[0].key}: releases {keys} share install tree and repos but "
                         "not koji_target", hint="give each release its own install tree, or "
                                                 "set [koji] target")
    return matches[0]


def check_nvr_part(what: str, value: str, job: ImageJob) -> None:
    # kojid raises ApplianceError for a hyphen in version or release, after queueing the task.
    if not value or "-" in value:
        raise InputError(f"image {job.key}: koji image {what} '{value}' must be non-empty "
                         "and must not contain '-'")


def check_ksversion(ksversion: str, job: ImageJob) -> None:
    """kojid re-parses the kickstart with makeVersion(ksversion); DEVEL is rejected there."""
    from pykickstart.errors import KickstartVersionError
    from pykickstart.version import makeVersion

    try:
        makeVersion(ksversion)  # raises for DEVEL and for versions it does not know
    except KickstartVersionError:
        raise InputError(f"image {job.key}: ksversion '{ksversion}' is not a released "
                         "pykickstart version (kojid rejects DEVEL)",
                         hint="set the release's fedora_version, e.g. 19 -> F19") from None


def image_calls(jobs: list[ImageJob], config: "Config", *, weekly: bool,
                kickstarts: dict[str, str], release: "Release | None" = None) -> list[ImageCall]:
    """The buildImageOz calls for `jobs`, one per image type.

    `kickstarts` maps image type -> opts['kickstart'] (the uploaded path, or the kickstart's
    path inside the SCM repo when [koji] ksurl is set).
    """
    kcfg: KojiConfig = config.koji
    calls = []
    for itype, members in group_jobs(jobs).items():
        first = members[0]
        rel = release or release_for(members, config)
        target = kcfg.target or rel.koji_target
        if not target:
            raise InputError(f"release '{rel.key}' has no koji_target (in {config.releases_file})",
                             hint="set koji_target for it, or [koji] target in the config")
        check_nvr_part("version", first.version, first)
        check_nvr_part("release", first.release, first)
        check_ksversion(first.ksversion, first)
        by_arch = {koji_arch(j): j for j in members}
        opts: dict = {}
        if kcfg.ksurl:
            opts["ksurl"] = kcfg.ksurl
        opts["ksversion"] = first.ksversion
        opts["kickstart"] = kickstarts[itype]
        if weekly and kcfg.scratch_weeklies:
            opts["scratch"] = True
        if rel.repos:
            opts["repo"] = list(rel.repos)
        opts["release"] = first.release
        opts["distro"] = f"Fedora-{first.fedora_version}"
        opts["format"] = list(kcfg.formats)
        opts["disk_size"] = first.disk_size_gib
        if kcfg.factory_parameter:
            opts["factory_parameter"] = [list(p) for p in kcfg.factory_parameter]
        optional = [a for a, j in by_arch.items() if j.optional]
        if optional:
            opts["optional_arches"] = optional
        calls.append(ImageCall(
            image_type=itype, name=first.name, version=first.version,
            arches=tuple(by_arch), target=target, inst_tree=rel.install_tree,
            opts=opts, jobs=by_arch,
        ))
    return calls


def planned_kickstarts(jobs: Iterable[ImageJob], config: "Config",
                       unique: str = UNIQUE_PLACEHOLDER) -> dict[str, str]:
    """opts['kickstart'] per image type: SCM path with ksurl, else the upload path."""
    out = {}
    for job in jobs:
        out.setdefault(job.image_type, job.kickstart if config.koji.ksurl
                       else kickstart_opt(job.kickstart, unique))
    return out


def planned_calls(plan: DropPlan, config: "Config") -> list[dict]:
    """The exact hub calls a compose of `plan` makes, for `rel-eng plan --builder koji`.

    The upload dir is random per submission, so it shows as `<unique>`.
    """
    release = config.release(plan.release_key)
    calls = image_calls(list(plan.images), config, weekly=plan.weekly,
                        kickstarts=planned_kickstarts(plan.images, config), release=release)
    return [c.as_dict() for c in calls]
