"""One mirror tree shared by several output dirs and hosts: respins allocated under the
mirror's lock and reserved until staged, leftovers that carry their host, and staging that
leaves the modes of directories it did not create alone."""

from __future__ import annotations

import concurrent.futures
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rel_eng import atomic
from rel_eng.compose import allocate_and_create, reserve, run_compose
from rel_eng.compose.run import sweep_leftovers

from conftest import ALPHA_DATE

REL_ENG = [sys.executable, "-m", "rel_eng"]


def test_two_output_dirs_sharing_a_mirror_never_take_one_label(tmp_path, config):
    mirror = tmp_path / "mirror"
    first = allocate_and_create(config, tmp_path / "a", "19", "Beta", ALPHA_DATE, mirror_root=mirror)
    second = allocate_and_create(config, tmp_path / "b", "19", "Beta", ALPHA_DATE, mirror_root=mirror)
    assert (first.plan.label, second.plan.label) == ("Beta-1.1", "Beta-1.2")
    held = reserve.reservations(mirror)
    assert held["alt/stage/19_Beta-1.1"]["compose_id"] == first.plan.compose_id
    assert held["alt/stage/19_Beta-1.2"]["topdir"] == str(second.topdir.resolve())
    # a weekly: the compose id is what is reserved
    w1 = allocate_and_create(config, tmp_path / "a", "19", None, ALPHA_DATE, mirror_root=mirror)
    w2 = allocate_and_create(config, tmp_path / "b", "19", None, ALPHA_DATE, mirror_root=mirror)
    assert w1.plan.compose_id != w2.plan.compose_id


