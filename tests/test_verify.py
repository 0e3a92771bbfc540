"""`rel-eng verify` on real drops: clean ones pass, every kind of damage is named, one line each."""

import importlib
import shutil
import subprocess

import pytest

from rel_eng import cli
from rel_eng.compose import run_compose
from rel_eng.compose.model import DOOMED
from rel_eng.stage import StageFile
from rel_eng.verify import DropBroken

from conftest import ALPHA_DATE

IMG = "Cloud/x86_64/images"


@pytest.fixture
def drop(alpha_drop, tmp_path):
    """A private copy of the 19 Alpha staged drop, to damage."""
    c, out = alpha_drop
    copy = tmp_path / "19_Alpha-1.1"
    shutil.copytree(out / "mirror" / c.plan.mirror_path, copy, symlinks=True)
    return copy


def _verify(capsys, *args):
    rc = cli.main(["verify", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out.splitlines(), err.splitlines()


def _qcow2(drop):
    return sorted((drop / IMG).glob("*.x86_64.qcow2"))[0]


def test_clean_drop_and_compose_dir_pass(alpha_drop, drop, capsys):
    c, _ = alpha_drop
    for path in (drop, c.topdir):
        rc, out, err = _verify(capsys, path)
        assert (rc, err) == (0, [])
        # the compose dir: 4 images, 2 CHECKSUM files, 2 READMEs and the download page (against
        # web.json); the staged drop: every file its MANIFEST lists (the metadata files too)
        count = 17 if path == drop else 9
        assert out == [f"verified: {path if path == drop else c.topdir / 'compose'}: {count} "
                       "file(s) by size and sha256, 0 signature(s), no stray file"]


def test_one_tampered_byte_is_named(drop, capsys):
    img = _qcow2(drop)
    data = bytearray(img.read_bytes())
    data[len(data) // 2] ^= 1
    img.write_bytes(bytes(data))
    rc, out, err = _verify(capsys, drop)
    assert rc == 1 and err == [f"rel-eng: error: {drop}: 2 problem(s)"]
    assert len(out) == 2 and all(line.startswith(f"{img}: sha256 ") for line in out)
    assert any("images.json says" in line for line in out)
    assert any("CHECKSUM says" in line for line in out)


def test_a_removed_file_is_named(drop, capsys):
    img = _qcow2(drop)
    checksum = next((drop / IMG).glob("*CHECKSUM")).name
    img.unlink()
    rc, out, _ = _verify(capsys, drop)
    assert rc == 1
    assert out == [f"{img}: listed in {w} but missing, not a regular file, or outside the drop"
                   for w in sorted([checksum, "images.json"])]


def test_stray_files_and_symlinks_are_named(drop, tmp_path, capsys):
    (drop / IMG / "notes.txt").write_text("not in any metadata\n")
    (drop / ".19_Alpha-1.1.staging-1-2").mkdir()
    (drop / ".19_Alpha-1.1.staging-1-2" / "x").write_text("left behind")
    (drop / "metadata" / "link.json").symlink_to(drop / "metadata" / "images.json")
    rc, out, _ = _verify(capsys, drop)
    assert rc == 1
    why = "not accounted for by images.json, CHECKSUM or README"
    assert out == sorted([
        f"{drop / IMG / 'notes.txt'}: stray file: {why}",
        f"{drop / '.19_Alpha-1.1.staging-1-2' / 'x'}: stray file: {why}",
        f"{drop / 'metadata' / 'link.json'}: stray symlink: {why}",
    ])


def test_checksum_and_metadata_disagreeing_is_named(drop, capsys):
    ck = next((drop / IMG).glob("*CHECKSUM"))
    lines = ck.read_text().splitlines()
    dropped = lines[:2]  # the first image's size and sum lines
    ck.write_text("\n".join(lines[2:]) + "\nthis is not a checksum line\n")
    name = dropped[0].split(": ")[0][2:]
    rc, out, _ = _verify(capsys, drop)
    assert rc == 1
    assert out == sorted([f"{drop / IMG / name}: in images.json but not in {ck.name}",
                          f"{ck}: line {len(lines) - 1}: not a CHECKSUM entry: "
                          "'this is not a checksum line'"])


def test_not_a_drop_is_bad_input(tmp_path, capsys):
    rc, out, err = _verify(capsys, tmp_path)
    assert (rc, out, len(err)) == (2, [], 1)
    assert err[0].startswith(f"rel-eng: error: {tmp_path}: not a compose dir or a staged drop")
    rc, out, err = _verify(capsys, tmp_path / "missing")
    assert (rc, len(err)) == (2, 1) and "no such directory" in err[0]
    (tmp_path / "a-file").write_text("x")
    rc, out, err = _verify(capsys, tmp_path / "a-file")
    assert (rc, len(err)) == (2, 1) and "not a directory" in err[0]


def test_a_missing_gpg_home_is_bad_input(drop, tmp_path, capsys):
    rc, out, err = _verify(capsys, drop, "--gpg-home", tmp_path / "nope")
    assert (rc, out, len(err)) == (2, [], 1) and "gpg home" in err[0]


@pytest.fixture(scope="module")
def gpg_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    for who in ("verify", "someone-else"):
        subprocess.run(["gpg", "--homedir", str(home), "--batch", "--passphrase", "",
                        "--quick-gen-key", f"rel-eng verify test <{who}@example.org>", "ed25519",
                        "sign", "never"], check=True, capture_output=True)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)


def _clearsign(home, path, who="verify"):
    signed = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes", "--armor",
                             "--local-user", f"{who}@example.org", "--clearsign"],
                            input=path.read_bytes(), check=True, capture_output=True).stdout
    path.write_bytes(signed)


