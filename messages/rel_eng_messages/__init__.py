"""fedora-messaging schemas of the messages rel-eng sends.

One class per topic. The topic prefix (e.g. `org.fedoraproject.prod`) is added by
fedora-messaging from its own `topic_prefix` setting, never here.
"""

from __future__ import annotations

from fedora_messaging import message

SCHEMA_URL = "http://fedoraproject.org/message-schema/rel-eng"
APP_NAME = "rel-eng"
STATUSES = ("STARTED", "FINISHED", "FINISHED_INCOMPLETE", "DOOMED", "TERMINATED")

_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_NONEMPTY = {"type": "string", "minLength": 1}


def _schema(topic: str, description: str, properties: dict, required: list[str]) -> dict:
    return {
        "id": f"{SCHEMA_URL}/v1/{topic}",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "description": description,
        "type": "object",
        "properties": properties,
        "required": required,
    }


class _RelEngMessage(message.Message):
    """Common properties; never sent itself."""

    @property
    def app_name(self) -> str:
        return APP_NAME

    @property
    def agent_name(self) -> str | None:
        # Composes are started by the scheduler or a release engineer; the body names whoever
        # asked when it is known.
        return self.body.get("agent") or None

    @property
    def usernames(self) -> list[str]:
        return [self.agent_name] if self.agent_name else []

    @property
    def packages(self) -> list[str]:
        return []  # images, not RPM packages

    @property
    def compose_id(self) -> str:
        return self.body["compose_id"]


class ComposeStatusChangeV1(_RelEngMessage):
    """A compose changed status. The body has the fields of pungi's compose.status.change."""

    topic = "rel_eng.compose.status.change"
    body_schema = _schema(topic, "A rel-eng compose changed status (pungi-compatible body)", {
        "compose_id": _NONEMPTY,
        "status": {"type": "string", "enum": list(STATUSES)},
        "location": {"type": "string", "description": "the compose's compose/ directory or URL"},
        "compose_date": {"type": "string", "pattern": "^[0-9]{8}$"},
        "compose_type": {"type": "string", "enum": ["production", "nightly", "test", "ci"]},
        "compose_respin": {"type": "integer", "minimum": 0},
        "compose_label": {"type": ["string", "null"]},
        "release_short": _NONEMPTY,
        "release_name": {"type": "string"},
        "release_version": _NONEMPTY,
        "release_type": {"type": "string"},
        "release_is_layered": {"type": "boolean"},
        "reason": {"type": "string", "description": "why a compose failed, or empty"},
    }, ["compose_id", "status", "location", "compose_date", "compose_type", "compose_respin",
        "compose_label", "release_short", "release_version"])

    @property
    def summary(self) -> str:
        return f"rel-eng compose {self.compose_id} is {self.body['status']}"

    def __str__(self) -> str:
        lines = [f"Compose {self.compose_id} changed status to {self.body['status']}.", "",
                 f"\tRelease: {self.body['release_short']} {self.body['release_version']}",
                 f"\tLabel: {self.body.get('compose_label') or '(none)'}",
                 f"\tLocation: {self.body['location']}"]
        if self.body.get("reason"):
            lines.append(f"\tReason: {self.body['reason']}")
        return "\n".join(lines) + "\n"


_ARTIFACT = {
    "type": "object",
    "properties": {
        "path": _NONEMPTY, "type": _NONEMPTY, "format": _NONEMPTY,
        "size": {"type": "integer", "minimum": 0}, "sha256": _SHA256,
    },
    "required": ["path", "type", "format", "size", "sha256"],
}


