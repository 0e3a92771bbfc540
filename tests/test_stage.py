import hashlib
import os
import re
import threading

import pytest
from productmd.images import Image, Images

from rel_eng import checksums
from rel_eng.errors import Conflict, InputError
from rel_eng.stage import StageFile, StagingError, stage


def _drop(tmp_path, name, payloads):
    """Files for a drop: images with digests, a CHECKSUM over them."""
    src = tmp_path / f"src-{name}"
    src.mkdir()
    files, entries = [], []
    for fname, data in payloads.items():
        p = src / fname
        p.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        files.append(StageFile(p, f"Cloud/x86_64/images/{fname}", len(data), digest))
        entries.append(checksums.Entry(fname, len(data), digest))
    ck = src / "CHECKSUM"
    ck.write_text(checksums.checksum_text(entries))
    files.append(StageFile(ck, "Cloud/x86_64/images/CHECKSUM", ck.stat().st_size))
    images = Images()
    images.compose.id, images.compose.type = "Fedora-Cloud-19-20130405.0", "production"
    images.compose.date, images.compose.respin = "20130405", 0
    for f in (f for f in files if f.sha256):
        img = Image(images)
        img.path, img.size, img.mtime, img.checksums = f.rel, f.size, 0, {"sha256": f.sha256}
        img.arch, img.type, img.format, img.subvariant = "x86_64", "qcow2", "qcow2", f.rel
        img.disc_number = img.disc_count = 1
        img.bootable, img.volume_id, img.implant_md5 = False, None, None
        images.add("Cloud", "x86_64", img)
    images_json = src / "images.json"
    images.dump(str(images_json))
    files.append(StageFile(images_json, "metadata/images.json", images_json.stat().st_size))
    return files


def test_reader_never_sees_a_partial_drop(tmp_path):
    big = {f"img{i}.qcow2": os.urandom(1 << 20) * 24 for i in range(4)}
    files = _drop(tmp_path, "a", big)
    mirror = tmp_path / "mirror"
    target = mirror / "alt" / "stage" / "19_Alpha-1.1"
    seen, bad, stop = [], [], threading.Event()

    def reader():
        while True:
            last = stop.is_set()  # one more look after staging returned
            if target.exists():
                images = target / "Cloud" / "x86_64" / "images"
                text = (images / "CHECKSUM").read_text()
                for name, size in re.findall(r"^# (\S+): (\d+) bytes$", text, re.M):
                    if (images / name).stat().st_size != int(size):
                        bad.append(name)
                seen.append(len(list(images.iterdir())))
            else:
                seen.append(0)
            if last:
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        stage(files, mirror, "alt/stage/19_Alpha-1.1")
    finally:
        stop.set()
        t.join()
    assert not bad
    assert set(seen) <= {0, 5}  # nothing, or all four images plus CHECKSUM
    assert seen.count(0) > 0 and seen[-1] == 5


def test_unchanged_files_are_hardlinked_from_the_previous_respin(tmp_path):
    same = os.urandom(4096)
    mirror = tmp_path / "mirror"
    first = stage(_drop(tmp_path, "a", {"a.qcow2": same, "b.qcow2": b"one"}), mirror, "alt/stage/19_Alpha-1.1")
    second = stage(_drop(tmp_path, "b", {"a2.qcow2": same, "b2.qcow2": b"two"}), mirror, "alt/stage/19_Alpha-1.2")
    img = "Cloud/x86_64/images"
    assert os.path.samefile(first / img / "a.qcow2", second / img / "a2.qcow2")
    assert not os.path.samefile(first / img / "b.qcow2", second / img / "b2.qcow2")


def test_rerun_is_a_no_op_and_a_clash_is_refused(tmp_path):
    mirror = tmp_path / "mirror"
    files = _drop(tmp_path, "a", {"a.qcow2": b"x" * 100})
    first = stage(files, mirror, "alt/stage/19_Alpha-1.1")
    inode = (first / "Cloud/x86_64/images/a.qcow2").stat().st_ino
    assert stage(files, mirror, "alt/stage/19_Alpha-1.1") == first
    assert (first / "Cloud/x86_64/images/a.qcow2").stat().st_ino == inode
    other = _drop(tmp_path, "b", {"a.qcow2": b"y" * 101})
    with pytest.raises(Conflict, match="already exists in the mirror"):
        stage(other, mirror, "alt/stage/19_Alpha-1.1")


def test_a_file_changed_after_recording_is_not_staged(tmp_path):
    mirror = tmp_path / "mirror"
    files = _drop(tmp_path, "a", {"a.qcow2": b"x" * 100})
    files[0].src.write_bytes(b"z" * 100)  # same size, other bytes
    with pytest.raises(StagingError, match="sha256 changed"):
        stage(files, mirror, "alt/stage/19_Alpha-1.1")
    assert list((mirror / "alt" / "stage").iterdir()) == []


IMG = "Cloud/x86_64/images"


