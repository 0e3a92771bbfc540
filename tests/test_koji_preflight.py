"""What a production hub expects before a build is submitted: unique NVRs, the target, the build
tag's arches and the destination tag's package list. Each rule is checked here twice: by the
test hub (which fails or refuses like kojihub/kojid do) and by rel-eng before anything is sent."""

from __future__ import annotations

import dataclasses
import json

import koji
import pytest

from rel_eng.cli import main
from rel_eng.compose import allocate, run_compose
from rel_eng.errors import ConfigError

from tests.kojihub.fixtures import (ALPHA, PROFILE, client_config, compose_requests,  # noqa: F401
                                    hub_assets, koji_config, koji_hub)

S = koji.TASK_STATES
WRITES = {"buildImageOz", "rawUpload", "uploadFile"}


def _config_file(hub, tmp_path, extra: str = "") -> str:
    conf = client_config(hub, tmp_path / "koji.conf")
    path = tmp_path / "rel-eng.toml"
    path.write_text(f'[compose]\nbuilder = "koji"\n\n[koji]\nprofile = "{PROFILE}"\n'
                    f'config_file = "{conf}"\npoll_interval = 0.05\nretry_backoff = 0.05\n'
                    f'retry_backoff_max = 0.5\n{extra}'
                    '\n[boot_test]\nenabled = false\n')  # the test hub's disks do not boot
    return str(path)


def _compose_cli(hub, tmp_path, capsys, *extra: str) -> tuple[int, list[str]]:
    out = tmp_path / "out"
    rc = main(["compose", "--config", _config_file(hub, tmp_path), "--release", "19",
               "--milestone", "Alpha", "--date", "2013-04-05", "--output", str(out), *extra])
    return rc, capsys.readouterr().err.splitlines()


def _nothing_sent_or_written(hub, tmp_path) -> None:
    assert hub.hub.submissions == []
    assert not {m for m, _ in hub.rpc_log} & WRITES
    out = tmp_path / "out"
    assert list(out.glob("Fedora-Cloud-*")) == []  # (a missing dir globs to nothing)


# --- unique NVRs --------------------------------------------------------------------------------

def test_hub_fails_a_build_whose_nvr_exists(koji_hub, tmp_path):
    koji_hub.hub.add_build("Fedora-Cloud-Base", "19_Alpha", "1.1")
    config = koji_config(koji_hub, tmp_path)
    from rel_eng.builders.koji import KojiBuilder
    from rel_eng.compose import create, prepare_inputs
    from rel_eng.compose.build import build_request
    from rel_eng.plan import plan_drop

    plan = plan_drop(config, "19", milestone="Alpha", date=ALPHA, builder="koji")  # unchecked
    c = create(config, plan, tmp_path / "out", prepare_inputs(config, plan))
    reqs = [build_request(c, j.key) for j in plan.images if j.image_type == "generic"]
    builder = KojiBuilder(config)
    outcomes = builder.wait(builder.submit(reqs))
    assert not any(o.ok for o in outcomes)
    assert all("Build already exists (id=1, state=COMPLETE)" in o.reason for o in outcomes)


def test_allocation_counts_past_builds_the_hub_has(koji_hub, tmp_path):
    for release in ("1.1", "1.2"):
        koji_hub.hub.add_build("Fedora-Cloud-Base-EC2", "19_Alpha", release)
    config = koji_config(koji_hub, tmp_path)
    plan = allocate(config, tmp_path / "fresh", "19", "Alpha", ALPHA, builder="koji")
    assert plan.label == "Alpha-1.3" and {j.release for j in plan.images} == {"1.3"}
    asked = [inner for m, inner in koji_hub.rpc_log if "getBuild" in inner]
    assert len(asked) == 3  # one round trip per label tried, both image types in each
    c = run_compose(config, tmp_path / "fresh", "19", "Alpha", ALPHA, builder="koji")
    assert c.read_status() == "FINISHED" and c.plan.label == "Alpha-1.3"
    assert {s["opts"]["release"] for s in koji_hub.hub.submissions} == {"1.3"}


