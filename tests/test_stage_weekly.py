"""Weekly `latest` and retention go by compose date and respin, never by mtime or run order; a
rerun repairs them; the staging dir is private while it is built."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat

from rel_eng.stage import StageFile, stage

PARENT = "alt/cloud/weekly/Rawhide"


def files_for(tmp_path, cid: str) -> list[StageFile]:
    src = tmp_path / f"src-{cid}"
    src.mkdir()
    data = cid.encode() * 100
    p = src / "disk.qcow2"
    p.write_bytes(data)
    return [StageFile(p, "Cloud/x86_64/images/disk.qcow2", len(data), hashlib.sha256(data).hexdigest())]


def weekly(tmp_path, mirror, cid: str, keep: int = 2):
    return stage(files_for(tmp_path, cid), mirror, f"{PARENT}/{cid}", weekly_retention=keep)


def listing(mirror) -> tuple[list[str], str]:
    parent = mirror / PARENT
    # the drops alone: not `latest`, nor the stream's index.html, drops.atom, releases.json
    names = sorted(p.name for p in parent.iterdir() if p.name != "latest" and p.is_dir())
    return names, os.readlink(parent / "latest")


def cid(day: int, respin: int = 0) -> str:
    return f"Fedora-Cloud-Rawhide-201304{day:02d}.n.{respin}"


def test_a_backfilled_older_weekly_never_moves_latest_back_nor_prunes_a_newer_one(tmp_path):
    mirror = tmp_path / "mirror"
    for name in (cid(12), cid(19)):
        weekly(tmp_path, mirror, name)
    weekly(tmp_path, mirror, cid(5))  # backfill, staged last
    names, latest = listing(mirror)
    assert latest == cid(19)
    assert {cid(12), cid(19)} <= set(names)  # the two newest survive the backfill
    # The next weekly prunes by date: the backfill and 0412 go, whatever their mtimes.
    weekly(tmp_path, mirror, cid(26))
    assert listing(mirror) == (sorted([cid(19), cid(26)]), cid(26))


def test_retention_ignores_mtime_and_orders_respins(tmp_path):
    mirror = tmp_path / "mirror"
    for name in (cid(12, 0), cid(12, 1)):
        weekly(tmp_path, mirror, name)
    # The older respin looks newest by mtime (a touch, an rsync): it must not count as newer.
    os.utime(mirror / PARENT / cid(12, 0), (2_000_000_000, 2_000_000_000))
    weekly(tmp_path, mirror, cid(12, 2))
    assert listing(mirror) == (sorted([cid(12, 1), cid(12, 2)]), cid(12, 2))
    # Respin 10 sorts after respin 9 (numbers, not strings).
    for r in range(3, 11):
        weekly(tmp_path, mirror, cid(12, r))
    assert listing(mirror) == (sorted([cid(12, 9), cid(12, 10)]), cid(12, 10))


def test_a_rerun_repairs_latest_and_retention_a_crash_left_behind(tmp_path):
    mirror = tmp_path / "mirror"
    for name in (cid(5), cid(12)):
        weekly(tmp_path, mirror, name)
    files = files_for(tmp_path, cid(19))
    stage(files, mirror, f"{PARENT}/{cid(19)}", weekly_retention=None)  # crashed before latest/prune
    parent = mirror / PARENT
    assert os.readlink(parent / "latest") == cid(12)
    stage(files, mirror, f"{PARENT}/{cid(19)}", weekly_retention=2)  # the rerun: already staged
    assert listing(mirror) == (sorted([cid(12), cid(19)]), cid(19))
    ino = (parent / "latest").lstat().st_ino
    stage(files, mirror, f"{PARENT}/{cid(19)}", weekly_retention=2)
    assert (parent / "latest").lstat().st_ino == ino  # nothing to repair: nothing rewritten


def test_staging_dir_is_private_while_it_is_built(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    seen = []
    real_chmod = os.chmod

    def spy(path, mode, *a, **kw):
        for parent in [p for p in map(str, [path]) if ".staging-" in p]:
            top = parent[:parent.index(".staging-")]
            top = top + parent[len(top):].split("/", 1)[0]
            seen.append(stat.S_IMODE(os.stat(top).st_mode))
        return real_chmod(path, mode, *a, **kw)

    monkeypatch.setattr(os, "chmod", spy)
    drop = weekly(tmp_path, mirror, cid(5))
    monkeypatch.undo()
    assert seen, "no file was staged through the staging dir"
    assert all(mode & 0o077 == 0 for mode in seen), [oct(m) for m in seen]
    assert stat.S_IMODE(drop.stat().st_mode) == 0o755  # readable once it is the drop


def test_resume_repairs_latest_and_retention_of_a_staged_weekly(tmp_path, config):
    import dataclasses

    from rel_eng.compose import Compose, resume, run_compose

    from conftest import ALPHA_DATE

    cfg = dataclasses.replace(config, weekly_retention=1)
    older = run_compose(cfg, tmp_path, "rawhide", None, ALPHA_DATE)
    newer = run_compose(cfg, tmp_path, "rawhide", None, ALPHA_DATE)
    parent = tmp_path / "mirror" / PARENT
    assert os.readlink(parent / "latest") == newer.plan.compose_id
    # A crash between the rename and `latest`/retention leaves the older drop and `latest` on it.
    shutil.copytree(parent / newer.plan.compose_id, parent / older.plan.compose_id)
    os.unlink(parent / "latest")
    os.symlink(older.plan.compose_id, parent / "latest")
    (newer.topdir / "STATUS").write_text("STARTED\n")
    resume(Compose.load(newer.topdir), tmp_path / "mirror")
    assert listing(tmp_path / "mirror") == ([newer.plan.compose_id], newer.plan.compose_id)