def _reseal(drop) -> None:
    """A new MANIFEST for the drop as it is now: as a restage after a legitimate change."""
    import hashlib

    from rel_eng import drop_manifest

    entries = {rel: ((drop / rel).stat().st_size, hashlib.sha256((drop / rel).read_bytes()).hexdigest())
               for rel in drop_manifest.drop_files(drop)}
    (drop / drop_manifest.NAME).write_text(drop_manifest.render(entries))


def test_signatures_are_checked(drop, gpg_home, capsys):
    for ck in drop.glob("Cloud/*/images/*CHECKSUM"):
        _clearsign(gpg_home, ck)
    _reseal(drop)
    rc, out, _ = _verify(capsys, drop, "--gpg-home", gpg_home)
    assert rc == 0 and "2 signature(s)" in out[0]

    ck = next((drop / IMG).glob("*CHECKSUM"))
    text = ck.read_text()
    head, sig = text.split("-----BEGIN PGP SIGNATURE-----\n")
    body = sig.splitlines()
    body[1] = body[1][:10] + ("A" if body[1][10] != "A" else "B") + body[1][11:]
    ck.write_text(head + "-----BEGIN PGP SIGNATURE-----\n" + "\n".join(body) + "\n")
    rc, out, _ = _verify(capsys, drop, "--gpg-home", gpg_home)
    assert rc == 1 and len(out) == 1 and out[0].startswith(f"{ck}: gpg --verify failed")

    ck.write_text(text + "SHA256 (extra) = " + "0" * 64 + "\n")  # unsigned text after it
    rc, out, _ = _verify(capsys, drop, "--gpg-home", gpg_home)
    assert out == [f"{ck}: text after the signature block"]

    ck.write_text(text)
    other = next(drop.glob("Cloud/i686/images/*CHECKSUM"))
    other.write_text(other.read_text().replace("SHA256", "SHA256", 1).replace(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n",
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# forged: 1 bytes\n"))
    rc, out, _ = _verify(capsys, drop, "--gpg-home", gpg_home)
    assert rc == 1 and any(line.startswith(f"{other}: gpg --verify failed") for line in out)


def test_unsigned_checksum_is_a_problem_when_signing_is_required(drop, capsys):
    rc, out, _ = _verify(capsys, drop, "--require-signed")
    assert rc == 1 and len(out) == 3  # the two CHECKSUM files and the drop's MANIFEST
    assert all(line.endswith(": not signed, but signing is configured") for line in out)


def test_the_compose_verifies_its_staged_drop_before_finishing(tmp_path, config, monkeypatch):
    """A stray file slipped into staging: the compose is DOOMED, never FINISHED."""
    stray = tmp_path / "stray.bin"
    stray.write_bytes(b"not part of the drop")
    finalize_mod = importlib.import_module("rel_eng.compose.finalize")
    real = finalize_mod.stage_files

    def with_stray(c, *deliverables):  # finalize hands over the deliverables it read once
        return real(c, *deliverables) + [StageFile(stray, f"{IMG}/stray.bin", stray.stat().st_size)]

    monkeypatch.setattr(finalize_mod, "stage_files", with_stray)
    with pytest.raises(DropBroken, match=r"stray\.bin: stray file"):
        run_compose(config, tmp_path / "out", "19", "Alpha", ALPHA_DATE)
    topdir = next((tmp_path / "out").glob("Fedora-Cloud-19-*"))
    assert (topdir / "STATUS").read_text().strip() == DOOMED


def test_a_signature_by_another_key_is_named(drop, gpg_home, capsys):
    ck = next((drop / IMG).glob("*CHECKSUM"))
    _clearsign(gpg_home, ck, who="someone-else")
    _clearsign(gpg_home, next(drop.glob("Cloud/i686/images/*CHECKSUM")))
    _reseal(drop)
    rc, out, _ = _verify(capsys, drop, "--gpg-home", gpg_home, "--key", "verify@example.org")
    assert rc == 1 and len(out) == 1
    assert out[0].startswith(f"{ck}: signed by ") and "not by the configured signing key" in out[0]
    rc, out, err = _verify(capsys, drop, "--gpg-home", gpg_home, "--key", "nobody@example.org")
    assert (rc, out, len(err)) == (2, [], 1) and "not in the keyring" in err[0]


def _add_to_checksum(drop, name: str, data: bytes) -> None:
    import hashlib

    (drop / IMG / name).write_bytes(data)
    ck = next((drop / IMG).glob("*CHECKSUM"))
    ck.write_text(ck.read_text() + f"# {name}: {len(data)} bytes\n"
                  f"SHA256 ({name}) = {hashlib.sha256(data).hexdigest()}\n")


def test_a_package_list_vouched_for_by_checksum_alone_verifies(drop, capsys):
    name = "Fedora-Cloud-Base-19_Alpha-1.1.x86_64-packages.txt"
    _add_to_checksum(drop, name, b"bash-5.2-1.x86_64\n")
    _reseal(drop)
    assert _verify(capsys, drop)[0] == 0
    (drop / IMG / name).write_bytes(b"bash-5.2-2.x86_64\n")  # same size, other bytes
    rc, out, _ = _verify(capsys, drop)
    assert rc == 1 and len(out) == 1 and name in out[0] and "sha256" in out[0]


def test_a_disk_image_in_checksum_but_not_in_images_json_is_named(drop, capsys):
    name = "Fedora-Cloud-Base-19_Alpha-1.1.x86_64.raw.xz"
    _add_to_checksum(drop, name, b"\xfd7zXZ\x00 not really\n")
    _reseal(drop)
    rc, out, _ = _verify(capsys, drop)
    assert rc == 1 and out == [f"{drop / IMG / name}: in {next((drop / IMG).glob('*CHECKSUM')).name}"
                               " but not in images.json"]
