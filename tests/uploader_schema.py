"""fedora-image-uploader's own schema package judges every AMI message the tests produce.

`rel_eng_messages` keeps a copy of the uploader's AWS body schema; the real package
(`fedora-image-uploader-messages`, a test dependency) is the judge, not our copy of it.
"""

from __future__ import annotations

from fedora_image_uploader_messages.publish import AwsPublishedV1

from rel_eng.messaging import bodies

BASE = AwsPublishedV1.topic  # fedora_image_uploader.published.v1.aws


def check_ami_message(body: dict, topic: str | None = None) -> None:
    """Raises fedora_messaging's ValidationError unless the uploader's class accepts the body;
    a topic, when given, must be the uploader's: base + .<subvariant>.<release>.<arch>."""
    AwsPublishedV1(body=body, topic=topic or BASE).validate()
    if topic is not None:
        assert topic == ".".join([BASE, body["subvariant"], str(body["release"]),
                                  body["architecture"]]), topic


def install(monkeypatch) -> None:
    """Validate every AMI body built in this process: the outbox's and the printed ones."""
    amis_published, ami_topic = bodies.amis_published, bodies.ami_topic

    def checked_outbox(*args, **kwargs):
        out = amis_published(*args, **kwargs)
        for o in out:
            check_ami_message(o.body)
            check_ami_message(o.body, bodies.wire_topic(o.topic, o.body))
        return out

    def checked_topic(body):
        topic = ami_topic(body)
        check_ami_message(body, topic)
        return topic

    monkeypatch.setattr(bodies, "amis_published", checked_outbox)
    monkeypatch.setattr(bodies, "ami_topic", checked_topic)
    import rel_eng.publish.messages as printed

    monkeypatch.setattr(printed, "ami_topic", checked_topic)
