"""Message bodies built from a compose, and their stable ids. Pure: no store, no broker.

A message's id is a uuid5 of the compose id, the topic and what the message announces (the n-th
status change, an image and its digests, a drop), so the same announcement always has the same
id: a resend after a crash is recognisable, and a catch-up re-derivation inserts nothing new.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rel_eng.errors import VerifyFailed

# Topics, as the schema package (rel_eng_messages) declares them; kept here as plain strings so
# the compose path does not import fedora-messaging.
STATUS = "rel_eng.compose.status.change"
IMAGE_BUILT = "rel_eng.image.built.v1"
BOOT_TEST = "rel_eng.image.boot_test.v1"
AMI_PUBLISHED = "fedora_image_uploader.published.v1.aws"
DROP_STAGED = "rel_eng.drop.staged.v1"
RELEASE_PUBLISHED = "rel_eng.release.published.v1"
TOPICS = (STATUS, IMAGE_BUILT, BOOT_TEST, AMI_PUBLISHED, DROP_STAGED, RELEASE_PUBLISHED)

NAMESPACE = uuid.UUID("6f1c3c1e-5d0b-5c1e-9a53-2f3b1f0f7a11")  # rel-eng's message ids
RELEASE_NAME = "Fedora"


@dataclass(frozen=True)
class Outgoing:
    """One message for the outbox."""

    message_id: str
    topic: str
    compose_id: str
    body: dict[str, Any]


def ami_topic(body: dict[str, Any]) -> str:
    """fedora-image-uploader's topic for one image: the base topic and
    `.<subvariant>.<release>.<arch>`, so a consumer may bind to one subvariant, release or arch
    (e.g. fedora_image_uploader.published.v1.aws.Cloud_Base.41.x86_64)."""
    return ".".join([AMI_PUBLISHED, *(str(body.get(k, "")) or "unknown"
                                      for k in ("subvariant", "release", "architecture"))])


def wire_topic(topic: str, body: dict[str, Any]) -> str:
    """The topic a message is sent with. The outbox records the base topic (its ids and
    `--topic` filters stay stable); the AMI message gets its per-image suffix here."""
    return ami_topic(body) if topic == AMI_PUBLISHED else topic


def schema_topic(topic: str) -> str:
    """The base topic that names a message's schema class, for a topic as sent."""
    return AMI_PUBLISHED if topic.startswith(AMI_PUBLISHED + ".") else topic


def message_id(compose_id: str, topic: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "\n".join((compose_id, topic, key))))


def outgoing(compose_id: str, topic: str, key: str, body: dict[str, Any]) -> Outgoing:
    return Outgoing(message_id(compose_id, topic, key), topic, compose_id, body)


def status_change(c, status: str, reason: str, nth: int, location_url: str = "") -> Outgoing:
    """pungi's compose.status.change body; `nth`: how many status changes came before."""
    p = c.plan
    compose_dir = Path(c.topdir).resolve() / "compose"
    location = (f"{location_url.rstrip('/')}/{p.compose_id}/compose" if location_url
                else str(compose_dir))
    body = {
        "compose_id": p.compose_id, "status": status, "location": location,
        "compose_date": p.date, "compose_type": p.compose_type, "compose_respin": p.respin,
        "compose_label": p.label, "release_short": p.short, "release_name": RELEASE_NAME,
        "release_version": p.release_version, "release_type": "ga", "release_is_layered": False,
        "reason": reason,
    }
    return outgoing(p.compose_id, STATUS, f"{nth}:{status}", body)


def image_built(c, job_key: str, deliverables: list, build: dict) -> Outgoing | None:
    """The image is built once every output of its job is recorded; None until then."""
    job = c.job(job_key)
    mine = sorted((a for a in deliverables if a.job_key == job_key and a.sha256),
                  key=lambda a: a.path)
    if len(mine) < len(job.outputs):
        return None
    data = build.get("data") or {}
    task_ids = [str(build["external_id"])] if build.get("external_id") else []
    body = {
        "compose_id": c.plan.compose_id, "nvra": job.nvra, "arch": job.arch,
        "subvariant": job.subvariant, "image_type": job.image_type,
        "builder": str(build.get("builder") or c.plan.builder), "task_ids": task_ids,
        "task_url": data.get("task_url") or None,
        "bootable": all(a.bootable for a in mine),
        "artifacts": [{"path": a.path, "type": a.kind, "format": _format(a.kind),
                       "size": a.size, "sha256": a.sha256} for a in mine],
    }
    key = f"{job_key}:" + ",".join(a.sha256 for a in mine)
    return outgoing(c.plan.compose_id, IMAGE_BUILT, key, body)


# The boot gate's manifest states, as the schema's verdicts. "skipped" (not bootable) is never
# a pass.
BOOT_VERDICTS = {"done": "passed", "failed": "failed", "skipped": "skipped"}
DISK_KINDS = ("qcow2", "raw-disk")


