"""Read the image as built, before it boots, without mounting it.

The partition table comes from sfdisk on the raw bytes, files from `debugfs` at each partition's
offset (ext2/3/4). What is looked for: a MAC binding baked into the image (HWADDR/MACADDR in an
ifcfg file, a persistent-net udev rule, `hwaddress` in interfaces, a NetworkManager or networkd
MAC match), and whether sshd and growpart are there, so that a guest that never answers can be
given its likely cause. A root that debugfs cannot read (btrfs, xfs) is said to be unread.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from rel_eng import runner

MAC = r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}"
# (directory, file-name pattern, binding pattern) per network stack.
BINDING_SOURCES = [
    ("/etc/sysconfig/network-scripts", r"^ifcfg-", re.compile(rf"^\s*(HWADDR|MACADDR)\s*=\s*\"?{MAC}", re.M)),
    ("/etc/udev/rules.d", r"\.rules$", re.compile(rf"ATTRS?\{{address\}}\s*==\s*\"{MAC}\"")),
    ("/etc/network", r"^interfaces$", re.compile(rf"^\s*hwaddress\s+(ether\s+)?{MAC}", re.M)),
    ("/etc/network/interfaces.d", r"", re.compile(rf"^\s*hwaddress\s+(ether\s+)?{MAC}", re.M)),
    ("/etc/NetworkManager/system-connections", r"", re.compile(rf"^\s*(cloned-)?mac-address\s*=\s*{MAC}", re.M)),
    ("/etc/systemd/network", r"\.(link|network)$", re.compile(rf"^\s*MACAddress\s*=\s*{MAC}", re.M)),
]
PROBE_FILES = {"sshd": ["/usr/sbin/sshd"], "growpart": ["/usr/bin/growpart"]}
CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_CFG_D = "/etc/cloud/cloud.cfg.d"
# `datasource_list: [ A, B ]` (flow style) or `datasource_list:` followed by `- A` lines.
DS_FLOW_RE = re.compile(r"^datasource_list\s*:\s*\[([^\]]*)\]", re.M)
DS_BLOCK_RE = re.compile(r"^datasource_list\s*:\s*(?:#.*)?\n((?:[ \t]*-[^\n]*\n?)+)", re.M)


@dataclass
class OfflineFacts:
    read: bool = False
    note: str = ""
    partition_offset: int | None = None
    bindings: list[str] = field(default_factory=list)
    present: dict[str, bool] = field(default_factory=dict)
    datasource_list: list[str] | None = None  # cloud-init's, as the image sets it (None: unset)
    datasource_from: str = ""                 # the file that set it


def find_bindings(files: dict[str, str]) -> list[str]:
    """Every MAC binding in the given {path: text}, as 'path: line'. Pure."""
    found = []
    for path, text in sorted(files.items()):
        directory, name = path.rsplit("/", 1)
        for src_dir, name_re, binding_re in BINDING_SOURCES:
            if directory != src_dir or not re.search(name_re, name):
                continue
            for m in binding_re.finditer(text):
                line = text[text.rfind("\n", 0, m.start()) + 1:].split("\n", 1)[0].strip()
                found.append(f"{path}: {line}")
    return found


def datasource_list(files: dict[str, str]) -> tuple[list[str] | None, str]:
    """cloud-init's datasource_list from cloud.cfg then cloud.cfg.d/*.cfg in name order (the
    last file that sets it wins, as cloud-init merges them). Pure."""
    found, where = None, ""
    order = [CLOUD_CFG] + sorted(p for p in files if p.startswith(CLOUD_CFG_D + "/") and p.endswith(".cfg"))
    for path in order:
        text = files.get(path, "")
        m = DS_FLOW_RE.search(text)
        if m:
            found = [x.strip().strip("'\"") for x in m.group(1).split(",") if x.strip()]
            where = path
            continue
        m = DS_BLOCK_RE.search(text)
        if m:
            found = [ln.strip()[1:].strip().strip("'\"") for ln in m.group(1).splitlines() if ln.strip()]
            where = path
    return found, where


def partitions(raw: Path) -> list[tuple[int, int]]:
    """(offset, size) in bytes of each partition; a whole-disk filesystem is one at offset 0."""
    proc = runner.run(["sfdisk", "--json", str(raw)], check=False, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return [(0, raw.stat().st_size)]
    table = json.loads(proc.stdout)["partitiontable"]
    size = table.get("sectorsize", 512)
    return [(p["start"] * size, p["size"] * size) for p in table.get("partitions", [])]


def _debugfs(raw: Path, offset: int, request: str) -> tuple[str, str]:
    proc = runner.run(["debugfs", "-R", request, f"{raw}?offset={offset}"],
                      check=False, text=True, timeout=60)
    return proc.stdout, proc.stderr


def _exists(raw: Path, offset: int, path: str) -> bool:
    out, err = _debugfs(raw, offset, f"stat {path}")
    return "Inode:" in out


def _list(raw: Path, offset: int, directory: str) -> list[str]:
    out, _ = _debugfs(raw, offset, f"ls -p {directory}")
    names = []
    for line in out.splitlines():
        parts = line.split("/")
        # /inode/mode/uid/gid/name/size/ ; regular files (10xxxx) and symlinks (12xxxx)
        if len(parts) >= 7 and parts[2][:2] in ("10", "12") and parts[5] not in (".", ".."):
            names.append(parts[5])
    return names


def read(raw: Path) -> OfflineFacts:
    runner.require("debugfs")
    runner.require("sfdisk")
    facts = OfflineFacts()
    for offset, _size in partitions(raw):
        out, err = _debugfs(raw, offset, "stats")
        if "Filesystem magic number" not in out or not _exists(raw, offset, "/etc"):
            continue
        facts.read, facts.partition_offset = True, offset
        files = {}
        for directory, name_re, _ in BINDING_SOURCES:
            for name in _list(raw, offset, directory):
                if re.search(name_re, name):
                    text, _ = _debugfs(raw, offset, f"cat {directory}/{name}")
                    files[f"{directory}/{name}"] = text
        facts.bindings = find_bindings(files)
        cfg = {CLOUD_CFG: _debugfs(raw, offset, f"cat {CLOUD_CFG}")[0]}
        for name in _list(raw, offset, CLOUD_CFG_D):
            if name.endswith(".cfg"):
                cfg[f"{CLOUD_CFG_D}/{name}"] = _debugfs(raw, offset, f"cat {CLOUD_CFG_D}/{name}")[0]
        facts.datasource_list, facts.datasource_from = datasource_list(cfg)
        facts.present = {what: any(_exists(raw, offset, p) for p in paths)
                         for what, paths in PROBE_FILES.items()}
        facts.note = f"ext filesystem with /etc at byte offset {offset}"
        return facts
    facts.note = "no ext2/3/4 filesystem holding /etc: the image's files were not read offline"
    return facts
