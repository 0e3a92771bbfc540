"""Collecting images: HTTP(S) from topurl with Range resume, unsafe names refused, sparse raw."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
import requests

from rel_eng.builders.koji import KojiBuilder
from rel_eng.builders.koji_download import (NET_CHUNK, Retry, UnsafeFileName, check_name,
                                            download, write_sparse)

from tests.kojihub.fixtures import compose_requests, hub_assets, koji_config, koji_hub  # noqa: F401


def _sha(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _built(hub, tmp_path, milestone="Alpha", release="19", keys=("generic-x86_64",)):
    config = koji_config(hub, tmp_path)
    _c, requests_ = compose_requests(config, tmp_path / "out", release=release,
                                     milestone=milestone)
    requests_ = [r for r in requests_ if r.job.image_type == "generic"]
    builder = KojiBuilder(config)
    handles = builder.submit(requests_)
    assert all(o.ok for o in builder.wait(handles))
    pairs = [(h, r) for h, r in zip(handles, requests_) if h.job_key in keys]
    return builder, pairs


def test_milestone_image_comes_from_the_build_dir_as_a_sparse_raw(koji_hub, tmp_path,
                                                                  hub_assets):
    _certs, images = hub_assets
    builder, [(handle, req)] = _built(koji_hub, tmp_path)
    [art] = builder.collect(handle, req)

    raw = req.topdir / art.path
    assert art.kind == "raw-disk" and art.intent == "build-output"
    assert art.path == f"work/generic-x86_64/{req.job.nvra}.raw"
    assert art.size == raw.stat().st_size == images.raw.stat().st_size
    assert _sha(raw) == _sha(images.raw)
    assert raw.stat().st_blocks * 512 < 8 * 1024 * 1024  # 64 MiB disk, ~4 MiB of data
    assert sorted(p.name for p in req.workdir.iterdir()) == sorted(
        [f"{req.job.nvra}.ks", f"{req.job.nvra}.tdl", f"{req.job.nvra}.raw"])
    gets = [g for g in koji_hub.get_log if g[0].endswith(".raw.xz")]
    assert gets == [(f"packages/Fedora-Cloud-Base/19_Alpha/1.1/images/{req.job.nvra}.raw.xz",
                     None)]


def test_weekly_scratch_image_comes_from_the_task_work_dir(koji_hub, tmp_path):
    builder, [(handle, req)] = _built(koji_hub, tmp_path, milestone=None, release="rawhide")
    builder.collect(handle, req)
    [(path, _range)] = [g for g in koji_hub.get_log if g[0].endswith(".raw.xz")]
    child = builder._children[(int(handle.external_id), "x86_64")]
    assert path == f"work/tasks/{child % 10000}/{child}/{req.job.nvra}.raw.xz"


def test_truncated_download_resumes_with_a_range_request(koji_hub, tmp_path, hub_assets):
    _certs, images = hub_assets
    size = images.raw_xz.stat().st_size
    assert size > 3 * 1024 * 1024  # random data: xz cannot make the served file small
    cut = size // 2
    koji_hub.inject.truncate = {"suffix": ".raw.xz", "at": cut, "times": 1}
    builder, [(handle, req)] = _built(koji_hub, tmp_path)
    [art] = builder.collect(handle, req)

    [rel] = {path for path, _ in koji_hub.get_log if path.endswith(".raw.xz")}
    gets = [rng for path, rng in koji_hub.get_log if path == rel]
    assert len(gets) == 2 and gets[0] is None
    # Resumed where the kept bytes end: at most one 64 KiB read in flight is lost.
    start = int(gets[1].removeprefix("bytes=").removesuffix("-"))
    assert cut - NET_CHUNK <= start <= cut
    # Bytes that crossed the wire twice: what the hub sent beyond the file's size. The second
    # request asked only for the rest, so that is the in-flight read lost at the cut, no more.
    twice = koji_hub.bytes_sent[rel] - size
    assert twice == cut - start
    assert 0 <= twice <= NET_CHUNK
    assert koji_hub.bytes_sent[rel] == cut + (size - start)
    assert _sha(req.topdir / art.path) == _sha(images.raw)


def test_hostile_file_name_is_refused_before_anything_is_written(koji_hub, tmp_path):
    koji_hub.inject.hostile_name = "../../../escaped.raw.xz"
    builder, [(handle, req)] = _built(koji_hub, tmp_path)
    before = sorted(p for p in tmp_path.rglob("*") if "hub" not in p.parts)
    with pytest.raises(UnsafeFileName, match="escaped.raw.xz"):
        builder.collect(handle, req)
    assert sorted(p for p in tmp_path.rglob("*") if "hub" not in p.parts) == before
    assert koji_hub.get_log == []  # not one byte fetched


@pytest.mark.parametrize("name", ["../x.raw.xz", "/etc/passwd", "a/b.raw", "..", ".", "",
                                  ".hidden", "x\\..\\y", "ok..raw", None, 7])
def test_check_name_refuses_anything_but_one_plain_component(name):
    with pytest.raises(UnsafeFileName):
        check_name(name, "koji task 1")


def test_check_name_accepts_koji_image_names():
    name = "Fedora-Cloud-Base-19_Alpha-1.1.x86_64.raw.xz"
    assert check_name(name, "koji task 1") == name


def test_partial_file_from_an_earlier_run_is_resumed(koji_hub, tmp_path, hub_assets):
    _certs, images = hub_assets
    (koji_hub.hub.topdir / "work" / "x").mkdir(parents=True)
    os.link(images.raw_xz, koji_hub.hub.topdir / "work" / "x" / "disk.raw.xz")
    dest = tmp_path / "dl" / "disk.raw.xz"
    dest.parent.mkdir()
    data = images.raw_xz.read_bytes()
    (dest.parent / ".disk.raw.xz.part").write_bytes(data[:123_456])
    download(requests.Session(), f"{koji_hub.topurl}/work/x/disk.raw.xz", dest, len(data),
             Retry(2, 0.01, 0.01), 10, str(koji_hub.certs.ca))
    assert dest.read_bytes() == data
    assert koji_hub.get_log == [("work/x/disk.raw.xz", "bytes=123456-")]
    assert not (dest.parent / ".disk.raw.xz.part").exists()


def test_write_sparse_keeps_data_and_leaves_holes(tmp_path):
    block = os.urandom(4096)
    stream = bytes(3 << 20) + block + bytes(1 << 20) + block + bytes(5000)
    out = tmp_path / "disk.raw"
    assert write_sparse(io.BytesIO(stream), out) == len(stream)
    assert out.read_bytes() == stream
    assert out.stat().st_blocks * 512 <= 256 * 1024


def test_the_raw_disk_carries_its_digest_and_the_hub_checksum_is_checked(koji_hub, tmp_path):
    from tests.oracles import block_sha256

    builder, [(handle, req)] = _built(koji_hub, tmp_path)
    [art] = builder.collect(handle, req)
    assert art.sha256 == block_sha256(req.topdir / art.path)
    methods = [m for m, _inner in koji_hub.rpc_log]
    assert "getBuild" in methods and "listArchives" in methods
    [archive] = [a for a in koji_hub.hub.archives if a["filename"] == f"{req.job.nvra}.raw.xz"]
    assert archive["checksum_type"] == 2  # koji.CHECKSUM_TYPES["sha256"], as import_archive sets


@pytest.mark.parametrize("formats,suffix", [(("qcow2", "raw-xz"), ".raw.xz"),
                                            (("qcow2", "raw"), ".raw")])
def test_a_download_damaged_on_the_way_is_refused_by_the_hub_checksum(koji_hub, tmp_path,
                                                                      formats, suffix):
    from rel_eng.digest import DigestMismatch

    koji_hub.inject.corrupt = {"suffix": suffix, "at": 4096}
    config = koji_config(koji_hub, tmp_path, formats=formats)
    _c, reqs = compose_requests(config, tmp_path / "out")
    reqs = [r for r in reqs if r.job.key == "generic-x86_64"]
    builder = KojiBuilder(config)
    [handle] = builder.submit(reqs)
    assert all(o.ok for o in builder.wait([handle]))
    [archive] = [a for a in koji_hub.hub.archives if a["filename"].endswith(
        f"{reqs[0].job.nvra}{suffix}")]
    with pytest.raises(DigestMismatch) as err:
        builder.collect(handle, reqs[0])
    text = str(err.value)
    assert f"{reqs[0].job.nvra}{suffix}" in text and archive["checksum"] in text
    assert "sha256 is " in text
    assert [p.name for p in reqs[0].workdir.iterdir() if "raw" in p.name] == []  # nothing kept


@pytest.mark.parametrize("algo,ctype", [("md5", 0), ("sha1", 1), ("sha256", 2)])
def test_check_archive_uses_the_checksum_type_the_hub_recorded(tmp_path, algo, ctype):
    from rel_eng.builders.koji_download import DownloadFailed, check_archive
    from rel_eng.digest import DigestMismatch

    data = os.urandom(70_000)
    f = tmp_path / "img.raw.xz"
    f.write_bytes(data)
    record = {"filename": f.name, "size": len(data), "checksum_type": ctype,
              "checksum": hashlib.new(algo, data).hexdigest()}
    check_archive(f, record, "koji task 1")
    with pytest.raises(DigestMismatch, match=f"{algo} is "):
        check_archive(f, {**record, "checksum": hashlib.new(algo, b"x").hexdigest()}, "koji task 1")
    assert not f.exists()  # removed: a rerun fetches it again
    f.write_bytes(data)
    with pytest.raises(DownloadFailed, match="the hub recorded 1 "):
        check_archive(f, {**record, "size": 1}, "koji task 1")
    f.write_bytes(data)
    with pytest.raises(DownloadFailed, match="unusable archive record"):
        check_archive(f, {**record, "checksum_type": 9}, "koji task 1")
