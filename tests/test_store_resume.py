"""Crash and resume: a compose SIGKILLed mid-way continues with `rel-eng compose --resume`, redoing
no finished step; the store shows it all. Then `rel-eng status`. SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_support import store_toml, store_url  # noqa: E402,F401

from rel_eng.cli import main  # noqa: E402
from rel_eng.compose import Compose  # noqa: E402
from rel_eng.store.engine import open_engine  # noqa: E402

CRASH_AFTER = 2  # images built and recorded before the compose process dies

# A real compose process whose builder SIGKILLs it while collecting its third image: no handler
# runs, STATUS stays STARTED, exactly as when a build host loses power.
CRASHING_COMPOSE = r"""
import datetime as dt, os, signal, sys
from pathlib import Path
from rel_eng import builders
from rel_eng.builders.synthetic import SyntheticBuilder
from rel_eng.compose import run_compose
from rel_eng.config import load_config
from rel_eng.store.recorder import recorder_for

class Crashing(SyntheticBuilder):
    collected = 0

    def collect(self, handle, request):
        if Crashing.collected == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
        Crashing.collected += 1
        return super().collect(handle, request)

builders.BUILDERS["synthetic"] = Crashing
config, out = load_config(Path(sys.argv[1])), Path(sys.argv[2])
run_compose(config, out, "19", "Beta", dt.date(2013, 5, 28), recorder=recorder_for(config, out))
"""


def crash_a_compose(tmp_path: Path, url: str) -> Path:
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(store_toml(url))
    script = tmp_path / "crashing_compose.py"
    script.write_text(CRASHING_COMPOSE)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(script), str(cfg), str(out), str(CRASH_AFTER)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    [topdir] = [p for p in out.iterdir() if p.name.startswith("Fedora-Cloud-19-")]
    return topdir


def status_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["status", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_crashed_compose_resumes_from_its_last_finished_step(tmp_path, store_url, capsys):  # noqa: F811
    topdir = crash_a_compose(tmp_path, store_url)
    c = Compose.load(topdir)
    cid = c.plan.compose_id
    cfg = ["--config", str(tmp_path / "rel-eng.toml")]
    assert c.read_status() == "STARTED"  # crashed: nobody wrote an end status

    crashed = status_json(capsys, cid, *cfg)
    built = sorted(i["job_key"] for i in crashed["images"] if i["steps"].get("build", {}).get("state") == "done")
    assert len(built) == CRASH_AFTER
    assert crashed["status"] == "STARTED" and [h["status"] for h in crashed["history"]] == ["STARTED"]
    # task ids were recorded the moment the builder had them, before any image finished
    assert all(i["build"]["external_id"] == f"synthetic:{i['nvra']}" for i in crashed["images"])

    raws = {k: c.topdir / c.manifest.artifacts(job_key=k, kind="raw-disk")[0].path for k in built}
    before = {k: (p.stat().st_ino, p.stat().st_mtime_ns) for k, p in raws.items()}

    assert main(["compose", "--resume", str(topdir)]) == 0
    assert capsys.readouterr().out.strip() == f"{cid} FINISHED {topdir}"
    assert Compose.load(topdir).read_status() == "FINISHED"
    # the images built before the crash were not rebuilt: same files, untouched
    assert {k: (p.stat().st_ino, p.stat().st_mtime_ns) for k, p in raws.items()} == before

    resumed = status_json(capsys, cid, *cfg)
    assert [h["status"] for h in resumed["history"]] == ["STARTED", "STARTED", "FINISHED"]
    assert all(i["steps"]["build"]["state"] == i["steps"]["process"]["state"] == "done"
               for i in resumed["images"])
    assert len([a for a in resumed["artifacts"] if a["intent"] == "deliverable"]) == 8

    # resuming a finished compose does nothing
    assert main(["compose", "--resume", cid, "--output", str(topdir.parent)]) == 0
    assert "already ended: nothing to resume" in capsys.readouterr().out
    assert [h["status"] for h in status_json(capsys, cid, *cfg)["history"]] == \
        ["STARTED", "STARTED", "FINISHED"]

    # the plain listing and the human-readable detail
    capsys.readouterr()
    assert main(["status", *cfg]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["COMPOSE", "STATUS", "BUILT", "FAILED", "DONE", "UPDATED", "(UTC)"]
    assert listing[1].split()[:5] == [cid, "FINISHED", "4/4", "0", "4/4"]
    assert main(["status", cid, *cfg]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{cid}: FINISHED\n  19 Beta (Beta-1.1), builder synthetic")
    assert "generic-x86_64   Fedora-Cloud-Base-19_Beta-1.1.x86_64: boottest skipped (skipped: not " \
           "bootable), build done, process done " \
           "[synthetic synthetic:Fedora-Cloud-Base-19_Beta-1.1.x86_64]" in text
    assert text.count(" sha256 ") == 8
    assert text.count(" block-sha256 ") == 4  # every raw disk, as its builder handed it over


def test_status_errors_say_what_and_where(tmp_path, capsys):
    assert main(["status", "--output", str(tmp_path / "nothing-here")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"rel-eng: error: no compose store at {tmp_path / 'nothing-here' / 'rel-eng.db'}"
                           " (pass the --output the composes went to, or [store] url)")


def test_status_of_an_unknown_compose(tmp_path, store_url, capsys):  # noqa: F811
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(store_toml(store_url))
    open_engine(store_url).dispose()  # an empty store
    assert main(["status", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out.strip() == "no composes recorded yet"
    assert main(["status", "Fedora-Cloud-19-20990101.0", "--config", str(cfg)]) == 2
    assert "no compose 'Fedora-Cloud-19-20990101.0' in the store" in capsys.readouterr().err


def test_resume_needs_a_compose_and_the_drop_options_otherwise(tmp_path, capsys):
    assert main(["compose", "--resume", "Fedora-Cloud-19-20990101.0", "--output", str(tmp_path)]) == 2
    assert f"{tmp_path / 'Fedora-Cloud-19-20990101.0'} is not a compose directory" in capsys.readouterr().err
    assert main(["compose", "--output", str(tmp_path)]) == 2
    assert "--release and one of --milestone/--weekly are required" in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default ./out store lands in tmp, never in the repo