def test_a_damaged_earlier_file_of_the_same_size_is_copied_not_linked(tmp_path):
    same = os.urandom(8192)
    mirror = tmp_path / "mirror"
    first = stage(_drop(tmp_path, "a", {"a.qcow2": same}), mirror, "alt/stage/19_Alpha-1.1")
    (first / IMG / "a.qcow2").write_bytes(b"\0" * len(same))  # bit rot, same size
    second = stage(_drop(tmp_path, "b", {"a.qcow2": same}), mirror, "alt/stage/19_Alpha-1.2")
    staged = second / IMG / "a.qcow2"
    assert not os.path.samefile(first / IMG / "a.qcow2", staged)
    assert staged.read_bytes() == same
    assert staged.stat().st_nlink == 1


def test_already_staged_is_decided_by_digest_not_size(tmp_path):
    mirror = tmp_path / "mirror"
    files = _drop(tmp_path, "a", {"a.qcow2": b"x" * 100})
    first = stage(files, mirror, "alt/stage/19_Alpha-1.1")
    (first / IMG / "a.qcow2").write_bytes(b"y" * 100)
    with pytest.raises(Conflict, match=r"a\.qcow2 has sha256 .* expected " + files[0].sha256):
        stage(files, mirror, "alt/stage/19_Alpha-1.1")
    # small files without a recorded digest are compared by content too
    (first / IMG / "a.qcow2").write_bytes(b"x" * 100)
    ck = first / IMG / "CHECKSUM"
    ck.write_text(ck.read_text().replace("SHA256", "SHA512"))
    with pytest.raises(Conflict, match="CHECKSUM has sha256"):
        stage(files, mirror, "alt/stage/19_Alpha-1.1")


def _hostile_metadata(drop, rel_path, data):
    """Rewrite an earlier drop's images.json so its one image points at `rel_path`."""
    meta = drop / "metadata" / "images.json"
    images = Images()
    images.load(str(meta))
    img = images.images["Cloud"]["x86_64"].pop()
    img.path, img.size = rel_path, len(data)
    img.checksums = {"sha256": hashlib.sha256(data).hexdigest()}
    images.images["Cloud"]["x86_64"].add(img)
    os.chmod(meta, 0o644)
    images.dump(str(meta))


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink-out", "symlink-dir-out"])
def test_earlier_metadata_paths_must_stay_inside_their_drop(tmp_path, how):
    secret = os.urandom(4096)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "s.qcow2").write_bytes(secret)
    mirror = tmp_path / "mirror"
    first = stage(_drop(tmp_path, "a", {"a.qcow2": b"old"}), mirror, "alt/stage/19_Alpha-1.1")
    rel = {"dotdot": os.path.relpath(outside / "s.qcow2", first),
           "absolute": str(outside / "s.qcow2"),
           "symlink-out": f"{IMG}/evil.qcow2",
           "symlink-dir-out": "evil/s.qcow2"}[how]
    if how == "symlink-out":
        os.symlink(outside / "s.qcow2", first / IMG / "evil.qcow2")
    if how == "symlink-dir-out":
        os.symlink(outside, first / "evil")
    _hostile_metadata(first, rel, secret)
    second = stage(_drop(tmp_path, "b", {"s.qcow2": secret}), mirror, "alt/stage/19_Alpha-1.2")
    staged = second / IMG / "s.qcow2"
    assert not os.path.samefile(outside / "s.qcow2", staged)
    assert staged.read_bytes() == secret and not staged.is_symlink()
    assert (outside / "s.qcow2").stat().st_nlink == 1


def test_a_symlink_in_the_mirror_path_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    os.chmod(outside, 0o700)
    mirror = tmp_path / "mirror"
    (mirror / "alt").mkdir(parents=True)
    os.symlink(outside, mirror / "alt" / "stage")
    with pytest.raises(InputError, match=r"alt/stage is a symlink; refusing"):
        stage(_drop(tmp_path, "a", {"a.qcow2": b"x"}), mirror, "alt/stage/19_Alpha-1.1")
    assert outside.stat().st_mode & 0o777 == 0o700
    assert list(outside.iterdir()) == []


def test_a_symlink_as_the_drop_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    mirror = tmp_path / "mirror"
    (mirror / "alt" / "stage").mkdir(parents=True)
    os.symlink(outside, mirror / "alt" / "stage" / "19_Alpha-1.1")
    with pytest.raises(InputError, match="is a symlink"):
        stage(_drop(tmp_path, "a", {"a.qcow2": b"x"}), mirror, "alt/stage/19_Alpha-1.1")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("bad", ["../outside/19_Alpha-1.1", "alt/../../x", "/abs/drop"])
def test_a_mirror_path_that_leaves_the_mirror_is_refused(tmp_path, bad):
    mirror = tmp_path / "m" / "mirror"
    with pytest.raises(InputError, match="would leave the mirror root"):
        stage(_drop(tmp_path, "a", {"a.qcow2": b"x"}), mirror, bad)
    assert not (tmp_path / "m" / "outside").exists() and not (tmp_path / "x").exists()
