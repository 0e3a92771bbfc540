"""Per weekly stream (alt/cloud/weekly/<version>/): index.html listing the kept drops newest
first, drops.atom (an Atom feed of drops) and releases.json (one entry per image file and arch,
in the shape of Fedora's releases.json).

Everything is read back from the staged drops themselves (their compose/metadata copies), so the
three files can be rebuilt from the mirror tree alone. Staging calls `write_stream_files` right
after it swaps `latest` and prunes; `rel-eng ec2 publish` calls it again when it adds AMIs. Each
file is replaced by one rename, and each lists only complete (renamed-into-place) drops.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from productmd.images import Images

from rel_eng.atomic import atomic_write
from rel_eng.web.drop_page import PAGE, ami_rows, href
from rel_eng.web.templating import render

log = logging.getLogger(__name__)

INDEX, FEED, RELEASES = "index.html", "drops.atom", "releases.json"


@dataclass
class DropInfo:
    name: str  # directory name = compose id
    compose_id: str
    date: str
    respin: int
    status: str
    bootable: bool
    updated: dt.datetime
    version: str
    variant: str
    images: list[dict] = field(default_factory=list)  # path, arch, subvariant, sha256, size, type
    amis: list[dict] = field(default_factory=list)  # nvra, region, ami_id, launch


def _read(drop: Path) -> DropInfo | None:
    meta = drop / "metadata"
    try:
        summary = json.loads((meta / "rel-eng.json").read_text())
        composeinfo = json.loads((meta / "composeinfo.json").read_text())
        images = Images()
        images.load(str(meta / "images.json"))
    except Exception as exc:  # a drop without readable metadata is listed nowhere, and said so
        log.warning("%s: not listed in the stream index: unreadable metadata (%s)", drop, exc)
        return None
    try:
        amis = json.loads((meta / "ec2.json").read_text())
    except (OSError, ValueError):
        amis = None
    payload = composeinfo.get("payload", {})
    compose = payload.get("compose", {})
    info = DropInfo(
        name=drop.name, compose_id=str(compose.get("id", drop.name)), date=str(compose.get("date", "")),
        respin=int(compose.get("respin", 0) or 0), status=str(summary.get("status", "")),
        bootable=bool(summary.get("bootable")),
        updated=dt.datetime.fromtimestamp((meta / "rel-eng.json").stat().st_mtime, dt.timezone.utc),
        version=str(payload.get("release", {}).get("version", "")),
        variant="")
    for variant, arches in sorted(images.images.items()):
        info.variant = variant
        for arch, imgs in sorted(arches.items()):
            for img in sorted(imgs, key=lambda i: i.path):
                info.images.append({"path": img.path, "arch": arch, "subvariant": img.subvariant,
                                    "sha256": img.checksums.get("sha256", ""), "size": img.size,
                                    "type": img.type, "format": img.format, "variant": variant})
    for nvra in sorted((amis or {}).get("images", {})):
        info.amis += [{"nvra": nvra, **row} for row in ami_rows(amis, nvra)]
    return info


def kept_drops(stream_dir: Path) -> list[DropInfo]:
    """The complete drops of a stream, newest first (compose date, then respin)."""
    if not stream_dir.is_dir():
        return []
    drops = [p for p in stream_dir.iterdir()
             if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    infos = [i for i in map(_read, drops) if i is not None]
    return sorted(infos, key=lambda i: (i.date, i.respin, i.compose_id), reverse=True)


def releases_entries(drops: list[DropInfo]) -> list[dict]:
    """Fedora releases.json entries: version, arch, link, variant, subvariant, sha256, size.
    Links are relative to the stream directory (the mirror's base URL is not ours to know)."""
    return [{"version": d.version, "arch": i["arch"], "link": href(f"{d.name}/{i['path']}"),
             "variant": i["variant"], "subvariant": i["subvariant"], "sha256": i["sha256"],
             "size": str(i["size"])}
            for d in drops for i in d.images]


def write_stream_files(stream_dir: Path) -> list[Path]:
    """Rewrite index.html, drops.atom and releases.json of one weekly stream."""
    drops = kept_drops(stream_dir)
    version = next((d.version for d in drops), stream_dir.name)
    latest = stream_dir / "latest"
    latest_name = latest.readlink().name if latest.is_symlink() else ""
    updated = max((d.updated for d in drops), default=dt.datetime.now(dt.timezone.utc))
    context = {"title": f"Fedora {version} weekly Cloud drops", "version": version,
               "drops": drops, "latest": latest_name, "page": PAGE, "href": href,
               "updated": _atom_time(updated), "atom_time": _atom_time, "feed": FEED,
               "releases": RELEASES}
    out = []
    for name, template in ((RELEASES, None), (FEED, "drops.atom"), (INDEX, "stream.html")):
        text = (json.dumps(releases_entries(drops), indent=2) + "\n") if template is None \
            else render(template, **context)
        target = stream_dir / name
        if not (target.is_file() and target.read_text() == text):  # a rerun rewrites nothing
            atomic_write(target, text)
        out.append(target)
    return out


def _atom_time(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
