import hashlib
import os
import subprocess

import pytest

from rel_eng.process import to_qcow2, to_raw_tar_xz


def _sparse_raw(path, size=256 << 20):
    with open(path, "wb") as fh:
        fh.truncate(size)
        for off in (0, 64 << 20, size - (1 << 20)):
            fh.seek(off)
            fh.write(os.urandom(300_000) + b"text " * 20_000)
    return path


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_raw_tar_xz_holds_the_raw_as_sparse_member_and_digest_matches(tmp_path):
    raw = _sparse_raw(tmp_path / "disk.raw")
    out = tmp_path / "img.raw.tar.xz"
    w = to_raw_tar_xz(raw, out, "Fedora-Cloud-Base-19-1.1.x86_64.raw", preset=1)
    assert (w.size, w.sha256) == (out.stat().st_size, _sha(out))
    listing = subprocess.run(["tar", "-tvf", str(out)], capture_output=True, text=True, check=True).stdout
    assert "Fedora-Cloud-Base-19-1.1.x86_64.raw" in listing and str(256 << 20) in listing
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run(["tar", "-xSf", str(out), "-C", str(extract)], check=True)
    member = extract / "Fedora-Cloud-Base-19-1.1.x86_64.raw"
    assert member.read_bytes() == raw.read_bytes()
    assert member.stat().st_blocks * 512 < 16 << 20  # restored sparse
    assert not list(tmp_path.glob(".*.part"))


def test_qcow2_is_valid_and_holds_the_same_disk(tmp_path):
    raw = _sparse_raw(tmp_path / "disk.raw")
    out = tmp_path / "img.qcow2"
    w = to_qcow2(raw, out)
    assert (w.size, w.sha256) == (out.stat().st_size, _sha(out))
    subprocess.run(["qemu-img", "check", str(out)], check=True, capture_output=True)
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(out)],
                   check=True, capture_output=True)
    assert out.stat().st_size < 16 << 20  # only data clusters, not the virtual size


def test_same_input_gives_same_bytes(tmp_path):
    raw = _sparse_raw(tmp_path / "disk.raw")
    a = to_raw_tar_xz(raw, tmp_path / "a.tar.xz", "m.raw", preset=1, epoch=1365120000)
    b = to_raw_tar_xz(raw, tmp_path / "b.tar.xz", "m.raw", preset=1, epoch=1365120000)
    assert a.sha256 == b.sha256


def _built_compose(tmp_path, config):
    import dataclasses
    import datetime as dt

    from rel_eng import compose as steps

    # 1 GiB: the oracle reads every byte of the disk, holes included
    config = dataclasses.replace(config, disk_size_gib=1)
    plan = steps.allocate(config, tmp_path, "19", "Alpha", dt.date(2013, 4, 5))
    c = steps.create(config, plan, tmp_path, steps.prepare_inputs(config, plan))
    outcomes = steps.build(c, ["generic-x86_64"])
    assert outcomes["generic-x86_64"].ok
    return c


def test_the_builder_hands_over_the_raw_disk_with_its_digest(tmp_path, config):
    from tests.oracles import block_sha256

    c = _built_compose(tmp_path, config)
    [raw] = c.manifest.artifacts(job_key="generic-x86_64", kind="raw-disk")
    path = c.topdir / raw.path
    # the block digest as hashlib computes it over every byte, holes included
    assert raw.sha256 == block_sha256(path) and raw.size == path.stat().st_size


def test_post_processing_refuses_a_raw_disk_changed_since_the_build(tmp_path, config):
    from rel_eng import compose as steps
    from rel_eng.digest import DigestMismatch
    from tests.oracles import block_sha256

    c = _built_compose(tmp_path, config)
    [raw] = c.manifest.artifacts(job_key="generic-x86_64", kind="raw-disk")
    path = c.topdir / raw.path
    with open(path, "r+b") as fh:  # one byte, same size: a damaged or swapped disk
        fh.seek(1 << 20)
        byte = fh.read(1)
        fh.seek(1 << 20)
        fh.write(bytes([byte[0] ^ 1]))
    with pytest.raises(DigestMismatch) as err:
        steps.process(c, "generic-x86_64")
    text = str(err.value)
    assert str(path) in text and raw.sha256 in text and block_sha256(path) in text
    assert c.manifest.artifacts(intent="deliverable") == []
    assert sorted(p.name for p in c.images_dir("x86_64").iterdir()) == []
    assert not c.manifest.step_done("process:generic-x86_64", "") and \
        c.manifest.read()["steps"].get("process:generic-x86_64") is None