class ImageBuiltV1(_RelEngMessage):
    """An image was built and post-processed: its deliverables exist with their checksums."""

    topic = "rel_eng.image.built.v1"
    body_schema = _schema(topic, "An image of a rel-eng compose was built", {
        "compose_id": _NONEMPTY,
        "nvra": _NONEMPTY,
        "arch": _NONEMPTY,
        "subvariant": _NONEMPTY,
        "image_type": _NONEMPTY,
        "builder": _NONEMPTY,
        "task_ids": {"type": "array", "items": {"type": "string"}},
        "task_url": {"type": ["string", "null"], "description": "Koji web URL of the task"},
        "bootable": {"type": "boolean"},
        "artifacts": {"type": "array", "items": _ARTIFACT, "minItems": 1},
    }, ["compose_id", "nvra", "arch", "subvariant", "builder", "task_ids", "task_url", "artifacts"])

    @property
    def summary(self) -> str:
        return f"rel-eng built {self.body['nvra']} in compose {self.compose_id}"

    def __str__(self) -> str:
        lines = [f"Image {self.body['nvra']} was built by {self.body['builder']} "
                 f"for compose {self.compose_id}.", ""]
        if self.body.get("task_url"):
            lines.append(f"\tTask: {self.body['task_url']}")
        for a in self.body["artifacts"]:
            lines.append(f"\t{a['path']} ({a['size']} bytes) sha256 {a['sha256']}")
        return "\n".join(lines) + "\n"


class BootTestV1(_RelEngMessage):
    """A boot test's verdict on one image."""

    topic = "rel_eng.image.boot_test.v1"
    body_schema = _schema(topic, "A boot test verdict on an image of a rel-eng compose", {
        "compose_id": _NONEMPTY,
        "nvra": _NONEMPTY,
        "arch": _NONEMPTY,
        "subvariant": _NONEMPTY,
        "path": _NONEMPTY,
        "sha256": _SHA256,
        "verdict": {"type": "string", "enum": ["passed", "failed", "skipped"]},
        "reason": {"type": "string"},
        "platform": {"type": "string"},  # how it was booted: "ec2 (IMDSv2)", "nocloud", ...
        "checks": {"type": "array", "items": {
            "type": "object",
            "properties": {"name": _NONEMPTY, "passed": {"type": "boolean"},
                           "detail": {"type": "string"}},
            "required": ["name", "passed"]}},
    }, ["compose_id", "nvra", "arch", "subvariant", "verdict"])

    @property
    def summary(self) -> str:
        return f"rel-eng boot test of {self.body['nvra']}: {self.body['verdict']}"

    def __str__(self) -> str:
        plat = f", booted as {self.body['platform']}" if self.body.get("platform") else ""
        lines = [f"Boot test of {self.body['nvra']} ({self.compose_id}){plat}: {self.body['verdict']}", ""]
        for check in self.body.get("checks", []):
            lines.append(f"\t{'ok  ' if check['passed'] else 'FAIL'} {check['name']}")
        if self.body.get("reason"):
            lines.append(f"\tReason: {self.body['reason']}")
        return "\n".join(lines) + "\n"


class AmiPublishedV1(_RelEngMessage):
    """An image's AMIs are published: fedora-image-uploader's AWS message, same topic and body."""

    topic = "fedora_image_uploader.published.v1.aws"
    body_schema = _schema(topic, "AMIs of an image published (fedora-image-uploader's body)", {
        "architecture": _NONEMPTY,
        "compose_id": _NONEMPTY,
        "image_name": _NONEMPTY,
        "regions": {"type": "object", "additionalProperties": {"type": "string"}},
        "release": {"type": "integer"},
        "subvariant": _NONEMPTY,
    }, ["architecture", "compose_id", "image_name", "regions", "release", "subvariant"])

    @property
    def summary(self) -> str:
        return (f"rel-eng published AWS images from compose {self.compose_id} as "
                f"{self.body['image_name']} in {len(self.body['regions'])} regions")

    def __str__(self) -> str:
        regions = ", ".join(f"{r} as {ami}" for r, ami in sorted(self.body["regions"].items()))
        return ("A new image has been published to Amazon Web Services:\n\n"
                f"\tArchitecture: {self.body['architecture']}\n"
                f"\tCompose ID: {self.compose_id}\n"
                f"\tImage Name: {self.body['image_name']}\n"
                f"\tRegions: {regions}\n")


