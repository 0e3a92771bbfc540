"""The `rel-eng` command as a user runs it: output, exit codes and nothing half-written."""

import json
import os
import shutil
import subprocess
import sys


from rel_eng import paths

from conftest import write


def rel_eng(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "rel_eng", *args], capture_output=True, text=True,
                          env=env, cwd=cwd)


def one_error_line(proc):
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_plan_prints_and_touches_nothing(tmp_path):
    out = tmp_path / "out"
    proc = rel_eng("plan", "--release", "19", "--milestone", "Alpha", "--date", "2013-04-05",
                   "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "compose id:  Fedora-Cloud-19-20130405.0" in proc.stdout
    assert "label:       Alpha-1.1" in proc.stdout
    assert "Fedora-Cloud-Base-EC2-19_Alpha-1.1.i686.raw.tar.xz" in proc.stdout
    assert "fedora-cloud-base-ec2.ks (F19)" in proc.stdout
    assert not out.exists()


def test_plan_json_weekly():
    proc = rel_eng("plan", "--release", "rawhide", "--weekly", "--date", "2013-04-05", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["compose_id"] == "Fedora-Cloud-Rawhide-20130405.n.0"
    assert len(data["images"]) == 4 and data["label"] is None


def test_compose_then_existing_label_is_refused(tmp_path):
    args = ["compose", "--release", "19", "--milestone", "Beta", "--date", "2013-04-05",
            "--output", str(tmp_path)]
    first = rel_eng(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split()[:2] == ["Fedora-Cloud-19-20130405.0", "FINISHED"]
    again = rel_eng(*args, "--label", "Beta-1.1")
    assert again.returncode == 2
    assert "already holds compose Fedora-Cloud-19-20130405.0 with label Beta-1.1" in one_error_line(again)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Fedora-Cloud-19-20130405.0", "mirror", "rel-eng.db"]


def test_unknown_release(tmp_path):
    proc = rel_eng("compose", "--release", "42", "--weekly", "--output", str(tmp_path))
    assert proc.returncode == 2
    assert "unknown release '42' (known: 19, rawhide" in one_error_line(proc)
    assert list(tmp_path.iterdir()) == []


def test_unknown_milestone(tmp_path):
    proc = rel_eng("compose", "--release", "19", "--milestone", "Gamma", "--output", str(tmp_path))
    assert proc.returncode == 2
    assert "invalid choice: 'Gamma'" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_invalid_kickstart_stops_before_anything_is_written(tmp_path):
    ks = tmp_path / "ks"
    shutil.copytree(paths.KICKSTART_DIR, ks)
    base = ks / "fedora-cloud-base.ks"
    base.write_text(base.read_text().replace("selinux --enforcing", "selinux --sometimes"))
    cfg = write(tmp_path / "rel-eng.toml", f'[compose]\nkickstart_dir = "{ks}"\n')
    out = tmp_path / "out"
    proc = rel_eng("compose", "--config", str(cfg), "--release", "19", "--milestone", "Alpha",
                   "--output", str(out))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert f"{base}:" in line and "invalid kickstart for F19" in line and "--sometimes" in line
    assert not out.exists()
    val = rel_eng("validate", "--config", str(cfg))
    assert val.returncode == 2 and "--sometimes" in val.stderr


def test_invalid_config_lists_every_problem(tmp_path):
    cfg = write(tmp_path / "rel-eng.toml", '[compose]\nxz_preset = 12\nweekly_retention = 0\n')
    proc = rel_eng("validate", "--config", str(cfg))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"rel-eng: error: {cfg}: compose.xz_preset: must be 0..9, got 12",
        f"rel-eng: error: {cfg}: compose.weekly_retention: must be at least 1",
    ]


def test_validate_passes_on_shipped_inputs():
    proc = rel_eng("validate")
    assert proc.returncode == 0, proc.stderr
    assert "TDLs from" in proc.stdout and "with oz.TDL" in proc.stdout


def test_missing_tool_names_its_package(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sfdisk", "mkfs.ext4", "debugfs", "tar", "xz", "gpg", "sh"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    env = {**os.environ, "PATH": str(bin_dir)}
    out = tmp_path / "out"
    proc = rel_eng("compose", "--release", "19", "--milestone", "Alpha", "--output", str(out), env=env)
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "rel-eng: error: required tool 'qemu-img' is not installed "
        "(install it with: apt-get install qemu-utils)")
    assert not out.exists()


def test_weekly_compose_with_a_relative_output_dir(tmp_path):
    proc = rel_eng("compose", "--release", "rawhide", "--weekly", "--date", "2013-04-05",
                   "--output", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    weekly = tmp_path / "out" / "mirror" / "alt" / "cloud" / "weekly" / "Rawhide"
    assert (weekly / "latest" / "Cloud" / "x86_64" / "images" / "README").is_file()
    assert (weekly / "latest").resolve().name == "Fedora-Cloud-Rawhide-20130405.n.0"


def test_plan_with_koji_shows_the_hub_calls_for_the_chosen_profile():
    proc = rel_eng("plan", "--release", "19", "--milestone", "Beta", "--date", "2013-04-05",
                   "--builder", "koji", "--koji-profile", "fedora-stg", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["koji_profile"] == "fedora-stg"
    calls = data["builder_calls"]
    assert [c["method"] for c in calls] == ["buildImageOz", "buildImageOz"]
    assert calls[0]["args"][:2] == ["Fedora-Cloud-Base", "19_Beta"]
    assert calls[0]["opts"]["ksversion"] == "F19" and calls[0]["opts"]["release"] == "1.1"


def _into_closed_pipe(*args):
    """Run with stdout a pipe whose reader has gone (as `| head -1` does after one line)."""
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([sys.executable, "-m", "rel_eng", *args], stdout=w,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    return proc


def test_output_into_a_closed_pipe_is_no_traceback(tmp_path):
    for args in (["plan", "--release", "19", "--weekly", "--date", "2013-04-05", "--json"],
                 ["plan", "--release", "19", "--milestone", "Beta", "--date", "2013-04-05"],
                 ["schedule", "--output", str(tmp_path), "--at", "2013-04-05T00:00", "--count", "50"],
                 ["schedule", "--output", str(tmp_path), "--json", "--count", "50"]):
        proc = _into_closed_pipe(*args)
        assert proc.stderr == "", (args, proc.stderr)
        assert proc.returncode == 0, args


def test_head_reads_one_line_of_plan_json():
    plan = subprocess.Popen([sys.executable, "-m", "rel_eng", "plan", "--release", "19", "--weekly",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=plan.stdout, capture_output=True, timeout=120)
    plan.stdout.close()
    assert plan.wait(timeout=120) == 0
    assert head.stdout == b"{\n" and plan.stderr.read() == b""


def test_a_damaged_plan_under_resume_is_one_line_and_debug_shows_the_traceback(tmp_path):
    # plan.json parses but holds the wrong shape: one line, the traceback only with --debug.
    work = tmp_path / "c" / "work"
    work.mkdir(parents=True)
    (work / "plan.json").write_text('{"compose_id": 5}')
    (work / "config.json").write_text("{}")
    proc = rel_eng("compose", "--resume", str(tmp_path / "c"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "damaged" in one_error_line(proc)
    debug = rel_eng("--debug", "compose", "--resume", str(tmp_path / "c"))
    assert "Traceback" in debug.stderr
