"""The release trees' own pages: index.html and releases.json in `[release] pages_dir`, listing
every open release (the newest first), releases.json in the shape of Fedora's (version, arch,
link, variant, subvariant, sha256, size). Rebuilt from the store's releases and the trees' own
metadata after every release act; each file replaced by one rename. Closed and withdrawn
releases are not listed. The weekly streams' pages are left alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rel_eng.atomic import atomic_write
from rel_eng.web.drop_page import href
from rel_eng.web.stream import _read
from rel_eng.web.templating import render

INDEX, RELEASES = "index.html", "releases.json"


def write_release_pages(mirror_root: Path, pages_dir: str, rows: list[dict]) -> list[Path]:
    """`rows`: the store's releases, newest first (rel_eng.release.record.released)."""
    pages = mirror_root / pages_dir
    pages.mkdir(parents=True, exist_ok=True)
    listed, entries = [], []
    for r in rows:
        tree = mirror_root / r["mirror_path"]
        if r["state"] != "open" or not tree.is_dir():
            continue
        info = _read(tree)
        if info is None:
            continue
        base = os.path.relpath(tree.parent, pages)  # images.json paths start at the release dir
        version = r["release_key"] if r["milestone"] == "Final" else \
            f"{r['release_key']} {r['milestone']}"
        entries += [{"version": version, "arch": i["arch"], "link": href(f"{base}/{i['path']}"),
                     "variant": i["variant"], "subvariant": i["subvariant"],
                     "sha256": i["sha256"], "size": str(i["size"])} for i in info.images]
        listed.append({**r, "release": r["release_key"], "images": len(info.images),
                       "link": href(os.path.relpath(tree, pages))})
    out = []
    for name, text in ((RELEASES, json.dumps(entries, indent=2) + "\n"),
                       (INDEX, render("releases.html", title="Fedora Cloud releases",
                                      rows=listed, releases=RELEASES))):
        target = pages / name
        if not (target.is_file() and target.read_text() == text):
            atomic_write(target, text)
        out.append(target)
    return out
