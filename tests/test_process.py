import hashlib
import os
import subprocess

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
