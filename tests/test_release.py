"""`rel-eng release`: a staged candidate into the release tree, verified, recorded, announced;
every bad input refused before anything is written; signals and races leave no half release."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rel_eng import cli
from rel_eng.compose import run_compose
from rel_eng.compose.model import Compose
from rel_eng.release import tree as release_tree

from conftest import private_copy, tree_state

DATE = dt.date(2013, 4, 5)
BETA = "fedora/linux/releases/test/19_Beta/Cloud"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def _candidates(tmp_path_factory, config):
    """19 Beta composed twice (Beta-1.1, Beta-1.2) and a Rawhide weekly, in one output dir."""
    from rel_eng.store.recorder import recorder_for

    out = tmp_path_factory.mktemp("candidates") / "out"
    recorder = recorder_for(config, out)  # in the store, as `rel-eng compose` records them
    b1 = run_compose(config, out, "19", "Beta", DATE, recorder=recorder)
    b2 = run_compose(config, out, "19", "Beta", DATE, recorder=recorder)
    weekly = run_compose(config, out, "rawhide", None, DATE, recorder=recorder)
    recorder.close()
    return out, {"Beta-1.1": b1.plan.compose_id, "Beta-1.2": b2.plan.compose_id,
                 "weekly": weekly.plan.compose_id}


@pytest.fixture
def candidates(_candidates, tmp_path):
    """A private copy of the candidates' output dir, to release from."""
    out, ids = _candidates
    return private_copy(out, tmp_path / "out"), ids


def rel(out: Path, *args: str, capsys) -> tuple[int, list[str], list[str]]:
    rc = cli.main(["release", *args, "--output", str(out)])
    o, e = capsys.readouterr()
    return rc, o.splitlines(), e.splitlines()