def test_concurrent_composes_from_two_output_dirs_get_distinct_labels(tmp_path):
    """Four real `rel-eng compose` processes at once, two output dirs, one mirror."""
    mirror = tmp_path / "mirror"

    def compose(i: int):
        return subprocess.run([*REL_ENG, "compose", "--release", "19", "--milestone", "Beta",
                               "--date", "2013-04-05", "--output", str(tmp_path / f"out{i % 2}"),
                               "--mirror", str(mirror)], capture_output=True, text=True)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(compose, range(4)))
    assert all(p.returncode == 0 for p in procs), [p.stderr[-500:] for p in procs]
    staged = sorted(p.name for p in (mirror / "alt" / "stage").iterdir())
    assert staged == ["19_Beta-1.1", "19_Beta-1.2", "19_Beta-1.3", "19_Beta-1.4"]
    assert reserve.reservations(mirror) == {}  # each released once its drop was staged
    for name in staged:
        verify = subprocess.run([*REL_ENG, "verify", str(mirror / "alt" / "stage" / name)],
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout


# --- leftovers of other hosts ---

def _foreign_staging(parent: Path, name: str, host: str, started: int) -> Path:
    d = parent / f".{name}.staging-{os.getpid() + 10_000_000}@{host}-{started}"
    d.mkdir(parents=True)
    (d / "partial.qcow2").write_bytes(b"half")
    os.utime(d, (started, started))
    return d


def test_another_hosts_staging_dir_is_kept_until_far_older_than_any_staging(tmp_path, config,
                                                                            monkeypatch):
    monkeypatch.setenv("REL_ENG_HOSTNAME", "host-b")
    c = run_compose(config, tmp_path, "19", "Alpha", ALPHA_DATE)
    parent = tmp_path / "mirror" / "alt" / "stage"
    now = int(time.time())
    live = _foreign_staging(parent, "19_Alpha-1.2", "host-a", now - 60)  # staging right now
    # its pid means nothing here: no process of this host has it, yet it is kept
    assert atomic.leftovers(parent, recursive=False, host="host-b") == []
    assert sweep_leftovers(c, tmp_path / "mirror") == []
    assert live.is_dir()
    # a leftover of this host whose pid is gone is removed at once
    mine = parent / f".19_Alpha-1.3.staging-{os.getpid() + 10_000_000}@host-b-{now}"
    mine.mkdir()
    assert sweep_leftovers(c, tmp_path / "mirror") == [mine]
    # the other host's, once older than the bound (an injected clock), under the mirror's lock
    later = now + atomic.FOREIGN_AFTER_S + 61
    assert atomic.leftovers(parent, recursive=False, host="host-b", now=later,
                            foreign_after_s=atomic.FOREIGN_AFTER_S) == [live]
    assert atomic.leftovers(parent, recursive=False, host="host-b", now=later) == []  # no bound
    old = _foreign_staging(parent, "19_Alpha-1.4", "host-a", now - atomic.FOREIGN_AFTER_S - 5)
    assert sweep_leftovers(c, tmp_path / "mirror") == [old]
    assert live.is_dir() and not old.exists()


@pytest.mark.parametrize("name,host,dead", [
    (".x.tmp-{pid}-deadbeef", None, True),  # an older run's name: this host, by pid
    (".x.tmp-{pid}@here-12345678", "here", True),  # digits-only token, not a time
    (".x.tmp-{pid}@there-12345678", "there", False),
    (".x.staging-{pid}@my-host.example.org-1", "my-host.example.org", False),
    (".x.removing-{pid}@there-1", "there", False),
    (".x.tmp-{me}@here-abcd", "here", False),  # this very process
])
def test_leftover_names_carry_pid_and_host(tmp_path, name, host, dead):
    p = tmp_path / name.format(pid=os.getpid() + 10_000_000, me=os.getpid())
    p.write_text("x")
    m = atomic.LEFTOVER_RE.match(p.name)
    assert m and m["host"] == host
    assert (atomic.leftovers(tmp_path, host="here") == [p]) is dead


def test_temp_names_carry_this_host(monkeypatch):
    monkeypatch.setenv("REL_ENG_HOSTNAME", "build host/7")
    name = atomic.temp_path(Path("/x/README")).name
    assert name.startswith(f".README.tmp-{os.getpid()}@build_host_7-")
    assert atomic.LEFTOVER_RE.match(name)["host"] == "build_host_7"


@pytest.mark.skipif(subprocess.run(["unshare", "--pid", "--fork", "true"],
                                   capture_output=True).returncode != 0,
                    reason="unshare --pid is not permitted here")
def test_a_compose_in_another_pid_namespace_keeps_a_live_staging_dir(tmp_path, config):
    """A writer in another pid namespace (as on another host) whose pid is not ours."""
    parent = tmp_path / "mirror" / "alt" / "stage"
    parent.mkdir(parents=True)
    script = ("import os,time,pathlib,sys;p=pathlib.Path(sys.argv[1])/"
              "f'.19_Alpha-1.2.staging-{os.getpid()}@other-ns-{int(time.time())}';"
              "p.mkdir();print(p,flush=True);time.sleep(60)")
    proc = subprocess.Popen(["unshare", "--pid", "--fork", sys.executable, "-c", script,
                             str(parent)], stdout=subprocess.PIPE, text=True)
    try:
        staging = Path(proc.stdout.readline().strip())
        c = run_compose(config, tmp_path, "19", "Alpha", ALPHA_DATE)
        assert staging.is_dir(), "a live staging dir of another namespace was swept"
        assert sweep_leftovers(c, tmp_path / "mirror") == []
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


# --- modes of a shared mirror ---

def test_staging_keeps_the_modes_of_directories_it_did_not_create(tmp_path, config):
    mirror = tmp_path / "mirror"
    (mirror / "alt").mkdir(parents=True)
    shared = 0o2775  # setgid and group-writable, as a mirror shared by a group is
    os.chmod(mirror, shared | stat.S_ISVTX)
    os.chmod(mirror / "alt", shared)
    old = os.umask(0o077)  # a strict umask must not make what staging creates unreadable
    try:
        c = run_compose(config, tmp_path, "19", "Alpha", ALPHA_DATE)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(mirror).st_mode) == shared | stat.S_ISVTX
    assert stat.S_IMODE(os.stat(mirror / "alt").st_mode) == shared
    created = mirror / "alt" / "stage"
    # created under a setgid parent: world-readable, and the setgid bit inherited
    assert stat.S_IMODE(os.stat(created).st_mode) == 0o2755
    drop = mirror / c.plan.mirror_path
    assert stat.S_IMODE(os.stat(drop).st_mode) & 0o755 == 0o755
