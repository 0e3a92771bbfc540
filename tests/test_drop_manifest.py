"""Every byte verified, metadata included: the digest of each small file of a drop is recorded
when a step writes it, staging copies only what still matches, the staged drop carries a
MANIFEST of every file (signed when signing is on), `verify` checks the drop against it, and a
late rewrite (EC2 publishing, the README's AMI table) restages the drop with a new MANIFEST in
one directory exchange."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rel_eng import drop_manifest, stage
from rel_eng.compose import run_compose, written
from rel_eng.compose.model import DOOMED, Compose
from rel_eng.config import Signing
from rel_eng.verify import verify_tree

from conftest import ALPHA_DATE
from gpg_support import signing_key_home

REL_ENG = [sys.executable, "-m", "rel_eng"]
PASSPHRASE = "manifest-passphrase-90c1"
finalize = importlib.import_module("rel_eng.compose.finalize")  # the package re-exports a function


def _edits(c: Compose) -> dict:
    """What a hand (or a stray process) could change between the writing step and staging."""
    img = c.images_dir("x86_64")
    return {
        "rel-eng.json": lambda: (c.metadir / "rel-eng.json").write_text('{"bootable": true}\n'),
        "composeinfo.json": lambda: (c.metadir / "composeinfo.json").write_text("{}\n"),
        "images.json-appended": lambda: open(c.metadir / "images.json", "a").write(" "),
        "README": lambda: (img / "README").write_text("all images boot; trust us\n"),
        "CHECKSUM": lambda: open(img / c.plan.checksum_name("x86_64"), "a").write("# x\n"),
        "index.html": lambda: (c.topdir / "work" / "web" / "index.html").write_text("<p>hi"),
        "web.json-same-size": lambda: _flip_byte(c.metadir / "web.json"),
        "new-metadata-file": lambda: (c.metadir / "evil.json").write_text("{}\n"),
        "README-replaced-by-symlink": lambda: ((img / "README").unlink(),
                                               (img / "README").symlink_to("/etc/hostname")),
    }


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


EDITS = ["rel-eng.json", "composeinfo.json", "images.json-appended", "README", "CHECKSUM",
         "index.html", "web.json-same-size", "new-metadata-file", "README-replaced-by-symlink"]


@pytest.mark.parametrize("edit", EDITS)
def test_an_edit_between_writing_and_staging_never_reaches_the_mirror(tmp_path, config,
                                                                      monkeypatch, edit):
    real = finalize.stage_drop

    def edit_then_stage(c, mirror_root, progress=None, deliverables=None):
        _edits(c)[edit]()
        return real(c, mirror_root, progress, deliverables)

    monkeypatch.setattr(finalize, "stage_drop", edit_then_stage)
    with pytest.raises(stage.StagingError) as err:
        run_compose(config, tmp_path, "19", "Alpha", ALPHA_DATE)
    assert "not staging it" in str(err.value)
    topdir = tmp_path / "Fedora-Cloud-19-20130405.0"
    assert (topdir / "STATUS").read_text().strip() == DOOMED
    stage_dir = tmp_path / "mirror" / "alt" / "stage"
    left = list(stage_dir.iterdir()) if stage_dir.exists() else []
    assert left == []  # no drop, no leftover


@pytest.fixture()
def alpha(tmp_path, config):
    c = run_compose(config, tmp_path, "19", "Alpha", ALPHA_DATE)
    return c, tmp_path / "mirror" / c.plan.mirror_path


def test_the_staged_drop_lists_every_file_and_verify_checks_them(alpha):
    c, drop = alpha
    entries, problems = drop_manifest.parse((drop / drop_manifest.NAME).read_text())
    assert problems == []
    assert sorted(entries) == drop_manifest.drop_files(drop)
    assert {"metadata/rel-eng.json", "metadata/composeinfo.json", "index.html",
            "Cloud/x86_64/images/README"} <= set(entries)
    rep = verify_tree(drop)
    assert rep.problems == [] and rep.checked == len(entries)
    # `sha256sum -c` reads it as it reads a CHECKSUM file
    subprocess.run(["sha256sum", "--quiet", "-c", drop_manifest.NAME], cwd=drop, check=True)
    # the compose records what its steps wrote, and staged exactly that
    record = written.recorded(c)
    assert record["compose/metadata/rel-eng.json"]["sha256"] == entries["metadata/rel-eng.json"][1]


@pytest.mark.parametrize("tamper,expected", [
    ("rel-eng.json", "metadata/rel-eng.json: sha256"),
    ("README", "README: "),
    ("extra", "metadata/extra.json: stray file"),  # one line per file: the stray check names it
    ("drop-entry", "not listed in metadata/MANIFEST"),
    ("manifest-gone", "metadata/MANIFEST: missing"),
    ("manifest-garbage", "line 2: not a MANIFEST entry"),
    ("manifest-symlink", "metadata/MANIFEST: stray symlink"),
    ("file-deleted", "listed in MANIFEST but missing"),
])
def test_verify_finds_any_change_to_a_staged_drop(alpha, tamper, expected):
    _, drop = alpha
    manifest = drop / drop_manifest.NAME
    meta = drop / "metadata"
    if tamper == "rel-eng.json":
        _flip_byte(meta / "rel-eng.json")  # same size: only the digest tells
    elif tamper == "README":
        (drop / "Cloud/x86_64/images/README").write_text("edited\n")
    elif tamper == "extra":
        (meta / "extra.json").write_text("{}\n")
    elif tamper == "drop-entry":
        text = manifest.read_text().splitlines(keepends=True)
        i = next(n for n, line in enumerate(text) if "metadata/composeinfo.json" in line)
        manifest.write_text("".join(text[:i] + text[i + 2:]))
    elif tamper == "manifest-gone":
        manifest.unlink()
    elif tamper == "manifest-garbage":
        manifest.write_text(manifest.read_text().replace("# ", "#", 2))
    elif tamper == "manifest-symlink":
        data = manifest.read_bytes()
        manifest.unlink()
        (drop.parent / "M").write_bytes(data)
        manifest.symlink_to(drop.parent / "M")
    elif tamper == "file-deleted":
        (meta / "web.json").unlink()
    rep = verify_tree(drop)
    assert any(expected in p for p in rep.problems), rep.problems


def test_a_late_rewrite_restages_the_drop_with_a_new_manifest_at_once(alpha):
    c, drop = alpha
    before = os.stat(drop).st_ino
    old_manifest = (drop / drop_manifest.NAME).read_text()
    held = os.open(drop, os.O_RDONLY | os.O_DIRECTORY)  # a reader inside the old drop
    try:
        ec2 = {"images": {c.plan.images[0].nvra: {"regions": {"us-east-1": "ami-0123456789abcdef0"}}}}
        with written.recording(c):  # as `rel-eng ec2 publish` writes it
            (c.metadir / "ec2.json").write_text(json.dumps(ec2) + "\n")
        assert finalize.refresh_staged(c, drop.parents[2]) == drop
        assert os.stat(drop).st_ino != before  # a new directory, exchanged in one rename
        assert "ami-0123456789abcdef0" in (drop / "metadata" / "ec2.json").read_text()
        entries, _ = drop_manifest.parse((drop / drop_manifest.NAME).read_text())
        assert "metadata/ec2.json" in entries
        assert verify_tree(drop).problems == []
        # the old tree is gone from the mirror, with no leftover beside the drop
        assert sorted(p.name for p in drop.parent.iterdir()) == [drop.name]
        assert old_manifest != (drop / drop_manifest.NAME).read_text()
        # a second refresh with nothing new changes nothing
        again = os.stat(drop).st_ino
        finalize.refresh_staged(c, drop.parents[2])
        assert os.stat(drop).st_ino == again
    finally:
        os.close(held)


def test_restage_refuses_a_changed_image(alpha, tmp_path):
    c, drop = alpha
    files = finalize.stage_files(c)
    image = next(f for f in files if f.rel.endswith(".qcow2"))
    other = tmp_path / "other.qcow2"
    other.write_bytes(b"not the image")
    changed = [dataclasses.replace(image, src=other, size=13, sha256="0" * 64)]
    with pytest.raises(stage.StagingError):
        stage.restage(changed, drop)
    assert verify_tree(drop).problems == []


@pytest.fixture(scope="module")
def gpg_home(tmp_path_factory):
    uid = "rel-eng manifest <manifest@example.org>"
    with signing_key_home(tmp_path_factory, uid, PASSPHRASE) as key:
        yield key


def test_the_manifest_is_signed_when_signing_is_on(tmp_path, config, gpg_home):
    home, pp = gpg_home
    cfg = dataclasses.replace(config, signing=Signing(key="manifest@example.org",
                                                      gpg_home=str(home), passphrase_file=str(pp)))
    c = run_compose(cfg, tmp_path, "19", "Alpha", ALPHA_DATE)
    drop = tmp_path / "mirror" / c.plan.mirror_path
    manifest = drop / drop_manifest.NAME
    assert manifest.read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    rep = verify_tree(drop, str(home), True, "manifest@example.org")
    assert rep.problems == [] and rep.signatures == 3  # two CHECKSUM files and the MANIFEST
    # a restage signs the new MANIFEST again
    with written.recording(c):
        (c.metadir / "ec2.json").write_text('{"images": {}}\n')
    finalize.refresh_staged(c, tmp_path / "mirror")
    assert manifest.read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    assert verify_tree(drop, str(home), True, "manifest@example.org").problems == []
    # a MANIFEST re-written unsigned (or by another key) is a problem once signing is on
    manifest.write_text(drop_manifest.render(drop_manifest.parse(
        __import__("rel_eng.verify", fromlist=["signed_body"]).signed_body(
            manifest.read_text())[0])[0]))
    problems = verify_tree(drop, str(home), True, "manifest@example.org").problems
    assert any("MANIFEST: not signed" in p for p in problems), problems


def test_verify_command_reports_an_edited_staged_file(alpha):
    _, drop = alpha
    (drop / "metadata" / "rel-eng.json").write_text('{"bootable": true}\n')
    proc = subprocess.run([*REL_ENG, "verify", str(drop)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "metadata/rel-eng.json" in proc.stdout + proc.stderr
    assert "no stray file" not in proc.stdout