def outbox(out: Path, capsys) -> list[dict]:
    assert cli.main(["messages", "--output", str(out), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_release_links_verifies_records_and_announces_once(candidates, capsys):
    out, ids = candidates
    rc, o, e = rel(out, "Beta-1.2", "--allow-unverified", "--by", "alice", capsys=capsys)
    assert (rc, e) == (0, [])
    target = out / "mirror" / BETA
    assert o == [f"Beta-1.2 ({ids['Beta-1.2']}) released into {target}"]
    staged = out / "mirror" / "alt/stage/19_Beta-1.2/Cloud/x86_64/images"
    released = target / "x86_64/images"
    names = sorted(p.name for p in staged.iterdir())
    assert names == sorted(p.name for p in released.iterdir())
    for name in names:  # non-empty: the drop holds images, CHECKSUM and README
        if name.endswith(("qcow2", "xz")):  # hardlinks of the staged images
            assert (staged / name).stat().st_ino == (released / name).stat().st_ino
    assert oct(target.stat().st_mode & 0o777) == "0o755"
    assert cli.main(["verify", str(target)]) == 0
    assert "no stray file" in capsys.readouterr().out
    record = json.loads((target / "metadata/release.json").read_text())
    assert (record["compose_id"], record["label"], record["released_by"], record["note"]) == \
        (ids["Beta-1.2"], "Beta-1.2", "alice", "not verified by a boot")

    rows = [r for r in outbox(out, capsys) if r["topic"] == "rel_eng.release.published.v1"]
    assert len(rows) == 1
    body = rows[0]["body"]
    assert (body["release"], body["milestone"], body["compose_id"], body["label"],
            body["mirror_path"], body["action"]) == ("19", "Beta", ids["Beta-1.2"], "Beta-1.2",
                                                     BETA, "published")
    manifest = {f["path"]: (f["size"], f["sha256"]) for f in body["files"]}
    assert manifest["x86_64/images/Fedora-Cloud-Base-19_Beta-1.2.x86_64.qcow2"][0] == \
        (released / "Fedora-Cloud-Base-19_Beta-1.2.x86_64.qcow2").stat().st_size

    before = tree_state(out / "mirror")
    rc, o, e = rel(out, ids["Beta-1.2"], "--allow-unverified", capsys=capsys)
    assert rc == 0 and o == [f"Beta-1.2 ({ids['Beta-1.2']}) is already released in {target}: "
                             "nothing to do"]
    assert tree_state(out / "mirror") == before
    assert len([r for r in outbox(out, capsys)
                if r["topic"] == "rel_eng.release.published.v1"]) == 1


def _refused(out: Path, capsys, *args: str) -> str:
    before = tree_state(out)
    rc, o, e = rel(out, *args, capsys=capsys)
    assert (rc, o, len(e)) == (2, [], 1), (rc, o, e)
    assert not (out / "mirror" / "fedora").exists()
    after = tree_state(out)
    assert after == before, sorted(set(before.items()) ^ set(after.items()))[:4]
    return e[0]


def test_bad_candidates_are_refused_before_anything_is_written(candidates, capsys):
    out, ids = candidates
    assert "no compose 'Fedora-Cloud-19-20990101.0'" in _refused(out, capsys,
                                                                   "Fedora-Cloud-19-20990101.0")
    assert "no compose 'Beta-1.9'" in _refused(out, capsys, "Beta-1.9")
    assert "is a weekly compose" in _refused(out, capsys, ids["weekly"], "--allow-unverified")
    err = _refused(out, capsys, "Beta-1.2")
    assert "no boot verified" in err and "--allow-unverified" in err


def test_incomplete_doomed_and_failed_boot_are_refused(candidates, capsys):
    out, ids = candidates
    c = Compose.load(out / ids["Beta-1.1"])
    c.manifest.set_step("build:ec2-i686", "x", "failed", "koji task failed")
    c.set_status("FINISHED_INCOMPLETE", None)
    err = _refused(out, capsys, "Beta-1.1", "--allow-unverified")
    assert "is FINISHED_INCOMPLETE, not FINISHED; missing: ec2-i686" in err
    c.set_status("DOOMED", None)
    assert "is DOOMED, not FINISHED" in _refused(out, capsys, "Beta-1.1", "--allow-unverified")

    c2 = Compose.load(out / ids["Beta-1.2"])
    c2.manifest.set_step("boottest:generic-x86_64", "x", "failed", "ssh: no answer")
    err = _refused(out, capsys, "Beta-1.2", "--allow-unverified")
    assert "the boot gate failed Fedora-Cloud-Base-19_Beta-1.2.x86_64: ssh: no answer" in err


def test_incomplete_candidate_released_with_allow_incomplete_says_what_is_missing(candidates,
                                                                                   capsys):
    out, ids = candidates
    c = Compose.load(out / ids["Beta-1.1"])
    c.manifest.set_step("build:ec2-i686", "x", "failed", "koji task failed")
    c.set_status("FINISHED_INCOMPLETE", None)
    rc, _, e = rel(out, "Beta-1.1", "--allow-unverified", "--allow-incomplete", capsys=capsys)
    assert (rc, e) == (0, [])
    record = json.loads((out / "mirror" / BETA / "metadata/release.json").read_text())
    assert record["note"] == "not verified by a boot; missing: ec2-i686"


def test_a_tampered_staged_file_is_named_and_nothing_is_written(candidates, capsys):
    out, _ = candidates
    img = out / "mirror/alt/stage/19_Beta-1.2/Cloud/i686/images/Fedora-Cloud-Base-19_Beta-1.2.i686.qcow2"
    data = bytearray(img.read_bytes())
    data[100] ^= 1
    img.write_bytes(bytes(data))
    err = _refused(out, capsys, "Beta-1.2", "--allow-unverified")
    assert err.startswith(f"rel-eng: error: rel-eng verify {out / 'mirror/alt/stage/19_Beta-1.2'}: "
                          f"{img}: sha256 ") and "says" in err


def test_a_place_that_is_not_ours_and_a_replace_of_nothing_are_refused(candidates, capsys):
    out, _ = candidates
    err = _refused(out, capsys, "Beta-1.2", "--allow-unverified", "--replace")
    assert f"--replace: nothing is released at {out / 'mirror' / BETA}" in err
    theirs = out / "mirror" / BETA
    theirs.mkdir(parents=True)
    (theirs / "notes.txt").write_text("someone else's\n")
    before = tree_state(out)
    rc, o, e = rel(out, "Beta-1.2", "--allow-unverified", capsys=capsys)
    assert (rc, o) == (2, []) and e == [
        f"rel-eng: error: {theirs} exists and is not a release of rel-eng (no "
        "metadata/release.json) (move it away by hand if it is stale; the release writes only "
        "there)"]
    assert tree_state(out) == before


def test_sigterm_mid_copy_leaves_nothing_in_releases(candidates, capsys, monkeypatch):
    out, _ = candidates
    real = os.link
    seen = []

    def link_then_signal(src, dst, **kw):
        seen.append(dst)
        real(src, dst, **kw)
        if len(seen) == 3:  # mid-copy: some files linked, most not
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(release_tree.os, "link", link_then_signal)
    rc, o, e = rel(out, "Beta-1.2", "--allow-unverified", capsys=capsys)
    assert (rc, len(e)) == (143, 1) and "by signal SIGTERM" in e[0] and len(seen) == 3
    assert not (out / "mirror" / "fedora").exists()


KILLER = """
import os, signal, sys
from rel_eng import cli
from rel_eng.release import tree, record
where, n = sys.argv[1], int(sys.argv[2])
count = [0]
def kill_at(real):
    def wrapped(*a, **kw):
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **kw)
    return wrapped
if where == "link":
    os.link = kill_at(os.link)
else:
    record.record = kill_at(record.record)
sys.exit(cli.main(sys.argv[3:]))
"""


def _killed(out: Path, where: str, n: int, *extra: str) -> None:
    argv = [sys.executable, "-c", KILLER, where, str(n), "release", "Beta-1.2",
            "--allow-unverified", "--output", str(out), *extra]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _digests(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mode,
                                       release_tree.sha256_file(p))
            for p in sorted(root.rglob("*")) if p.is_file()
            and p.name not in ("release.json", "MANIFEST")}


def test_verify_names_the_tampered_file_of_a_release_tree(candidates, capsys):
    out, _ = candidates
    assert rel(out, "Beta-1.2", "--allow-unverified", capsys=capsys)[0] == 0
    readme = out / "mirror" / BETA / "x86_64/images/README"
    readme.unlink()  # a new inode: the staged README stays as it was
    readme.write_text("edited\n")
    assert cli.main(["verify", str(out / "mirror" / BETA)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{readme}: 7 bytes, MANIFEST says " + str(
            (out / "mirror/alt/stage/19_Beta-1.2/Cloud/x86_64/images/README").stat().st_size)]


@pytest.mark.parametrize("where,n", [("link", 5), ("announce", 1)])
def test_sigkill_then_rerun_ends_in_the_same_tree_and_one_message(candidates, capsys, where, n):
    out, ids = candidates
    clean = private_copy(out, out.parent / "clean")
    assert rel(clean, "Beta-1.2", "--allow-unverified", capsys=capsys)[0] == 0

    _killed(out, where, n)
    parent = out / "mirror" / BETA
    if where == "link":  # killed mid-link: its temp tree is all there is
        assert not parent.exists()
        assert [p.name.split("-")[0] for p in parent.parent.iterdir()] == [".Cloud.staging"]
    rc, o, e = rel(out, "Beta-1.2", "--allow-unverified", capsys=capsys)
    assert (rc, e) == (0, [])
    assert [p.name for p in parent.parent.iterdir()] == ["Cloud"]
    assert _digests(parent) == _digests(clean / "mirror" / BETA)
    assert cli.main(["verify", str(parent)]) == 0
    capsys.readouterr()
    rows = [r for r in outbox(out, capsys) if r["topic"] == "rel_eng.release.published.v1"]
    assert [r["body"]["compose_id"] for r in rows] == [ids["Beta-1.2"]]


def test_sigkill_mid_replace_then_resume_replaces_and_remembers_whom(candidates, capsys):
    out, ids = candidates
    assert rel(out, "Beta-1.1", "--allow-unverified", capsys=capsys)[0] == 0
    _killed(out, "announce", 1, "--replace")  # killed after the exchange, before the record
    target = out / "mirror" / BETA
    assert json.loads((target / "metadata/release.json").read_text())["label"] == "Beta-1.2"
    rc, o, e = rel(out, "Beta-1.2", "--allow-unverified", "--replace", "--resume", capsys=capsys)
    assert (rc, e) == (0, [])
    assert sorted(p.name for p in target.parent.iterdir()) == ["Cloud"]  # the old tree swept
    assert Compose.load(out / ids["Beta-1.2"]).manifest.read()["release_replaces"] == {
        "compose_id": ids["Beta-1.1"], "label": "Beta-1.1"}
    capsys.readouterr()
    assert _released(out, capsys) == [("published", "Beta-1.1"), ("replaced", "Beta-1.2")]


def test_two_releases_of_one_milestone_at_once_one_wins_the_other_names_it(candidates):
    out, ids = candidates
    from rel_eng.compose.locks import mirror_lock

    procs = {}
    with mirror_lock(out / "mirror"):  # both start while the mirror is held: they race for it
        for label in ("Beta-1.1", "Beta-1.2"):
            procs[label] = subprocess.Popen(
                [sys.executable, "-m", "rel_eng", "release", label, "--allow-unverified",
                 "--output", str(out)], cwd=REPO, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
    done = {label: (p.wait(timeout=120), p.stdout.read(), p.stderr.read())
            for label, p in procs.items()}
    winners = [label for label, (rc, _, _) in done.items() if rc == 0]
    assert len(winners) == 1
    loser = ({"Beta-1.1", "Beta-1.2"} - set(winners)).pop()
    rc, o, e = done[loser]
    assert rc == 2 and o == ""
    assert f"19 Beta is already released from {winners[0]} ({ids[winners[0]]}, by " in e
    record = json.loads((out / "mirror" / BETA / "metadata/release.json").read_text())
    assert record["label"] == winners[0]


def _released(out: Path, capsys) -> list[tuple]:
    return [(r["body"]["action"], r["body"]["label"]) for r in outbox(out, capsys)
            if r["topic"] == "rel_eng.release.published.v1"]


def test_replace_swaps_the_tree_in_one_exchange_and_announces_it(candidates, capsys):
    out, ids = candidates
    assert rel(out, "Beta-1.1", "--allow-unverified", capsys=capsys)[0] == 0
    target = out / "mirror" / BETA
    err = _refused_keeping(out, capsys, "Beta-1.2", "--allow-unverified")
    assert err == (f"rel-eng: error: 19 Beta is already released from Beta-1.1 "
                   f"({ids['Beta-1.1']}, by {json.loads((target / 'metadata/release.json').read_text())['released_by']} "
                   f"at {json.loads((target / 'metadata/release.json').read_text())['released_at']}) "
                   f"in {target} (add --replace to release Beta-1.2 in its place)")
    rc, o, e = rel(out, "Beta-1.2", "--allow-unverified", "--replace", capsys=capsys)
    assert (rc, e) == (0, []) and o == [f"Beta-1.2 ({ids['Beta-1.2']}) replaced into {target}"]
    assert json.loads((target / "metadata/release.json").read_text())["label"] == "Beta-1.2"
    assert sorted(p.name for p in target.parent.iterdir()) == ["Cloud"]  # the old tree is gone
    assert sorted(p.name for p in (target / "x86_64/images").glob("*.qcow2")) == [
        "Fedora-Cloud-Base-19_Beta-1.2.x86_64.qcow2", "Fedora-Cloud-Base-EC2-19_Beta-1.2.x86_64.qcow2"]
    assert cli.main(["verify", str(target)]) == 0
    capsys.readouterr()
    assert _released(out, capsys) == [("published", "Beta-1.1"), ("replaced", "Beta-1.2")]
    assert cli.main(["status", ids["Beta-1.2"], "--output", str(out), "--json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert [(r["milestone"], r["label"], r["state"], r["released_by"]) for r in detail["releases"]] \
        == [("Beta", "Beta-1.2", "open", record_by(target))]
    assert [ev["action"] for ev in detail["releases"][0]["events"]] == ["published", "replaced"]
    assert cli.main(["status", ids["Beta-1.2"], "--output", str(out)]) == 0
    assert (f"released: 19 Beta from Beta-1.2, open, by {record_by(target)} at "
            f"{detail['releases'][0]['released_at'][:19].replace('T', ' ')} in {BETA} (not "
            "verified by a boot)") in capsys.readouterr().out.splitlines()

    assert cli.main(["plan", "--release", "19", "--milestone", "Beta", "--released",
                     "--output", str(out)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith(f"19 Beta: released from Beta-1.2 ({ids['Beta-1.2']}), open, by ")
    assert [line.split()[2:4] for line in shown[1:]] == [["published", ids["Beta-1.1"]],
                                                         ["replaced", ids["Beta-1.2"]]]
    assert cli.main(["plan", "--release", "19", "--milestone", "Beta", "--released", "--json",
                     "--output", str(out)]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["released"]["label"] == "Beta-1.2"
    assert [s["name"] for s in planned["steps"]] == ["check", "link", "resign", "seal", "swap",
                                                     "withdraw", "open", "share", "unshare",
                                                     "announce"]
    assert cli.main(["schedule", "--output", str(out), "--json"]) == 0
    stones = {m["milestone"]: m for m in json.loads(capsys.readouterr().out)["milestones"]
              if m["release"] == "19"}
    assert stones["Beta"]["candidates"] == ["Beta-1.1", "Beta-1.2"]
    assert stones["Beta"]["released"]["label"] == "Beta-1.2"
    assert (stones["Alpha"]["candidates"], stones["Alpha"]["released"]) == ([], None)


def record_by(target: Path) -> str:
    return json.loads((target / "metadata/release.json").read_text())["released_by"]


def _refused_keeping(out: Path, capsys, *args: str) -> str:
    """Refused with exit 2, and the mirror as it was."""
    before = tree_state(out / "mirror")
    rc, o, e = rel(out, *args, capsys=capsys)
    assert (rc, o, len(e)) == (2, [], 1), (rc, o, e)
    assert tree_state(out / "mirror") == before
    return e[0]


def test_closed_release_is_unreadable_and_unannounced_until_opened(candidates, capsys):
    out, ids = candidates
    rc, o, e = rel(out, "Beta-1.2", "--allow-unverified", "--closed", capsys=capsys)
    target = out / "mirror" / BETA
    assert (rc, e) == (0, []) and o == [f"Beta-1.2 ({ids['Beta-1.2']}) released into {target} "
                                        "(closed)"]
    assert oct(target.stat().st_mode & 0o777) == "0o700"
    assert _released(out, capsys) == []
    assert "--open: Beta-1.1" in _refused_keeping(out, capsys, "Beta-1.1", "--open")

    rc, o, e = rel(out, "Beta-1.2", "--open", capsys=capsys)
    assert (rc, e) == (0, []) and o == [f"Beta-1.2 ({ids['Beta-1.2']}) opened at {target}"]
    assert oct(target.stat().st_mode & 0o777) == "0o755"
    assert cli.main(["verify", str(target)]) == 0
    capsys.readouterr()
    assert _released(out, capsys) == [("opened", "Beta-1.2")]
    rc, o, _ = rel(out, "Beta-1.2", "--open", capsys=capsys)
    assert rc == 0 and o[0] == f"Beta-1.2 ({ids['Beta-1.2']}) is already open at {target}"
    assert _released(out, capsys) == [("opened", "Beta-1.2")]


def test_the_release_engineers_story_each_step_verifies(candidates, config, capsys):
    """Beta-1.2 released, replaced by Beta-1.3, then RC-1.1 released as Final into releases/19."""
    out, ids = candidates
    beta = out / "mirror" / BETA
    final = out / "mirror" / "fedora/linux/releases/19/Cloud"
    assert rel(out, "Beta-1.2", "--allow-unverified", capsys=capsys)[0] == 0
    assert cli.main(["verify", str(beta)]) == 0
    b3 = run_compose(config, out, "19", "Beta", DATE)
    assert b3.plan.label == "Beta-1.3"
    assert rel(out, "Beta-1.3", "--replace", "--allow-unverified", capsys=capsys)[0] == 0
    assert cli.main(["verify", str(beta)]) == 0
    rc1 = run_compose(config, out, "19", "Final", DATE)
    assert rc1.plan.label == "RC-1.1"
    assert rel(out, "RC-1.1", "--allow-unverified", capsys=capsys)[0] == 0
    assert cli.main(["verify", str(final)]) == 0
    assert (final / "x86_64/images/Fedora-Cloud-Base-19-1.1.x86_64.qcow2").is_file()
    assert json.loads((beta / "metadata/release.json").read_text())["label"] == "Beta-1.3"
    capsys.readouterr()
    assert [(a, label) for a, label in _released(out, capsys)] == [
        ("published", "Beta-1.2"), ("replaced", "Beta-1.3"), ("published", "RC-1.1")]
    pages = out / "mirror" / "fedora/linux/releases/cloud"
    entries = json.loads((pages / "releases.json").read_text())
    assert [e["version"] for e in entries] == ["19"] * 8 + ["19 Beta"] * 8  # newest first
    assert set(entries[0]) == {"version", "arch", "link", "variant", "subvariant", "sha256", "size"}
    for e in entries:  # non-empty: 16 entries; each link reaches its file, of that size
        assert (pages / e["link"]).stat().st_size == int(e["size"])
    page = (pages / "index.html").read_text()
    assert page.index("Fedora 19 Final") < page.index("Fedora 19 Beta") and "Beta-1.3" in page
    # the candidate's page at the top of Cloud/: its links reach the files, it says what it is
    from web_support import links

    tree_page = (final / "index.html").read_bytes()
    files = [h for h in links(tree_page) if not h.startswith(("#", "https://"))]
    assert len(files) > 10 and all((final / h).is_file() for h in files)
    assert (f"Released as Fedora 19 Final from candidate RC-1.1 (<code>{rc1.plan.compose_id}"
            "</code>)") in tree_page.decode() and "Not verified by a boot." in tree_page.decode()


def test_the_dashboard_shows_the_released_candidate_when_and_by_whom(candidates, capsys):
    from starlette.testclient import TestClient

    from rel_eng.config import load_config
    from rel_eng.store.engine import open_engine
    from rel_eng.web.dashboard.app import create_app

    out, ids = candidates
    assert rel(out, "Beta-1.2", "--allow-unverified", "--by", "dora", capsys=capsys)[0] == 0
    engine = open_engine(f"sqlite:///{out / 'rel-eng.db'}")
    try:
        with TestClient(create_app(engine, load_config())) as c:
            api = c.get("/api/schedule").json()["releases"]
            page = c.get("/schedule").text
            detail = c.get(f"/api/composes/{ids['Beta-1.2']}").json()
            compose_page = c.get(f"/composes/{ids['Beta-1.2']}").text
            other_page = c.get(f"/composes/{ids['Beta-1.1']}").text
    finally:
        engine.dispose()
    assert [(r["milestone"], r["label"], r["released_by"], r["state"]) for r in api] == \
        [("Beta", "Beta-1.2", "dora", "open")]
    assert 'id="releases"' in page and "Beta-1.2</a></td><td>open</td>" in page and "dora" in page
    assert [r["label"] for r in detail["releases"]] == ["Beta-1.2"]
    assert 'id="released"' in compose_page
    assert "19 Beta from this candidate (Beta-1.2), open, by dora at " in compose_page
    assert 'id="released"' not in other_page  # a candidate that was not released


def test_a_release_template_outside_the_mirror_is_refused(candidates, tmp_path, capsys):
    out, _ = candidates
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text('[release]\nprerelease_dir = "../../etc/{version}"\n')
    err = _refused(out, capsys, "Beta-1.2", "--allow-unverified", "--config", str(cfg))
    assert "release.prerelease_dir" in err and "must be a relative path inside the mirror" in err
