"""index.html at the top of every drop: what each image is, its files with size, sha256 and a
link, how to verify them, the AMIs with a launch link per region, the login user, and the
boot-test verdicts once the compose has them. Plain HTML, no JavaScript.

The page is rendered into <topdir>/work/web/ and staged like the READMEs; `rel-eng ec2 publish`
rewrites it (and compose/metadata/web.json, which lists it) when it adds AMIs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import quote

from rel_eng.config.ami_attributes import describe_recorded
from rel_eng.atomic import atomic_write
from rel_eng.manifest import Artifact
from rel_eng.plan import DropPlan
from rel_eng.web.templating import render

PAGE = "index.html"
DROP_FILES = (PAGE,)  # staged at the drop's top, from <topdir>/work/web/
LISTING = "web.json"  # compose/metadata/web.json: the pages of this drop and of its stream
STREAM_FILES = ("index.html", "drops.atom", "releases.json")  # beside a weekly stream's drops
FORMATS = {"qcow2": "qcow2 disk image (OpenStack, Eucalyptus, KVM)",
           "raw.tar.xz": "raw disk in an xz-compressed tar (sparse member; EC2, dd to a disk)",
           "raw.xz": "xz-compressed raw disk (dd to a disk)"}
BOOT_LOG_KEYS = ("console_log", "log", "console")


def href(rel: str) -> str:
    """A relative link to a file of the drop: every path segment percent-encoded."""
    return quote(rel, safe="/")


def launch_url(region: str, ami_id: str) -> str:
    return ("https://console.aws.amazon.com/ec2/home?region=" + quote(region, safe="")
            + "#LaunchInstances:ami=" + quote(ami_id, safe=""))


def ami_rows(amis: dict | None, nvra: str) -> list[dict]:
    """Region, AMI id and launch link of one image, from compose/metadata/ec2.json."""
    info = ((amis or {}).get("images") or {}).get(nvra) or {}
    rows = []
    for region, ami in sorted((info.get("regions") or {}).items()):
        ami_id = ami.get("ami_id", "") if isinstance(ami, dict) else str(ami)
        if ami_id:
            rows.append({"region": region, "ami_id": ami_id, "launch": launch_url(region, ami_id)})
    return rows


def boot_verdicts(boot_tests, job_key: str, nvra: str, exists) -> list[dict]:
    """The entries of rel-eng.json's `boot_tests` (when a boot gate wrote one) for one image.
    Accepts a mapping keyed by image key or NVRA, or a list of records naming the image; a log
    is linked only when it is a file of the drop (`exists(rel)`)."""
    if isinstance(boot_tests, dict):
        records = [{"image": k, **(v if isinstance(v, dict) else {"verdict": v})}
                   for k, v in boot_tests.items()]
    elif isinstance(boot_tests, list):
        records = [r for r in boot_tests if isinstance(r, dict)]
    else:
        return []
    out = []
    for r in records:
        name = str(r.get("image") or r.get("job_key") or r.get("nvra") or "")
        if name not in (job_key, nvra):
            continue
        verdict = str(r.get("verdict") or r.get("result") or r.get("state") or r.get("status") or "unknown")
        log = next((str(r[k]) for k in BOOT_LOG_KEYS if r.get(k)), "")
        detail = str(r.get("reason") or r.get("detail") or "")
        if verdict == "skipped" and detail.startswith("skipped: "):
            detail = detail[len("skipped: "):]  # the gate's "skipped: not bootable"
        plat = r.get("platform")
        out.append({"verdict": verdict, "detail": detail,
                    "platform": str(plat.get("label") or plat.get("name") or "") if isinstance(plat, dict) else "",
                    "log": log, "log_href": href(log) if log and exists(log) else ""})
    return out


def drop_context(plan: DropPlan, deliverables: list[Artifact], *, status: str, signed: bool,
                 default_user: str, bootable: bool, failed: dict[str, str], amis: dict | None,
                 boot_tests=None, metadata_files: tuple[str, ...] = (), exists=lambda rel: False) -> dict:
    """Everything the page shows, as plain data (pure: the caller reads the files)."""
    by_job: dict[str, list[Artifact]] = {}
    for a in deliverables:
        by_job.setdefault(a.job_key, []).append(a)
    arches = []
    for arch in plan.arches():
        images = []
        for job in (j for j in plan.images if j.arch == arch):
            files = [{"name": Path(a.path).name, "href": href(str(Path(a.path).relative_to("compose"))),
                      "size": a.size, "sha256": a.sha256, "format": FORMATS.get(a.kind, a.kind)}
                     for a in sorted(by_job.get(job.key, []), key=lambda a: a.path)]
            images.append({"key": job.key, "nvra": job.nvra, "name": job.name,
                           "description": job.description, "subvariant": job.subvariant,
                           "optional": job.optional, "ec2": job.image_type == "ec2",
                           "failed": failed.get(job.key, ""), "files": files,
                           "amis": ami_rows(amis, job.nvra),
                           "ami_attributes": describe_recorded(
                               ((amis or {}).get("images") or {}).get(job.nvra) or {}),
                           "boot": boot_verdicts(boot_tests, job.key, job.nvra, exists)})
        checksum = plan.checksum_name(arch)
        arches.append({"arch": arch, "images": images, "checksum": checksum,
                       "checksum_href": href(f"{plan.variant}/{arch}/images/{checksum}"),
                       "has_files": any(i["files"] for i in images)})
    return {"plan": plan, "title": f"Fedora {plan.release_version} Cloud images "
                                   f"({plan.label or 'weekly'})",
            "status": status, "signed": signed, "default_user": default_user,
            "bootable": bootable, "arches": arches, "has_boot_tests": boot_tests is not None,
            "metadata": [{"name": n, "href": href(f"metadata/{n}")} for n in metadata_files]}


def render_drop_page(context: dict) -> str:
    return render("drop.html", **context)


def write_drop_pages(c, status: str) -> list[Path]:
    """Render the drop's pages into <topdir>/work/web/ and list them in compose/metadata/web.json."""
    from rel_eng.metadata import SUMMARY, read_json

    summary = read_json(c.metadir / SUMMARY) or {}
    deliverables = c.manifest.artifacts(intent="deliverable")
    names = sorted(p.name for p in c.metadir.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.name != LISTING) \
        if c.metadir.is_dir() else []
    staged = {f"metadata/{n}" for n in names}
    for a in c.manifest.artifacts():
        staged.add(str(Path(a.path).relative_to("compose")) if a.path.startswith("compose/") else a.path)
    context = drop_context(
        c.plan, deliverables, status=status, signed=c.config.signing.enabled,
        default_user=c.config.default_user,
        bootable=bool(summary.get("bootable", all(a.bootable for a in deliverables) and deliverables)),
        failed=summary.get("failed_images") or {}, amis=read_json(c.metadir / "ec2.json"),
        boot_tests=(summary.get("boot_test") or {}).get("images"), metadata_files=tuple(names + [LISTING]),
        exists=lambda rel: rel in staged)
    out = c.topdir / "work" / "web"
    page = out / PAGE
    atomic_write(page, render_drop_page(context))
    listing = {"pages": {PAGE: _file_record(page)},
               "stream": [f"../{n}" for n in STREAM_FILES] if c.plan.weekly else []}
    atomic_write(c.metadir / LISTING, json.dumps(listing, indent=2, sort_keys=True) + "\n")
    return [page]


def _file_record(path: Path) -> dict:
    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
