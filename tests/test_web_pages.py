"""The static pages staged with every drop: the download page, and per weekly stream an index,
an Atom feed and releases.json. Checked the way a mirror user meets them: on disk, parsed
strictly, every link followed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import feedparser
import jsonschema
import pytest

from rel_eng.compose import refresh_staged, run_compose
from rel_eng.config import load_config
from rel_eng.errors import ConfigError
from rel_eng.web import drop_page
from rel_eng.web.drop_page import drop_context, render_drop_page

from conftest import write
from web_support import check_links, ec2_document, launch_target, links, strict_parse, text_of, write_json

DATES = (dt.date(2013, 4, 1), dt.date(2013, 4, 8), dt.date(2013, 4, 15))

# Fedora's releases.json entry, as this project writes it (links relative to the stream dir).
RELEASES_SCHEMA = {
    "type": "array", "minItems": 1,
    "items": {
        "type": "object", "additionalProperties": False,
        "required": ["version", "arch", "link", "variant", "subvariant", "sha256", "size"],
        "properties": {
            "version": {"type": "string", "minLength": 1},
            "arch": {"enum": ["i686", "x86_64"]},
            "link": {"type": "string", "pattern": r"^[^/:?#][^?#]*$"},
            "variant": {"type": "string", "minLength": 1},
            "subvariant": {"type": "string", "minLength": 1},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "size": {"type": "string", "pattern": "^[0-9]+$"},
        },
    },
}


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """Three weeklies of rawhide with retention 2: the stream keeps the two newest."""
    out = tmp_path_factory.mktemp("weekly")
    config = dataclasses.replace(load_config(), weekly_retention=2)
    composes = [run_compose(config, out, "rawhide", None, d) for d in DATES]
    return out / "mirror" / "alt" / "cloud" / "weekly" / "Rawhide", composes


def test_drop_page_shows_each_file_size_sha256_and_how_to_verify(stream):
    stream_dir, composes = stream
    c = composes[-1]
    drop = stream_dir / c.plan.compose_id
    page = (drop / "index.html").read_bytes()
    text = text_of(page)
    images = json.loads((drop / "metadata" / "images.json").read_text())["payload"]["images"]
    files = [img for arches in images["Cloud"].values() for img in arches]
    assert len(files) == 8
    for img in files:
        name = Path(img["path"]).name
        assert f"{name} " in text and f"({img['size']} bytes)" in text
        assert img["checksums"]["sha256"] in text
        # Readable without CSS: a file's name, then its size, then its digest, in that order.
        at = text.index(name)
        assert at < text.index(f"({img['size']} bytes)", at) < text.index(img["checksums"]["sha256"], at)
    for job in c.plan.images:
        assert f"{job.description}." in text and job.nvra in text
    for arch in ("i686", "x86_64"):
        assert f"sha256sum -c --ignore-missing {c.plan.checksum_name(arch)}" in text
    assert "Log in as fedora" in text
    assert "These images are NOT bootable." in text  # synthetic builder
    # The boot gate skipped each synthetic image as not bootable: said so, never as a pass.
    skipped = "Skipped by the boot test : not bootable (not booted; this is not a pass)"
    assert text.count(skipped) == len(c.plan.images)
    assert b"verdict verdict-pass" not in page and "Not boot-tested." not in text
    readmes = sorted(drop.rglob("README"))
    assert len(readmes) == len(c.plan.arches())
    for readme in readmes:
        body = readme.read_text()
        section = body.split("\nBoot test\n", 1)[1]
        nvras = [j.nvra for j in c.plan.images if f"/{j.arch}/" in f"/{readme.relative_to(drop)}"]
        assert nvras and all(f"{n}: skipped: not bootable (not booted; this is not a pass)"
                             in section for n in nvras)
        assert "PASS" not in section
    assert "No AMIs have been published for this drop." in text
    assert b" style=" not in page  # nothing is laid out by inline styles


def test_every_link_of_every_page_resolves_in_the_mirror(stream):
    stream_dir, composes = stream
    kept = sorted(p.name for p in stream_dir.iterdir() if p.is_dir() and not p.is_symlink())
    assert kept == sorted(c.plan.compose_id for c in composes[1:])
    for name in kept:
        files, launches = check_links(stream_dir / name / "index.html", stream_dir / name)
        assert files == 8 + 2 + 4 and launches == 0  # images, CHECKSUMs, metadata files
    files, _ = check_links(stream_dir / "index.html", stream_dir)
    assert files == len(kept) + 1 + 2  # each drop, latest, the feed and releases.json


def test_stream_index_lists_kept_drops_newest_first_and_latest(stream):
    stream_dir, composes = stream
    hrefs = [h for h in links((stream_dir / "index.html").read_bytes()) if h.endswith("/index.html")]
    newest, older = composes[2].plan.compose_id, composes[1].plan.compose_id
    assert hrefs == ["latest/index.html", f"{newest}/index.html", f"{older}/index.html"]
    assert (stream_dir / "latest").readlink().name == newest
    assert composes[0].plan.compose_id not in (stream_dir / "index.html").read_text()  # pruned


def test_pages_are_listed_in_the_drop_metadata(stream):
    stream_dir, composes = stream
    drop = stream_dir / composes[-1].plan.compose_id
    listing = json.loads((drop / "metadata" / "web.json").read_text())
    data = (drop / "index.html").read_bytes()
    assert listing["pages"] == {"index.html": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}}
    assert listing["stream"] == ["../index.html", "../drops.atom", "../releases.json"]
    for rel in listing["stream"]:
        assert (drop / rel).is_file()


def test_feed_parses_and_lists_the_kept_drops(stream):
    stream_dir, composes = stream
    feed = feedparser.parse(str(stream_dir / "drops.atom"))
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert [e.id for e in feed.entries] == [f"urn:rel-eng:compose:{c.plan.compose_id}"
                                            for c in reversed(composes[1:])]
    for e in feed.entries:
        assert (stream_dir / e.link).is_file()
        assert "not bootable" in e.summary


def test_releases_json_matches_the_schema_and_the_files(stream):
    stream_dir, composes = stream
    entries = json.loads((stream_dir / "releases.json").read_text())
    jsonschema.validate(entries, RELEASES_SCHEMA)
    assert len(entries) == 2 * 8  # one per image file and arch, of each kept drop
    assert entries[0]["link"].startswith(composes[-1].plan.compose_id + "/")
    for e in entries:
        data = (stream_dir / e["link"]).read_bytes()
        assert (str(len(data)), hashlib.sha256(data).hexdigest()) == (e["size"], e["sha256"])
        assert e["version"] == "Rawhide" and e["variant"] == "Cloud"


def test_a_late_ec2_publish_rewrites_page_feed_and_listing(tmp_path):
    out = tmp_path / "out"
    c = run_compose(load_config(), out, "rawhide", None, DATES[0])
    stream_dir = out / "mirror" / "alt" / "cloud" / "weekly" / "Rawhide"
    drop = stream_dir / c.plan.compose_id
    before = (drop / "index.html").read_bytes()
    ec2 = ec2_document(c.plan)
    from rel_eng.compose import written

    with written.recording(c):  # what `rel-eng ec2 publish` leaves behind, its digest recorded
        write_json(c.metadir / "ec2.json", ec2)
    assert refresh_staged(c, out / "mirror") == drop
    page = (drop / "index.html").read_bytes()
    assert page != before
    files, launches = check_links(drop / "index.html", drop, ec2)
    assert launches == 4 and files == 8 + 2 + 5  # ec2.json is staged and linked now
    targets = {launch_target(h) for h in links(page) if h.startswith("https://")}
    assert targets == {(r, a) for info in ec2["images"].values() for r, a in info["regions"].items()}
    listing = json.loads((drop / "metadata" / "web.json").read_text())
    assert listing["pages"]["index.html"]["sha256"] == hashlib.sha256(page).hexdigest()
    assert json.loads((drop / "metadata" / "ec2.json").read_text()) == ec2
    feed = feedparser.parse(str(stream_dir / "drops.atom"))
    assert "4 AMIs" in feed.entries[0].summary
    assert "<td>4</td>" in (stream_dir / "index.html").read_text()


def test_a_milestone_drop_has_its_page_and_no_stream_files(alpha_drop):
    c, out = alpha_drop
    drop = out / "mirror" / c.plan.mirror_path
    files, _ = check_links(drop / "index.html", drop)
    assert files == 8 + 2 + 4
    assert "Fedora 19 Cloud images (Alpha-1.1)" in text_of((drop / "index.html").read_bytes())
    assert not any((drop.parent / n).exists() for n in drop_page.STREAM_FILES)
    assert json.loads((drop / "metadata" / "web.json").read_text())["stream"] == []


def test_a_release_named_script_is_escaped_everywhere(tmp_path):
    """A release whose version is `<script>` is refused up front (it becomes a path); an image
    description full of markup reaches the pages, escaped."""
    evil = write(tmp_path / "evil.toml", '[releases.evil]\nversion = "<script>"\n'
                 'fedora_version = 20\ninstall_tree = "https://example.org/$arch/os/"\n')
    with pytest.raises(ConfigError, match="releases.evil.version: '<script>' may hold only"):
        load_config(None, evil)
    releases = write(tmp_path / "releases.toml", '[releases.evil]\nversion = "20"\n'
                     'fedora_version = 20\ninstall_tree = "https://example.org/$arch/os/"\n')
    write(tmp_path / "streams.toml", "")
    cfg = write(tmp_path / "config.toml",
                '[images.generic]\ndescription = "<script>alert(\'desc\')</script> & \\"q\\""\n'
                '[schedule]\nstreams_file = "streams.toml"\n')
    config = load_config(cfg, releases)
    out = tmp_path / "out"
    c = run_compose(config, out, "evil", None, DATES[0])
    stream_dir = out / "mirror" / "alt" / "cloud" / "weekly" / "20"
    drop = stream_dir / c.plan.compose_id
    for page in (drop / "index.html", stream_dir / "index.html", stream_dir / "drops.atom"):
        assert "<script" not in page.read_text().lower(), page
    assert "&lt;script&gt;" in (drop / "index.html").read_text()
    text = text_of((drop / "index.html").read_bytes())
    assert "<script>alert('desc')</script> & \"q\"" in text
    check_links(drop / "index.html", drop)  # percent-encoded links still reach the files
    check_links(stream_dir / "index.html", stream_dir)
    feed = feedparser.parse(str(stream_dir / "drops.atom"))
    assert not feed.bozo and feed.feed.title == "Fedora 20 weekly Cloud drops"
    jsonschema.validate(json.loads((stream_dir / "releases.json").read_text()), RELEASES_SCHEMA)


def job_arch(plan):
    return plan.images[0].arch


HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def _context(config, **over):
    from rel_eng.plan import plan_drop

    from rel_eng.manifest import Artifact

    plan = plan_drop(config, "rawhide", date=DATES[0])
    job = plan.images[0]
    files = [Artifact(job.key, job.image_type, job.arch, "qcow2", "deliverable",
                      f"compose/{job.relpath}/{job.outputs[0].filename}", 1024, "0" * 64)]
    args = dict(status=HOSTILE, signed=True, default_user=HOSTILE, bootable=True,
                failed={"generic-i686": HOSTILE}, amis=None, boot_tests=None)
    args.update(over)
    return plan, drop_context(plan, files, **args)


def test_hostile_values_in_every_field_are_escaped(config):
    plan, _ = _context(config)
    ec2 = {"images": {j.nvra: {"regions": {HOSTILE: HOSTILE, "us-east-1": {"ami_id": "ami-0123"}}}
                      for j in plan.images if j.image_type == "ec2"}}
    boot = {"generic-x86_64": {"verdict": HOSTILE, "reason": HOSTILE, "console_log": "javascript:alert(3)"},
            "ec2-x86_64": {"verdict": "passed", "console_log": "Cloud/x86_64/images/console.log"}}
    _, ctx = _context(config, amis=ec2, boot_tests=boot,
                      exists=lambda rel: rel == "Cloud/x86_64/images/console.log")
    html = render_drop_page(ctx)
    strict_parse(html)
    assert "<script" not in html and "<img" not in html and "onerror=alert" not in html.replace("onerror=alert(2)&gt;", "")
    hrefs = links(html)
    assert "javascript:alert(3)" not in hrefs and "Cloud/x86_64/images/console.log" in hrefs
    launches = [launch_target(h) for h in hrefs if h.startswith("https://")]
    assert (HOSTILE, HOSTILE) in launches and ("us-east-1", "ami-0123") in launches
    assert all("<" not in h and '"' not in h for h in hrefs)
    text = text_of(html)
    assert f"Log in as {HOSTILE}" in text and f"failed to build: {HOSTILE}" in text
    assert f"{HOSTILE} : {HOSTILE}" in text  # the boot verdict and its reason, as text
    assert f"gpg --verify {plan.checksum_name(job_arch(plan))}" in text  # signed: check the signature


def test_boot_verdicts_show_only_when_the_summary_has_them(config):
    _, ctx = _context(config, boot_tests=None)
    assert "Boot tests" not in render_drop_page(ctx)
    _, ctx = _context(config, boot_tests=[{"image": "generic-i686", "result": "failed",
                                            "detail": "no login prompt in 300 s"}])
    text = text_of(render_drop_page(ctx))
    assert "Boot tests" in text and "failed : no login prompt in 300 s" in text
    assert text.count("Not boot-tested.") == len(ctx["arches"]) * 2 - 1
    # a verdict names the platform the image was booted as
    _, ctx = _context(config, boot_tests=[{"image": "generic-i686", "status": "pass",
                                            "platform": {"name": "ec2", "label": "ec2 (IMDSv2)"}}])
    assert "pass (booted as ec2 (IMDSv2))" in text_of(render_drop_page(ctx))
