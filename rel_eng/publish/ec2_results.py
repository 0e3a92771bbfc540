"""`compose/metadata/ec2.json`: the machine-readable record of a drop's AMIs.

Shape (the README's AMI tables are generated from it):
    {"compose_id": str, "base_region": str,
     "images": {nvra: {"arch", "architecture", "subvariant", "name", "snapshot_id",
                       "volume_size_gib", "public", "deprecate_at",
                       "regions": {region: ami_id}, "snapshots": {region: [snapshot_id, ...]}}},
     "skipped": {nvra: reason}}
A run for some regions only (`--regions`) merges into what an earlier run recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rel_eng.atomic import atomic_write


def results_path(topdir: Path) -> Path:
    return topdir / "compose" / "metadata" / "ec2.json"


def load_results(topdir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(results_path(topdir).read_text())
    except FileNotFoundError:
        return None


def merge_results(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if not old or old.get("compose_id") != new["compose_id"]:
        return new
    images = {k: dict(v) for k, v in old.get("images", {}).items()}
    for nvra, entry in new["images"].items():
        merged = {**images.get(nvra, {}), **entry}
        for key in ("regions", "snapshots"):
            merged[key] = {**images.get(nvra, {}).get(key, {}), **entry[key]}
        images[nvra] = merged
    skipped = {k: v for k, v in {**old.get("skipped", {}), **new["skipped"]}.items() if k not in images}
    return {**new, "images": dict(sorted(images.items())), "skipped": dict(sorted(skipped.items()))}


def write_results(topdir: Path, new: dict[str, Any]) -> Path:
    path = results_path(topdir)
    data = merge_results(load_results(topdir), new)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path
