"""Submitting image builds to the test hub through the real koji.ClientSession."""

from __future__ import annotations

import logging
import re

import koji
import pytest

from rel_eng.builders.base import BuildHandle
from rel_eng.builders.koji import KojiBuilder
from rel_eng.builders.koji_opts import planned_calls
from rel_eng.builders.koji_session import HubError
from rel_eng.errors import Conflict, InputError

from tests.kojihub.fixtures import (Recorder, compose_requests, hub_assets,  # noqa: F401
                                    koji_config, koji_hub)

UNIQUE = re.compile(r"^work/cli-image/\d+\.\d+\.[A-Za-z]{8}/(?P<name>[^/]+\.ks)$")


def test_one_call_per_image_type_with_the_planned_opts(koji_hub, tmp_path):
    config = koji_config(koji_hub, tmp_path)
    c, requests = compose_requests(config, tmp_path / "out")
    record = Recorder(koji_hub)
    handles = KojiBuilder(config, on_submitted=record).submit(requests)

    subs = koji_hub.hub.submissions
    assert len(subs) == 2  # generic and EC2, each with both arches
    planned = planned_calls(c.plan, config)
    assert len(planned) == len(subs)
    for sub, plan in zip(subs, planned):
        assert sub["user"] == "releng" and sub["fault"] is None
        assert [sub["name"], sub["version"], sub["arches"], sub["target"],
                sub["inst_tree"]] == plan["args"]
        opts = dict(sub["opts"])
        match = UNIQUE.match(opts.pop("kickstart"))
        assert match, sub["opts"]["kickstart"]
        planned_opts = dict(plan["opts"])
        assert match["name"] == planned_opts.pop("kickstart").rsplit("/", 1)[1]
        assert opts == planned_opts
        # The uploaded file is the flattened kickstart, byte for byte.
        uploaded = koji_hub.hub.topdir / sub["opts"]["kickstart"]
        job = next(r for r in requests if r.job.name == sub["name"])
        assert uploaded.read_bytes() == job.kickstart.read_bytes()
    # Each upload went to its own dir, as koji's CLI does.
    assert len({s["opts"]["kickstart"].rsplit("/", 1)[0] for s in subs}) == 2

    assert [h.job_key for h in handles] == [r.job.key for r in requests]
    by_type = {s["name"]: s["task_id"] for s in subs}
    for h, r in zip(handles, requests):
        assert h.external_id == str(by_type[r.job.name])
        assert h.data["koji_arch"] == {"i686": "i386", "x86_64": "x86_64"}[r.job.arch]
        assert h.data["scratch"] is False
    # Task ids were recorded the moment each existed: before the next image type was sent.
    assert record.handles == sorted(handles, key=lambda h: int(h.external_id))
    assert record.submissions_seen == [1, 1, 2, 2]


def test_weekly_builds_are_scratch(koji_hub, tmp_path):
    config = koji_config(koji_hub, tmp_path)
    _c, requests = compose_requests(config, tmp_path / "out", release="rawhide", milestone=None)
    handles = KojiBuilder(config).submit(requests)
    assert all(s["opts"]["scratch"] is True for s in koji_hub.hub.submissions)
    assert all(h.data["scratch"] for h in handles)


def test_missing_image_permission_is_one_clear_error(koji_hub, tmp_path):
    config = koji_config(koji_hub, tmp_path, user="nobody")
    _c, requests = compose_requests(config, tmp_path / "out")
    record = Recorder()
    with pytest.raises(HubError) as err:
        KojiBuilder(config, on_submitted=record).submit(requests)
    assert "ActionNotAllowed: image permission required (logged in as nobody)" in str(err.value)
    assert "grant-permission image" in str(err.value)
    assert record.handles == [] and koji_hub.hub.tasks == {}