def test_post_processing_refuses_a_raw_disk_without_a_recorded_digest(tmp_path, config):
    import dataclasses

    from rel_eng import compose as steps
    from rel_eng.errors import RelEngError

    c = _built_compose(tmp_path, config)
    [raw] = c.manifest.artifacts(job_key="generic-x86_64", kind="raw-disk")
    c.manifest.add_artifacts([dataclasses.replace(raw, sha256="")])
    with pytest.raises(RelEngError, match="no digest recorded for this raw disk"):
        steps.process(c, "generic-x86_64")


def _qcow2_facts(path):
    """(compression type in the header, compressed clusters) as qemu-img reports them."""
    import json

    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)],
                                     check=True, capture_output=True, text=True).stdout)
    check = json.loads(subprocess.run(["qemu-img", "check", "--output=json", str(path)],
                                      check=True, capture_output=True, text=True).stdout)
    data = info["format-specific"]["data"]
    return data["compat"], data.get("compression-type"), check.get("compressed-clusters", 0)


def test_qcow2_is_compressed_by_default_and_still_checks_clean(tmp_path):
    raw = _sparse_raw(tmp_path / "disk.raw")
    plain = to_qcow2(raw, tmp_path / "plain.qcow2", "none")
    packed = to_qcow2(raw, tmp_path / "img.qcow2")  # the default: zlib
    compat, ctype, clusters = _qcow2_facts(packed.path)
    assert (compat, ctype) == ("1.1", "zlib") and clusters > 0
    assert _qcow2_facts(plain.path)[2] == 0
    assert packed.size < plain.size  # the text half compresses
    assert (packed.size, packed.sha256) == (packed.path.stat().st_size, _sha(packed.path))
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(packed.path)],
                   check=True, capture_output=True)


def test_zstd_qcow2_says_so_in_its_header(tmp_path):
    raw = _sparse_raw(tmp_path / "disk.raw")
    w = to_qcow2(raw, tmp_path / "img.qcow2", "zstd")
    compat, ctype, clusters = _qcow2_facts(w.path)
    assert (compat, ctype) == ("1.1", "zstd") and clusters > 0
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(w.path)],
                   check=True, capture_output=True)


def test_qcow2_argv_per_compression(tmp_path):
    from rel_eng.process import qcow2_argv

    a, b = tmp_path / "a.raw", tmp_path / "b.qcow2"
    tail = [str(a), str(b)]
    base = ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-o"]
    assert qcow2_argv(a, b) == base + ["compat=1.1", "-c"] + tail
    assert qcow2_argv(a, b, "zstd") == base + ["compat=1.1,compression_type=zstd", "-c"] + tail
    assert qcow2_argv(a, b, "none") == base + ["compat=1.1"] + tail
    import pytest

    from rel_eng.errors import InputError

    with pytest.raises(InputError, match="use zlib, zstd, none") as exc:
        qcow2_argv(a, b, "lz4; rm -rf /")
    assert exc.value.exit_code == 2


def test_raw_xz_is_the_raw_disk_compressed_alone(tmp_path):
    from rel_eng.process import to_raw_xz

    raw = _sparse_raw(tmp_path / "disk.raw", size=64 << 20)
    w = to_raw_xz(raw, tmp_path / "img.raw.xz", preset=1)
    assert (w.size, w.sha256) == (w.path.stat().st_size, _sha(w.path))
    out = subprocess.run(["xz", "-dc", str(w.path)], check=True, capture_output=True).stdout
    assert out == raw.read_bytes()
    assert not list(tmp_path.glob(".*.part"))