def test_a_failed_builds_nvr_is_reused_as_koji_recycles_it(koji_hub, tmp_path):
    koji_hub.hub.add_build("Fedora-Cloud-Base", "19_Alpha", "1.1", state="FAILED")
    config = koji_config(koji_hub, tmp_path)
    c = run_compose(config, tmp_path / "out", "19", "Alpha", ALPHA, builder="koji")
    assert c.read_status() == "FINISHED" and c.plan.label == "Alpha-1.1"


@pytest.mark.parametrize("history", [{"archives": 1}, {"tagged": "f19"}],
                         ids=["archives", "tag-history"])
def test_a_failed_build_with_files_or_tag_history_is_not_recycled(koji_hub, tmp_path, history):
    """kojihub's recycle_build refuses a FAILED/CANCELED build that has archives or tag history;
    allocation counts past it instead of submitting a build the hub would refuse."""
    koji_hub.hub.add_build("Fedora-Cloud-Base", "19_Alpha", "1.1", state="CANCELED", **history)
    config = koji_config(koji_hub, tmp_path)
    plan = allocate(config, tmp_path / "out", "19", "Alpha", ALPHA, builder="koji")
    assert plan.label == "Alpha-1.2"


def test_the_test_hub_refuses_to_recycle_as_kojihub_does(koji_hub, tmp_path):
    """Submitted anyway (the label forced past preflight): the hub itself refuses, with
    recycle_build's words, and a plain FAILED build is taken over with its build id."""
    from rel_eng.builders.koji import KojiBuilder
    from rel_eng.compose import create, prepare_inputs
    from rel_eng.compose.build import build_request
    from rel_eng.plan import plan_drop

    koji_hub.hub.add_build("Fedora-Cloud-Base", "19_Alpha", "1.1", state="FAILED", tagged="f19")
    reused = koji_hub.hub.add_build("Fedora-Cloud-Base-EC2", "19_Alpha", "1.1", state="FAILED")
    config = koji_config(koji_hub, tmp_path)
    plan = plan_drop(config, "19", milestone="Alpha", date=ALPHA, builder="koji")  # unchecked
    c = create(config, plan, tmp_path / "out", prepare_inputs(config, plan))
    builder = KojiBuilder(config)
    reqs = [build_request(c, j.key) for j in plan.images]
    outcomes = {o.job_key: o for o in builder.wait(builder.submit(reqs))}
    generic = [o for k, o in outcomes.items() if k.startswith("generic")]
    ec2 = [o for k, o in outcomes.items() if k.startswith("ec2")]
    assert generic and all(not o.ok and "Unable to recycle, has tag history" in o.reason
                           for o in generic)
    assert ec2 and all(o.ok for o in ec2)
    assert koji_hub.hub.builds[("Fedora-Cloud-Base-EC2", "19_Alpha", "1.1")]["id"] == reused["id"]


def test_scratch_weeklies_ask_the_hub_nothing_about_builds(koji_hub, tmp_path):
    config = koji_config(koji_hub, tmp_path)
    plan = allocate(config, tmp_path / "out", "rawhide", None, ALPHA, builder="koji")
    assert plan.respin == 0
    assert not [inner for _m, inner in koji_hub.rpc_log if "getBuild" in inner]


def test_explicit_label_taken_on_the_hub_is_refused(koji_hub, tmp_path, capsys):
    koji_hub.hub.add_build("Fedora-Cloud-Base", "19_Alpha", "1.4")
    rc, err = _compose_cli(koji_hub, tmp_path, capsys, "--label", "Alpha-1.4")
    assert rc == 2
    assert err == [f"rel-eng: error: label Alpha-1.4 is taken: Fedora-Cloud-Base-19_Alpha-1.4 "
                   f"exists: koji build 1 (COMPLETE) on {koji_hub.server_url} "
                   "(omit --label to get the next free respin)"]
    _nothing_sent_or_written(koji_hub, tmp_path)