class DropStagedV1(_RelEngMessage):
    """A drop is staged in the mirror tree and verified: the mirror publishing step may sync it."""

    topic = "rel_eng.drop.staged.v1"
    body_schema = _schema(topic, "A rel-eng drop was staged into the mirror tree and verified", {
        "compose_id": _NONEMPTY,
        "label": {"type": ["string", "null"]},
        "release_version": _NONEMPTY,
        "weekly": {"type": "boolean"},
        "mirror_path": {"type": "string", "minLength": 1, "pattern": "^[^/]"},
        "files": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "properties": {"path": _NONEMPTY, "size": {"type": "integer", "minimum": 0},
                           "sha256": _SHA256},
            "required": ["path", "size", "sha256"]}},
        "checksum_files": {"type": "array", "items": _NONEMPTY},
    }, ["compose_id", "label", "mirror_path", "files", "checksum_files"])

    @property
    def summary(self) -> str:
        return f"rel-eng staged {self.compose_id} at {self.body['mirror_path']}"

    def __str__(self) -> str:
        lines = [f"Drop {self.compose_id} ({self.body.get('label') or 'weekly'}) is staged at "
                 f"{self.body['mirror_path']}, {len(self.body['files'])} files.", ""]
        lines += [f"\t{f['path']} ({f['size']} bytes)" for f in self.body["files"]]
        return "\n".join(lines) + "\n"


class ReleasePublishedV1(_RelEngMessage):
    """A milestone candidate is released (or a release opened, replaced, withdrawn): the mirror
    publishing step syncs its tree as it syncs a staged drop."""

    topic = "rel_eng.release.published.v1"
    body_schema = _schema(topic, "A rel-eng milestone candidate was released into the release tree", {
        "action": {"type": "string", "enum": ["published", "opened", "replaced", "withdrawn"]},
        "release": _NONEMPTY,
        "milestone": {"type": "string", "enum": ["Alpha", "Beta", "Final"]},
        "compose_id": _NONEMPTY,
        "label": _NONEMPTY,
        "released_by": _NONEMPTY,
        "mirror_path": {"type": "string", "minLength": 1, "pattern": "^[^/]"},
        "files": {"type": "array", "items": {
            "type": "object",
            "properties": {"path": _NONEMPTY, "size": {"type": "integer", "minimum": 0},
                           "sha256": _SHA256},
            "required": ["path", "size", "sha256"]}},
        "amis": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": _NONEMPTY}},
    }, ["action", "release", "milestone", "compose_id", "label", "mirror_path", "files", "amis"])

    @property
    def agent_name(self) -> str | None:
        return self.body.get("released_by") or None

    @property
    def summary(self) -> str:
        return (f"{self.body['released_by']} {self.body['action']} Fedora {self.body['release']} "
                f"{self.body['milestone']} from {self.body['label']} at {self.body['mirror_path']}")

    def __str__(self) -> str:
        lines = [f"Fedora {self.body['release']} {self.body['milestone']}: {self.body['action']} "
                 f"from candidate {self.body['label']} ({self.compose_id}) at "
                 f"{self.body['mirror_path']}, {len(self.body['files'])} files.", ""]
        lines += [f"\t{f['path']} ({f['size']} bytes)" for f in self.body["files"]]
        return "\n".join(lines) + "\n"


CLASSES = (ComposeStatusChangeV1, ImageBuiltV1, BootTestV1, AmiPublishedV1, DropStagedV1,
           ReleasePublishedV1)
BY_TOPIC = {cls.topic: cls for cls in CLASSES}

__all__ = ["AmiPublishedV1", "BootTestV1", "BY_TOPIC", "CLASSES", "ComposeStatusChangeV1",
           "DropStagedV1", "ImageBuiltV1", "ReleasePublishedV1"]
