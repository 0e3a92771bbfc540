"""Failed createImage tasks: optional arch (image fails, compose goes on) and required arch."""

from __future__ import annotations

import dataclasses

import koji

from rel_eng.builders.koji import KojiBuilder

from tests.kojihub.fixtures import compose_requests, hub_assets, koji_config, koji_hub  # noqa: F401

S = koji.TASK_STATES


def _generic(requests):
    return [r for r in requests if r.job.image_type == "generic"]


def test_failed_optional_arch_fails_only_that_image_and_saves_its_logs(koji_hub, tmp_path):
    koji_hub.inject.fail_arches = {"i386"}
    config = dataclasses.replace(koji_config(koji_hub, tmp_path), optional_arches=("i686",))
    _c, requests = compose_requests(config, tmp_path / "out")
    requests = _generic(requests)
    builder = KojiBuilder(config)
    handles = builder.submit(requests)
    assert koji_hub.hub.submissions[0]["opts"]["optional_arches"] == ["i386"]
    outcomes = {o.job_key: o for o in builder.wait(handles)}

    assert outcomes["generic-x86_64"].ok
    failed = outcomes["generic-i686"]
    assert not failed.ok
    parent = koji_hub.hub.tasks[int(handles[0].external_id)]
    child = next(t for t in koji_hub.hub.tasks.values() if t.label == "i386")
    assert parent.state == S["CLOSED"] and child.state == S["FAILED"]
    assert f"koji createImage task {child.id} (i386) FAILED: ApplianceError: Image status " \
           f"is FAILED" in failed.reason
    assert f"{koji_hub.weburl}/taskinfo?taskID={child.id}" in failed.reason
    # oz-<arch>.log and the screenshot, copied byte for byte into the image's log dir
    logdir = requests[0].logdir / f"koji-task-{child.id}"
    hub_dir = koji_hub.hub.task_dir(child.id)
    assert sorted(p.name for p in logdir.iterdir()) == ["oz-i386.log", "screenshot.ppm"]
    for name in ("oz-i386.log", "screenshot.ppm"):
        assert (logdir / name).read_bytes() == (hub_dir / name).read_bytes()
    assert str(logdir) in failed.reason

    # The arch that built is collected as usual.
    ok = next(h for h in handles if h.job_key == "generic-x86_64")
    art = builder.collect(ok, next(r for r in requests if r.job.key == "generic-x86_64"))
    assert art[0].kind == "raw-disk"


def test_failed_required_arch_fails_the_parent_and_cancels_the_other(koji_hub, tmp_path):
    koji_hub.inject.fail_arches = {"x86_64"}
    koji_hub.inject.slow = {"i386": 5.0}  # still building when x86_64 fails
    config = koji_config(koji_hub, tmp_path)
    _c, requests = compose_requests(config, tmp_path / "out")
    builder = KojiBuilder(config)
    handles = builder.submit(_generic(requests))
    outcomes = {o.job_key: o for o in builder.wait(handles)}

    parent = koji_hub.hub.tasks[int(handles[0].external_id)]
    kids = {t.label: t for t in koji_hub.hub.tasks.values() if t.parent == parent.id}
    assert parent.state == S["FAILED"]
    assert kids["x86_64"].state == S["FAILED"] and kids["i386"].state == S["CANCELED"]
    assert not outcomes["generic-x86_64"].ok and not outcomes["generic-i686"].ok
    assert "ApplianceError" in outcomes["generic-x86_64"].reason
    reason = outcomes["generic-i686"].reason
    assert f"koji task {parent.id} FAILED: ApplianceError" in reason
    assert f"its i386 task {kids['i386'].id} was CANCELED" in reason
    assert (requests[1].logdir / f"koji-task-{kids['x86_64'].id}" / "oz-x86_64.log").is_file()


def test_a_kojid_crash_shows_its_cause_and_keeps_the_whole_fault(koji_hub, tmp_path):
    """A non-koji exception in kojid comes back as Fault 1 holding the Python traceback: the
    reason is the traceback's last line, the whole fault is kept in the image's log dir."""
    cause = OSError(111, "Failed to connect socket to '/var/run/libvirt/libvirt-sock': "
                         "Connection refused")
    koji_hub.inject.crash_arches = {"i386": cause}
    config = dataclasses.replace(koji_config(koji_hub, tmp_path), optional_arches=("i686",))
    _c, requests = compose_requests(config, tmp_path / "out")
    requests = _generic(requests)
    builder = KojiBuilder(config)
    outcomes = {o.job_key: o for o in builder.wait(builder.submit(requests))}
    assert outcomes["generic-x86_64"].ok
    failed = outcomes["generic-i686"]
    child = next(t for t in koji_hub.hub.tasks.values() if t.label == "i386")
    assert child.result.faultCode == 1 and "Traceback" in child.result.faultString
    assert (f"FAILED: kojid fault 1: ConnectionRefusedError: [Errno 111] Failed to connect "
            "socket to '/var/run/libvirt/libvirt-sock': Connection refused") in failed.reason
    assert "Traceback" not in failed.reason and "\\n" not in failed.reason
    kept = requests[0].logdir / f"koji-task-{child.id}-fault.txt"
    assert f"the whole fault in {kept}" in failed.reason
    text = kept.read_text()
    assert text.startswith("Traceback (most recent call last)") and "_libvirt_open" in text
    assert text == child.result.faultString.rstrip("\n") + "\n"


def test_the_one_line_of_a_fault_is_its_cause_whatever_its_shape():
    from koji.xmlrpcplus import Fault

    from rel_eng.builders.koji_session import fault_from_result, fault_text

    tb = ("Traceback (most recent call last):\n  File \"/usr/lib/python3/kojid\", line 1, in x\n"
          "    ssl.do_handshake()\nssl.SSLCertVerificationError: [SSL: "
          "CERTIFICATE_VERIFY_FAILED] certificate verify failed\n\n")
    want = ("kojid fault 1: ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] "
            "certificate verify failed")
    assert fault_from_result({"faultCode": 1, "faultString": tb}) == want
    escaped = tb.replace("\n", "\\n")  # a fault re-serialised with literal \n
    assert fault_from_result({"faultCode": 1, "faultString": escaped}) == want
    assert fault_text(Fault(1, tb)) == want
    # koji's own errors keep their class and message
    assert fault_from_result({"faultCode": koji.BuildError.faultCode, "faultString": "no arch"}) \
        == "BuildError: no arch"
    # hostile: an enormous last line, control characters, a traceback with nothing after it
    huge = fault_from_result({"faultCode": 1, "faultString": tb + "X" * 100000})
    assert len(huge) < 600 and "\n" not in huge
    assert fault_from_result({"faultCode": 1,
                              "faultString": "Traceback (most recent call last):\n"}).endswith(
        "Traceback (most recent call last):")