def test_plan_shows_the_release_it_would_use_and_why(koji_hub, tmp_path, capsys):
    koji_hub.hub.add_build("Fedora-Cloud-Base", "19_Alpha", "1.1")
    rc = main(["plan", "--config", _config_file(koji_hub, tmp_path), "--release", "19",
               "--milestone", "Alpha", "--date", "2013-04-05", "--output",
               str(tmp_path / "out")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "label:       Alpha-1.2" in text
    assert (f"release:     1.2 (skipped Alpha-1.1: Fedora-Cloud-Base-19_Alpha-1.1 exists: "
            f"koji build 1 (COMPLETE) on {koji_hub.server_url})") in text
    assert "'release': '1.2'" not in text and '"release": "1.2"' in text  # in the hub call opts


def test_two_hosts_sharing_one_store_never_collide(tmp_path, config):
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    cfg = dataclasses.replace(config, arches=("x86_64",), disk_size_gib=1,
                              image_types=config.image_types[:1],
                              store=dataclasses.replace(config.store, url=store))
    from rel_eng.store.recorder import recorder_for

    first = tmp_path / "host-a"
    recorder = recorder_for(cfg, first)
    try:
        a = run_compose(cfg, first, "19", "Alpha", ALPHA, recorder=recorder)
    finally:
        recorder.close()
    b = allocate(cfg, tmp_path / "host-b", "19", "Alpha", ALPHA)  # another host's empty output
    assert (a.plan.compose_id, a.plan.label) == ("Fedora-Cloud-19-20130405.0", "Alpha-1.1")
    assert (b.compose_id, b.label) == ("Fedora-Cloud-19-20130405.1", "Alpha-1.2")
    weekly = allocate(cfg, tmp_path / "host-b", "19", None, ALPHA)
    assert weekly.respin == 0  # a nightly id is another name: nothing taken


# --- checks before anything is uploaded ---------------------------------------------------------

def test_missing_target_is_one_line_exit_2_and_nothing_sent(koji_hub, tmp_path, capsys):
    rel = tmp_path / "releases.toml"
    from rel_eng import paths

    rel.write_text(paths.RELEASES_FILE.read_text().replace('koji_target = "f19-candidate"',
                                                           'koji_target = "f19-nope"'))
    out = tmp_path / "out"
    rc = main(["compose", "--config", _config_file(koji_hub, tmp_path), "--releases", str(rel),
               "--release", "19", "--milestone", "Alpha", "--date", "2013-04-05",
               "--output", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2
    assert err == [f"rel-eng: error: koji target 'f19-nope' does not exist on "
                   f"{koji_hub.server_url}: ask the Koji admins for it (koji add-target f19-nope "
                   f"BUILD_TAG DEST_TAG), or set koji_target in {rel} / [koji] target"]
    _nothing_sent_or_written(koji_hub, tmp_path)


def test_build_tag_without_the_planned_arches(koji_hub, tmp_path, capsys):
    koji_hub.hub.tag_arches["f19-build"] = "x86_64"
    rc, err = _compose_cli(koji_hub, tmp_path, capsys)
    assert rc == 2
    assert err == [f"rel-eng: error: koji build tag 'f19-build' on {koji_hub.server_url} has "
                   "arches x86_64, not i386: ask the Koji admins to add them (koji edit-tag "
                   "f19-build --arches \"i386 x86_64\"), or leave them out of [compose] arches"]
    _nothing_sent_or_written(koji_hub, tmp_path)


def test_images_missing_from_the_tag_package_list_are_one_line(koji_hub, tmp_path, capsys):
    koji_hub.hub.tag_packages["f19"] = set()
    rc, err = _compose_cli(koji_hub, tmp_path, capsys)
    assert rc == 2
    assert err == [f"rel-eng: error: images Fedora-Cloud-Base, Fedora-Cloud-Base-EC2 are not in "
                   f"the package list of koji tag 'f19' on {koji_hub.server_url}: ask the Koji "
                   "admins to add them (koji add-pkg --owner USER f19 Fedora-Cloud-Base "
                   "Fedora-Cloud-Base-EC2)"]
    _nothing_sent_or_written(koji_hub, tmp_path)


def test_one_image_missing_from_the_tag_package_list(koji_hub, tmp_path, capsys):
    koji_hub.hub.tag_packages["f19"] = {"Fedora-Cloud-Base"}
    rc, err = _compose_cli(koji_hub, tmp_path, capsys)
    assert rc == 2
    assert err == [f"rel-eng: error: image Fedora-Cloud-Base-EC2 is not in the package list of "
                   f"koji tag 'f19' on {koji_hub.server_url}: ask the Koji admins to add it "
                   "(koji add-pkg --owner USER f19 Fedora-Cloud-Base-EC2)"]
    _nothing_sent_or_written(koji_hub, tmp_path)


def test_images_missing_from_several_tags_are_still_one_line():
    from rel_eng.builders.koji_preflight import _missing_packages_line

    line = _missing_packages_line([("f20", "C"), ("f19", "B"), ("f19", "A")], "https://hub")
    assert "\n" not in line
    assert line == ("images are missing from koji tag package lists on https://hub: A, B from "
                    "tag 'f19'; C from tag 'f20': ask the Koji admins to add them (koji add-pkg "
                    "--owner USER f19 A B; koji add-pkg --owner USER f20 C)")


def test_hub_does_not_list_a_package_the_tag_lacks_and_kojid_refuses_it(koji_hub, tmp_path):
    koji_hub.hub.tag_packages["f19"].discard("Fedora-Cloud-Base")
    session = koji.ClientSession(koji_hub.server_url, {"serverca": str(koji_hub.certs.ca)})
    assert [p["package_name"] for p in session.listPackages(tagID="f19")] == [
        "Fedora-Cloud-Base-EC2"]
    assert session.listPackages(tagID="f19", pkgID="Fedora-Cloud-Base") == []
    assert session.checkTagPackage("f19", "Fedora-Cloud-Base") is False
    assert session.checkTagPackage("f19", "Fedora-Cloud-Base-EC2") is True
    # Bypassing the checks, kojid fails the task as a real one does.
    config = koji_config(koji_hub, tmp_path)
    from rel_eng.builders.koji import KojiBuilder

    _c, reqs = compose_requests(config, tmp_path / "out")
    reqs = [r for r in reqs if r.job.image_type == "generic"]
    builder = KojiBuilder(config)
    outcomes = builder.wait(builder.submit(reqs))
    assert all("package (image) Fedora-Cloud-Base not in list for tag f19" in o.reason
               for o in outcomes)


def test_scratch_weekly_needs_no_package_list_entry(koji_hub, tmp_path):
    koji_hub.hub.tag_packages["f20"] = set()
    config = dataclasses.replace(koji_config(koji_hub, tmp_path), arches=("x86_64",))
    c = run_compose(config, tmp_path / "out", "rawhide", None, ALPHA, builder="koji")
    assert c.read_status() == "FINISHED"
    assert all(s["opts"]["scratch"] for s in koji_hub.hub.submissions)


def test_preflight_reports_every_problem_at_once(koji_hub, tmp_path):
    from rel_eng.builders.koji_preflight import preflight
    from rel_eng.plan import plan_drop

    koji_hub.hub.tag_arches["f19-build"] = ""
    koji_hub.hub.tag_packages["f19"] = {"Fedora-Cloud-Base"}
    config = koji_config(koji_hub, tmp_path)
    plan = plan_drop(config, "19", milestone="Alpha", date=ALPHA, builder="koji")
    with pytest.raises(ConfigError) as exc:
        preflight(plan, config)
    assert len(exc.value.problems) == 2
    assert "has arches none, not i386, x86_64" in exc.value.problems[0]
    assert exc.value.problems[1].endswith("(koji add-pkg --owner USER f19 Fedora-Cloud-Base-EC2)")
    assert exc.value.exit_code == 2
    assert json.dumps(exc.value.problems)  # plain strings


def test_unreachable_store_is_noted_and_allocation_goes_on(tmp_path, config):
    import socket

    from rel_eng.compose.taken import TakenNames

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = dataclasses.replace(config, store=dataclasses.replace(
        config.store, url=f"postgresql+psycopg://rel_eng@127.0.0.1:{port}/rel_eng"))
    taken = TakenNames(cfg, tmp_path / "out")
    plan = allocate(cfg, tmp_path / "out", "19", "Alpha", ALPHA, taken_names=taken)
    assert plan.label == "Alpha-1.1"
    assert [n.split(":")[0] for n in taken.notes] == ["compose store not checked"]
    assert "OperationalError" in taken.notes[0] and "rel_eng@" in taken.notes[0]
    assert not (tmp_path / "out").exists()


# --- the image permission -------------------------------------------------------------------------

def _compose_as(hub, tmp_path, capsys, user: str, authtype: str = "ssl") -> tuple[int, list[str]]:
    conf = client_config(hub, tmp_path / f"koji-{user}.conf", user=user, authtype=authtype)
    cfg = tmp_path / f"rel-eng-{user}.toml"
    cfg.write_text(open(_config_file(hub, tmp_path)).read().replace(
        str(tmp_path / "koji.conf"), str(conf)))
    rc = main(["compose", "--config", str(cfg), "--release", "19", "--milestone", "Alpha",
               "--date", "2013-04-05", "--output", str(tmp_path / "out")])
    return rc, capsys.readouterr().err.splitlines()


def test_a_user_without_the_image_permission_is_refused_before_anything_is_written(
        koji_hub, tmp_path, capsys):
    rc, err = _compose_as(koji_hub, tmp_path, capsys, "nobody")
    assert rc == 2
    assert err == [f"rel-eng: error: koji user nobody on {koji_hub.server_url} lacks the 'image' "
                   "permission (profile test-hub): ask the Koji admins for it "
                   "(koji grant-permission image nobody)"]
    assert ("sslLogin", []) in koji_hub.rpc_log  # it did log in to ask
    _nothing_sent_or_written(koji_hub, tmp_path)
    # The hub agrees: buildImageOz refuses that user (assertPerm), as the preflight said.
    session = koji.ClientSession(koji_hub.server_url, {"serverca": str(koji_hub.certs.ca)})
    session.ssl_login(str(koji_hub.certs.clients["nobody"]), None, str(koji_hub.certs.ca))
    with pytest.raises(koji.ActionNotAllowed):
        session.buildImageOz("x", "1", ["x86_64"], "f19-candidate", "http://h/", opts={})


def test_an_admin_passes_the_permission_check_and_an_anonymous_profile_does_not(
        koji_hub, tmp_path, capsys):
    from rel_eng.builders.koji_preflight import preflight
    from rel_eng.plan import plan_drop

    admin = koji_config(koji_hub, tmp_path, user="kojiadmin")
    preflight(plan_drop(admin, "19", milestone="Alpha", date=ALPHA, builder="koji"), admin)
    rc, err = _compose_as(koji_hub, tmp_path, capsys, "releng", authtype="noauth")
    assert rc == 2 and len(err) == 1
    assert "has authtype noauth: submitting image builds needs a login" in err[0]
    _nothing_sent_or_written(koji_hub, tmp_path)


def test_a_refused_login_is_one_line_exit_2_and_nothing_written(koji_hub, tmp_path, capsys):
    koji_hub.hub.sessions.clear()
    import tests.kojihub.hub as hubmod

    saved = dict(hubmod.USERS)
    del hubmod.USERS["releng"]  # the certificate names a user the hub does not know
    try:
        rc, err = _compose_as(koji_hub, tmp_path, capsys, "releng")
    finally:
        hubmod.USERS.clear()
        hubmod.USERS.update(saved)
    assert rc == 2 and len(err) == 1
    assert "cannot log in to koji hub" in err[0] and "Unknown user: releng" in err[0]
    _nothing_sent_or_written(koji_hub, tmp_path)


def test_a_hub_down_at_start_says_nothing_was_submitted(koji_hub, tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = _config_file(koji_hub, tmp_path)
    conf = tmp_path / "koji.conf"
    conf.write_text(conf.read_text().replace(koji_hub.server_url,
                                             f"https://127.0.0.1:{port}/kojihub"))
    rc = main(["compose", "--config", cfg, "--release", "19", "--milestone", "Alpha",
               "--date", "2013-04-05", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.splitlines()
    errors = [ln for ln in err if ln.startswith("rel-eng: error:")]
    assert rc == 1 and len(errors) == 1, err  # the hub's trouble, not bad input
    assert f"127.0.0.1:{port}" in errors[0] and "unreachable" in errors[0]
    assert "nothing was submitted" in errors[0] and "koji keeps the tasks" not in errors[0]
    _nothing_sent_or_written(koji_hub, tmp_path)


def test_the_resume_hint_appears_only_once_a_task_exists(koji_hub, tmp_path):
    from rel_eng.builders.koji import KojiBuilder
    from rel_eng.builders.koji_session import HubError

    config = koji_config(koji_hub, tmp_path, retries=1)
    _c, reqs = compose_requests(config, tmp_path / "out")
    builder = KojiBuilder(config, sleep=lambda s: None)
    handles = builder.submit([r for r in reqs if r.job.image_type == "generic"])
    koji_hub.stop()  # the hub goes away while its tasks run
    with pytest.raises(HubError) as exc:
        builder.wait(handles)
    assert "koji keeps the tasks; rerun the compose to resume watching them" in str(exc.value)
    fresh = KojiBuilder(config, sleep=lambda s: None)
    with pytest.raises(HubError) as exc:
        fresh.submit([r for r in reqs if r.job.image_type == "ec2"])
    assert "nothing was submitted" in str(exc.value) and "koji keeps" not in str(exc.value)


# --- open image tasks hold their NVR ------------------------------------------------------------

def test_a_queued_image_task_holds_its_release_for_the_next_compose(koji_hub, tmp_path):
    """Compose A's tasks are queued, not started (no build exists yet, getBuild sees nothing);
    compose B, a second later from another output dir, takes the next label."""
    from rel_eng.builders.koji import KojiBuilder

    koji_hub.inject.hold_free = True  # no builder free: A's tasks stay FREE
    config = koji_config(koji_hub, tmp_path)
    c_a, reqs = compose_requests(config, tmp_path / "out-a")
    assert c_a.plan.label == "Alpha-1.1"
    handles = KojiBuilder(config).submit(reqs)
    assert {koji_hub.hub.tasks[int(h.external_id)].state for h in handles} == {S["FREE"]}
    assert koji_hub.hub.builds == {}
    # A hostile or odd open task never breaks allocation: skipped, not trusted.
    for request in (["x"], None, ["Fedora-Cloud-Base", "19_Alpha", [], "t", "u", "opts"],
                    ["Fedora-Cloud-Base", "19_Alpha", [], "t", "u", {"release": 7}]):
        koji_hub.hub._make_task("image", request, arch="noarch", owner=1, channel="image")

    plan = allocate(config, tmp_path / "out-b", "19", "Alpha", ALPHA, builder="koji")
    assert plan.label == "Alpha-1.2"
    nvrs = {j.release for j in plan.images}
    assert nvrs == {"1.2"}


def test_the_hubs_build_in_progress_fault_names_the_nvr_the_task_and_the_rerun(koji_hub,
                                                                              tmp_path):
    """Allocation bypassed (the race it cannot close: both composes allocated before either
    task existed): the second task fails at the hub with "Build already in progress"."""
    from rel_eng.builders.koji import KojiBuilder
    from rel_eng.compose import create, prepare_inputs
    from rel_eng.compose.build import build_request
    from rel_eng.plan import plan_drop

    koji_hub.inject.slow = {"x86_64": 3.0, "i386": 3.0}  # A's build stays BUILDING meanwhile
    config = koji_config(koji_hub, tmp_path)
    outcomes = []
    for out in ("out-a", "out-b"):
        plan = plan_drop(config, "19", milestone="Alpha", date=ALPHA, builder="koji")
        c = create(config, plan, tmp_path / out, prepare_inputs(config, plan))
        reqs = [build_request(c, j.key) for j in plan.images if j.image_type == "generic"]
        builder = KojiBuilder(config)
        handles = builder.submit(reqs)
        if out == "out-a":
            first = int(handles[0].external_id)
            import time
            for _ in range(200):  # until A's image task has made its build
                if koji_hub.hub.builds:
                    break
                time.sleep(0.05)
            continue
        outcomes = builder.wait(handles)
    second = int(handles[0].external_id)
    assert len(outcomes) == 2 and not any(o.ok for o in outcomes)
    for o in outcomes:
        assert o.reason == (
            f"koji build Fedora-Cloud-Base-19_Alpha-1.1 is already in progress in task {first} "
            f"({koji_hub.weburl}/taskinfo?taskID={first}), so task {second} failed "
            f"({koji_hub.weburl}/taskinfo?taskID={second}); a rerun of the compose takes the "
            "next respin")
    # ... and the rerun does: allocation sees the BUILDING build.
    plan = allocate(config, tmp_path / "out-c", "19", "Alpha", ALPHA, builder="koji")
    assert plan.label == "Alpha-1.2"
