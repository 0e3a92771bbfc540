"""`compose/metadata/ec2.json`: the machine-readable record of a drop's AMIs.

Shape (the README's AMI tables are generated from it):
    {"compose_id": str, "base_region": str,
     "images": {nvra: {"arch", "architecture", "subvariant", "name", "snapshot_id",
                       "volume_size_gib", "public" (in every region), "deprecate_at",
                       "regions": {region: ami_id}, "snapshots": {region: [snapshot_id, ...]},
                       "visibility": {region: "public" | "shared" | "private" | "blocked"},
                       "ssm": {region: parameter name}, "shared_with" (when organizations are)}},
     "skipped": {nvra: reason}, "blocked_regions": {region: why, and the command that lifts it}}
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


def merge_results(old: dict[str, Any] | None, new: dict[str, Any],
                  replace: tuple[str, ...] = ()) -> dict[str, Any]:
    """`new` over `old`, per-region maps merged region by region except those in `replace`."""
    if not old or old.get("compose_id") != new["compose_id"]:
        return new
    images = {k: dict(v) for k, v in old.get("images", {}).items()}
    for nvra, entry in new["images"].items():
        merged = {**images.get(nvra, {}), **entry}
        for key in ("regions", "snapshots", "visibility", "ssm"):
            if key in replace:
                continue
            merged[key] = {**images.get(nvra, {}).get(key, {}), **entry.get(key, {})}
        images[nvra] = merged
    skipped = {k: v for k, v in {**old.get("skipped", {}), **new["skipped"]}.items() if k not in images}
    return {**old, **new, "images": dict(sorted(images.items())),
            "skipped": dict(sorted(skipped.items()))}


def write_results(topdir: Path, new: dict[str, Any], replace: tuple[str, ...] = ()) -> Path:
    path = results_path(topdir)
    data = merge_results(load_results(topdir), new, replace)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path
