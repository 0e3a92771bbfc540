"""Respin and label allocation: --label parsed fully, hostile labels refused with one line and
nothing written, what the mirror holds counts as taken, and two composes started together get
consecutive respins and both finish."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rel_eng.cli import main
from rel_eng.compose import allocate
from rel_eng.errors import InputError

from conftest import ALPHA_DATE


def test_label_keeps_its_major(tmp_path, config):
    plan = allocate(config, tmp_path / "out", "19", "Alpha", ALPHA_DATE, label="Alpha-2.1")
    assert plan.label == "Alpha-2.1"
    assert plan.mirror_path == "alt/stage/19_Alpha-2.1"
    assert {j.release for j in plan.images} == {"2.1"}
    final = allocate(config, tmp_path / "out", "19", "Final", ALPHA_DATE, label="RC-3.4")
    assert final.label == "RC-3.4"


HOSTILE_LABELS = [
    ("Alpha", "Alpha-1.1\n"),        # a trailing newline
    ("Alpha", "Alpha-01.1"),         # leading zero: 19_Alpha-01.1 next to 19_Alpha-1.1
    ("Alpha", "Alpha-0.1"),
    ("Alpha", "Alpha-1.0"),
    ("Alpha", "Alpha-1"),
    ("Alpha", "alpha-1.1"),
    ("Alpha", "Alpha-1.1/../../x"),
    ("Alpha", "Alpha-\u0661.1"),     # an Arabic-Indic digit
    ("Alpha", "Alpha-99999999999999999999.1"),
    ("Alpha", "Beta-1.1"),           # another milestone's label
    ("Final", "Final-1.1"),          # Final ships as RC
    ("Alpha", ""),
    (None, "Alpha-1.1"),             # a weekly has no label
]


def test_a_malformed_label_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    seen = 0
    for i, (milestone, label) in enumerate(HOSTILE_LABELS):
        out = tmp_path / f"out{i}"
        kind = ["--milestone", milestone] if milestone else ["--weekly"]
        rc = main(["compose", "--release", "19" if milestone else "rawhide", *kind,
                   "--date", "2013-04-05", "--output", str(out), "--label", label])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2, (label, err)
        assert len(lines) == 1 and "label" in lines[0], (label, err)
        assert not out.exists(), label
        seen += 1
    assert seen == len(HOSTILE_LABELS) == 13


def test_what_the_mirror_holds_is_taken(tmp_path, config):
    out = tmp_path / "out"
    mirror = out / "mirror"  # the default mirror root
    (mirror / "alt" / "stage" / "19_Alpha-1.1").mkdir(parents=True)  # staged from another output
    (mirror / "alt" / "stage" / "19_Alpha-1.2").mkdir()
    (mirror / "alt" / "stage" / "19_Beta-1.5").mkdir()  # another milestone: not counted
    plan = allocate(config, out, "19", "Alpha", ALPHA_DATE)
    assert plan.label == "Alpha-1.3"
    with pytest.raises(InputError, match="mirror already holds .*19_Alpha-1.2 with label Alpha-1.2"):
        allocate(config, out, "19", "Alpha", ALPHA_DATE, label="Alpha-1.2")

    weekly = mirror / "alt" / "cloud" / "weekly" / "Rawhide"
    (weekly / "Fedora-Cloud-Rawhide-20130405.n.0").mkdir(parents=True)
    (weekly / "Fedora-Cloud-Rawhide-20130405.n.3").mkdir()
    (weekly / "Fedora-Cloud-Rawhide-20130412.n.7").mkdir()  # another day: not counted
    (weekly / "latest").symlink_to("Fedora-Cloud-Rawhide-20130405.n.3")
    plan = allocate(config, out, "rawhide", None, ALPHA_DATE)
    assert plan.compose_id == "Fedora-Cloud-Rawhide-20130405.n.4"


def test_another_taken_source_plugs_in(tmp_path, config):
    from rel_eng.compose.allocate import Taken

    def hub(first):  # e.g. a build system that already holds these names
        return Taken(frozenset({first.compose_id}), {"Alpha-1.1": "the hub already holds X"})

    plan = allocate(config, tmp_path, "19", "Alpha", ALPHA_DATE, sources=[hub])
    assert (plan.compose_id, plan.label) == ("Fedora-Cloud-19-20130405.1", "Alpha-1.2")


def test_two_composes_of_one_milestone_started_together_get_consecutive_respins(tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "rel_eng", "compose", "--release", "19", "--milestone", "Beta",
            "--date", "2013-04-05", "--output", str(out)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    for stdout, stderr, rc in results:  # non-empty: two processes
        assert rc == 0, stderr
    ended = sorted(stdout.split()[:2] for stdout, _, _ in results)
    assert ended == [["Fedora-Cloud-19-20130405.0", "FINISHED"],
                     ["Fedora-Cloud-19-20130405.1", "FINISHED"]]
    staged = sorted(p.name for p in (out / "mirror" / "alt" / "stage").iterdir())
    assert staged == ["19_Beta-1.1", "19_Beta-1.2"]
