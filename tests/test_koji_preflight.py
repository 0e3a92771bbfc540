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
    assert not out.exists() or not any(out.glob("Fedora-Cloud-*"))


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


def test_image_missing_from_the_tag_package_list(koji_hub, tmp_path, capsys):
    for tag in ("f19",):
        koji_hub.hub.tag_packages[tag] = set()
    rc, err = _compose_cli(koji_hub, tmp_path, capsys)
    assert rc == 2
    assert err == [f"rel-eng: error: image {name} is not in the package list of koji tag 'f19' "
                   f"on {koji_hub.server_url}: ask the Koji admins to add it "
                   f"(koji add-pkg --owner USER f19 {name})"
                   for name in ("Fedora-Cloud-Base", "Fedora-Cloud-Base-EC2")]
    _nothing_sent_or_written(koji_hub, tmp_path)


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
    assert "koji add-pkg --owner USER f19 Fedora-Cloud-Base-EC2" in exc.value.problems[1]
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
