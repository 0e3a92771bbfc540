"""releases.toml: the releases a compose can build (install tree, repos, Koji target, milestones)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from rel_eng.config.ec2 import BOOT_MODES, IMDS_SUPPORT
from rel_eng.config.problems import Problems
from rel_eng.config.read import read_toml
from rel_eng.errors import ConfigError
from rel_eng.redact import check_urls

MILESTONES = ("Alpha", "Beta", "Final")


@dataclass(frozen=True)
class Release:
    key: str  # "19", "rawhide"
    version: str  # productmd release version: "19", "Rawhide"
    fedora_version: int  # what pykickstart and Oz target
    install_tree: str  # may hold $arch
    repos: tuple[str, ...] = ()
    koji_target: str = ""
    milestones: tuple[tuple[str, str], ...] = ()  # (milestone, ISO date), in order
    # What its EC2 image's AMI declares; None: [ec2]'s default (rel_eng.config.ami_attributes).
    ec2_boot_mode: str | None = None
    ec2_imds: str | None = None     # "v2.0" or "" (IMDSv1 allowed)
    ec2_ena: bool | None = None

    @property
    def ksversion(self) -> str:
        return f"F{self.fedora_version}"

    @property
    def has_milestones(self) -> bool:
        return bool(self.milestones)


_RELEASE_KEYS = {"version", "fedora_version", "install_tree", "repos", "koji_target", "milestones",
                 "ec2_boot_mode", "ec2_imds", "ec2_ena"}


def _ami_keys(sub: dict, problems: Problems, where: str) -> dict:
    """A release's ec2_* keys, each a value the AMI API accepts (absent: None)."""
    out = {}
    for key, kind, allowed in (("ec2_boot_mode", str, BOOT_MODES), ("ec2_imds", str, IMDS_SUPPORT),
                               ("ec2_ena", bool, (True, False))):
        value = problems.take(sub, key, kind, None, where)
        if value is not None and value not in allowed:
            problems.add(f"{where}{key}", f"'{value}' is not a value the AMI API accepts "
                                          f"(use {' | '.join(repr(a) for a in allowed)})")
            value = None
        out[key] = value
    return out


def load_releases(path: Path) -> tuple[tuple[Release, ...], list[str]]:
    problems = Problems(str(path))
    try:
        doc = read_toml(path)
    except ConfigError as exc:
        return (), exc.problems
    releases = []
    table = doc.get("releases")
    if not isinstance(table, dict) or not table:
        problems.add("releases", "no [releases.<name>] tables defined")
        return (), problems.items
    for key in sorted(set(doc) - {"releases"}):
        problems.add(key, "unknown key (allowed: releases)")
    for key, sub in table.items():
        where = f"releases.{key}."
        problems.name(f"releases.{key}", key)
        if not isinstance(sub, dict):
            problems.add(f"releases.{key}", "expected a table")
            continue
        problems.unknown(sub, _RELEASE_KEYS, where)
        version = problems.take(sub, "version", str, "", where)
        fedora = problems.take(sub, "fedora_version", int, 0, where)
        tree = problems.take(sub, "install_tree", str, "", where)
        repos = problems.take(sub, "repos", list, [], where, item=str)
        target = problems.take(sub, "koji_target", str, "", where)
        stones = problems.take(sub, "milestones", dict, {}, where)
        ami = _ami_keys(sub, problems, where)
        if not version or "-" in version:
            problems.add(f"{where}version", "is required and must not contain '-'")
        else:
            problems.name(f"{where}version", version)
        if not 19 <= fedora <= 999:
            problems.add(f"{where}fedora_version", "is required and must be 19..999")
        if not tree.startswith(("http://", "https://")):
            problems.add(f"{where}install_tree", "must be an http(s) URL")
        check_urls(problems, [(f"{where}install_tree", tree),
                              *((f"{where}repos[{i}]", r) for i, r in enumerate(repos))],
                   "serve it without credentials to the builders instead")
        milestones = []
        previous = None
        for name, date in stones.items():
            if name not in MILESTONES:
                problems.add(f"{where}milestones.{name}", f"unknown milestone (use {', '.join(MILESTONES)})")
                continue
            if isinstance(date, str):
                try:
                    date = dt.date.fromisoformat(date)
                except ValueError:
                    pass
            if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
                problems.add(f"{where}milestones.{name}", f"expected a date (YYYY-MM-DD), got {date!r}")
                continue
            if previous and date <= previous[1]:
                problems.add(f"{where}milestones.{name}", f"{date} is not after {previous[0]} ({previous[1]})")
            previous = (name, date)
            milestones.append((name, date.isoformat()))
        order = [m for m, _ in milestones]
        if order != sorted(order, key=MILESTONES.index):
            problems.add(f"{where}milestones", f"must be in order {', '.join(MILESTONES)}")
        releases.append(Release(key=key, version=version, fedora_version=fedora,
                                install_tree=tree, repos=tuple(str(r) for r in repos),
                                koji_target=target, milestones=tuple(milestones), **ami))
    return tuple(releases), problems.items