def test_fault_on_submission_keeps_what_was_submitted(koji_hub, tmp_path):
    koji_hub.inject.submit_fault = koji.GenericError("database is unavailable")
    koji_hub.inject.submit_fault_on = 2  # the EC2 call fails, generic went through
    config = koji_config(koji_hub, tmp_path)
    _c, requests = compose_requests(config, tmp_path / "out")
    record = Recorder()
    with pytest.raises(HubError) as err:
        KojiBuilder(config, on_submitted=record).submit(requests)
    assert "refused buildImageOz Fedora-Cloud-Base-EC2 19_Alpha (ec2)" in str(err.value)
    assert "GenericError: database is unavailable" in str(err.value)
    # The generic task exists and was recorded, so a rerun resumes it instead of resubmitting.
    assert [h.job_key for h in record.handles] == ["generic-i686", "generic-x86_64"]
    assert list(koji_hub.hub.tasks)[0] == int(record.handles[0].external_id)


def test_unknown_profile_is_an_input_error(koji_hub, tmp_path):
    import dataclasses

    good = koji_config(koji_hub, tmp_path)
    config = dataclasses.replace(good, koji=dataclasses.replace(good.koji, profile="nope"))
    # Allocation reads the profile to ask the hub which NVRs exist: refused before any write.
    with pytest.raises(InputError, match="koji profile 'nope'"):
        compose_requests(config, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert koji_hub.round_trips == 0
    _c, requests = compose_requests(good, tmp_path / "out")
    rounds = koji_hub.round_trips
    with pytest.raises(InputError, match="koji profile 'nope'"):
        KojiBuilder(config).submit(requests)
    assert koji_hub.round_trips == rounds


def test_noauth_profile_can_watch_but_not_submit(koji_hub, tmp_path):
    config = koji_config(koji_hub, tmp_path)
    _c, requests = compose_requests(config, tmp_path / "out")
    handles = KojiBuilder(config).submit(requests)  # with the ssl profile

    anon = koji_config(koji_hub, tmp_path, authtype="noauth")
    assert all(o.ok for o in KojiBuilder(anon).wait(handles))
    _c2, more = compose_requests(anon, tmp_path / "out2")
    trips = koji_hub.round_trips
    # Found once the compose dir exists: a conflict with what was written (exit 1), not bad input.
    with pytest.raises(Conflict, match="authtype noauth: submitting and cancelling") as exc:
        KojiBuilder(anon).submit(more)
    assert exc.value.exit_code == 1
    assert koji_hub.round_trips == trips  # refused before asking the hub anything


def test_kerberos_profile_tries_gssapi_and_fails_clearly(koji_hub, tmp_path):
    config = koji_config(koji_hub, tmp_path, authtype="kerberos")
    _c, requests = compose_requests(config, tmp_path / "out")
    del koji_hub.rpc_log[:]  # allocation's anonymous getBuild lookups
    with pytest.raises(HubError) as err:
        KojiBuilder(config).submit(requests)
    assert "cannot log in to koji hub" in str(err.value) and "gssapi auth" in str(err.value)
    assert "kinit" in str(err.value)
    assert [m for m, _ in koji_hub.rpc_log] == ["sslLogin"]  # koji's GSSAPI login endpoint


def test_credentials_never_reach_the_logs(koji_hub, tmp_path, caplog, hub_assets):
    certs, _images = hub_assets
    key_lines = [line for line in certs.clients["releng"].read_text().splitlines()
                 if line and not line.startswith("-----")]
    config = koji_config(koji_hub, tmp_path)
    _c, requests = compose_requests(config, tmp_path / "out")
    with caplog.at_level(logging.DEBUG):
        KojiBuilder(config).submit(requests)
    text = caplog.text
    assert "logged in to koji hub" in text
    assert "PRIVATE KEY" not in text and not any(line in text for line in key_lines)


def test_a_task_the_hub_does_not_know_fails_that_image(koji_hub, tmp_path):
    config = koji_config(koji_hub, tmp_path)
    handle = BuildHandle("generic-x86_64", "424242", {"koji_arch": "x86_64", "logdir": "x"})
    [outcome] = KojiBuilder(config).wait([handle])
    assert not outcome.ok
    assert outcome.reason == f"koji task 424242 does not exist on {koji_hub.server_url}"