def boot_test(c, job_key: str, step: dict, verdict: dict | None, artifacts: list) -> Outgoing | None:
    """The boot gate's verdict on one image, from its manifest step `boottest:<job key>` and
    the verdict the gate saved (its checks); None while the step has no verdict yet."""
    word = BOOT_VERDICTS.get(step.get("state", ""))
    if word is None:
        return None
    job = c.job(job_key)
    verdict = verdict or {}
    reason = "" if word == "passed" else str(step.get("reason") or verdict.get("reason") or "")
    body: dict[str, Any] = {
        "compose_id": c.plan.compose_id, "nvra": job.nvra, "arch": job.arch,
        "subvariant": job.subvariant, "verdict": word, "reason": reason,
        "checks": [{"name": str(ch.get("name")), "passed": ch.get("status") == "pass",
                    "detail": str(ch.get("message") or ch.get("evidence") or "")}
                   for ch in (verdict.get("checks") or [])
                   # a check skipped for lack of input or platform neither passed nor failed
                   if isinstance(ch, dict) and ch.get("name") and ch.get("status") != "skipped"]
        if word != "skipped" else [],
    }
    plat = verdict.get("platform")
    if isinstance(plat, dict) and plat.get("label"):
        body["platform"] = str(plat["label"])
    disk = next((a for kind in DISK_KINDS for a in artifacts
                 if a.job_key == job_key and a.kind == kind), None)
    if disk is not None:
        body["path"] = disk.path
        if disk.sha256:
            body["sha256"] = disk.sha256
    # The step digest keys what was booted (disk digest, settings); the verdict word what it
    # said: a rerun that reuses the verdict sends nothing new, a new boot of a new disk does.
    key = f"{job_key}:{step.get('digest', '')}:{word}"
    return outgoing(c.plan.compose_id, BOOT_TEST, key, body)


def _format(kind: str) -> str:
    return {"qcow2": "qcow2", "raw-xz": "tar.xz", "raw.tar.xz": "tar.xz"}.get(kind, kind)


def amis_published(c, ec2: dict) -> list[Outgoing]:
    """fedora-image-uploader's AWS body per image in compose/metadata/ec2.json."""
    out = []
    for nvra, info in sorted(ec2.get("images", {}).items()):
        hidden = {r for r, v in info.get("visibility", {}).items() if v == "blocked"}
        regions = {r: (a.get("ami_id", "") if isinstance(a, dict) else str(a))
                   for r, a in sorted(info.get("regions", {}).items()) if r not in hidden}
        if not regions:
            continue
        body = {"architecture": info.get("arch") or info.get("architecture", ""),
                "compose_id": c.plan.compose_id, "image_name": nvra, "regions": regions,
                "release": int(c.plan.fedora_version), "subvariant": info.get("subvariant", "")}
        out.append(outgoing(c.plan.compose_id, AMI_PUBLISHED,
                            f"{nvra}:{json.dumps(regions, sort_keys=True)}", body))
    return out


class DropMismatch(VerifyFailed):
    """A staged file differs from what the compose recorded: the drop is not announced."""


def drop_staged(c, drop: Path, expected: dict[str, str]) -> Outgoing:
    """Every file of the staged drop with its size and sha256, read back from the drop itself
    and checked against `expected` (path in the drop -> sha256 the compose recorded)."""
    files = []
    for p in sorted(q for q in drop.rglob("*") if q.is_file()):
        digest = hashlib.sha256()
        with open(p, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
        rel = str(p.relative_to(drop))
        if expected.get(rel, digest.hexdigest()) != digest.hexdigest():
            raise DropMismatch(f"{p}: sha256 {digest.hexdigest()} is not the recorded "
                               f"{expected[rel]}")
        files.append({"path": rel, "size": p.stat().st_size, "sha256": digest.hexdigest()})
    missing = sorted(set(expected) - {f["path"] for f in files})
    if missing:
        raise DropMismatch(f"{drop}: missing {', '.join(missing)}")
    checksums = sorted(c.plan.checksum_name(arch) for arch in c.plan.arches()
                       if any(f["path"].endswith("/" + c.plan.checksum_name(arch)) for f in files))
    body = {"compose_id": c.plan.compose_id, "label": c.plan.label,
            "release_version": c.plan.release_version, "weekly": c.plan.weekly,
            "mirror_path": c.plan.mirror_path, "files": files, "checksum_files": checksums}
    return outgoing(c.plan.compose_id, DROP_STAGED, c.plan.mirror_path, body)


def release_published(action: str, record: dict, mirror_path: str, files: dict,
                      amis: dict) -> Outgoing:
    """A candidate released (or opened, replaced, withdrawn): what a mirror sync needs (the
    tree's path, each file with size and sha256) and the AMIs per region. `files`: the tree's
    MANIFEST entries {path: (size, sha256)}; the id keys the act and what the tree holds."""
    body = {
        "action": action, "release": record["release"], "milestone": record["milestone"],
        "compose_id": record["compose_id"], "label": record["label"],
        "mirror_path": mirror_path, "released_by": record["released_by"],
        "files": [{"path": p, "size": size, "sha256": sha}
                  for p, (size, sha) in sorted(files.items())],
        "amis": amis,
    }
    tree = hashlib.sha256(json.dumps(body["files"], sort_keys=True).encode()).hexdigest()
    return outgoing(record["compose_id"], RELEASE_PUBLISHED,
                    f"{action}:{record['release']}:{record['milestone']}:{tree}", body)
