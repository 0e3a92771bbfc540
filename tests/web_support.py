"""Helpers for the web tests: links of a page, checked against the drop on disk and ec2.json;
an ec2.json in the EC2 publisher's shape; a strict HTML5 parse."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import html5lib

LAUNCH_PREFIX = "https://console.aws.amazon.com/ec2/home"


def strict_parse(data: bytes | str):
    """html5lib in strict mode raises on the first parse error; returns the tree."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(data)


def links(data: bytes | str) -> list[str]:
    tree = strict_parse(data)
    out = [a.get("href") for a in tree.iter("a") if a.get("href") is not None]
    out += [el.get("href") for el in tree.iter("link") if el.get("href")]
    out += [el.get("src") for el in tree.iter("script") if el.get("src")]
    return out


def text_of(data: bytes | str) -> str:
    """What a reader without CSS sees: the text of <body> in document order (one space
    between elements)."""
    tree = strict_parse(data)
    body = tree.find("body")
    return " ".join(" ".join(body.itertext()).split())


def launch_target(url: str) -> tuple[str, str]:
    """(region, AMI id) of an EC2 console launch link."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == LAUNCH_PREFIX, url
    region = parse_qs(parts.query)["region"]
    assert len(region) == 1, url
    assert parts.fragment.startswith("LaunchInstances:ami="), url
    return region[0], unquote(parts.fragment.split("=", 1)[1])


def amis_in(ec2: dict | None) -> set[tuple[str, str]]:
    out = set()
    for info in (ec2 or {}).get("images", {}).values():
        for region, ami in info.get("regions", {}).items():
            out.add((region, ami["ami_id"] if isinstance(ami, dict) else ami))
    return out


def check_links(page: Path, root: Path, ec2: dict | None = None) -> tuple[int, int]:
    """Every link on `page` resolves to a file under `root` (no escaping it) or is an EC2 launch
    link of an AMI in `ec2`; in-page anchors must name an element. Returns (files, launches)."""
    data = page.read_bytes()
    tree = strict_parse(data)
    ids = {el.get("id") for el in tree.iter() if el.get("id")}
    files = launches = 0
    for href in links(data):
        if href.startswith("#"):
            assert href[1:] in ids, f"{page}: dangling anchor {href}"
            continue
        if href.startswith("https://"):
            assert launch_target(href) in amis_in(ec2), f"{page}: {href} is no AMI of ec2.json"
            launches += 1
            continue
        parts = urlsplit(href)
        assert not parts.scheme and not parts.netloc and not parts.query, f"{page}: {href}"
        target = (page.parent / unquote(parts.path)).resolve()
        assert target.is_relative_to(root.resolve()), f"{page}: {href} leaves {root}"
        assert target.is_file(), f"{page}: {href} -> {target} is not a file"
        files += 1
    return files, launches


def ec2_document(plan, regions=("us-east-1", "eu-west-1")) -> dict:
    """compose/metadata/ec2.json as ec2_publish.results_document writes it."""
    images = {}
    for n, job in enumerate(j for j in plan.images if j.image_type == "ec2"):
        amis = {r: f"ami-{n:02d}{i:015x}" for i, r in enumerate(regions)}
        images[job.nvra] = {"arch": job.arch, "architecture": "x86_64", "subvariant": job.subvariant,
                            "name": job.name, "snapshot_id": f"snap-{n:017x}", "volume_size_gib": 3,
                            "public": True, "deprecate_at": None, "regions": amis,
                            "snapshots": {r: [f"snap-{n:017x}"] for r in regions}}
    return {"compose_id": plan.compose_id, "base_region": regions[0], "images": images,
            "skipped": {}}


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2))
