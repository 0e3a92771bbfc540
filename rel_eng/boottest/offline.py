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
import struct
import uuid
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


ESP_MBR_TYPE = 0xEF
GPT_PROTECTIVE = 0xEE
ESP_GUID = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
EFI_LOADER = "/EFI/BOOT/BOOTX64.EFI"   # the removable-media path a firmware with no boot entry tries
ENA_DIR = "kernel/drivers/net/ethernet/amazon/ena"
MODULE_DIRS = ("/lib/modules", "/usr/lib/modules")
HEAD_BYTES = 1024 * 1024  # the partition table (MBR, or GPT with up to 128 entries) is in here


def esp_partition(head: bytes) -> tuple[int, int] | None:
    """(first sector, sectors) of the EFI system partition, from the disk's first MiB: an MBR
    entry of type 0xEF, or a GPT entry of the ESP type GUID. None: there is none. Pure."""
    if len(head) < 1024 or head[510:512] != b"\x55\xaa":
        return None
    entries = [struct.unpack_from("<4xB3xII", head, 446 + 16 * i) for i in range(4)]
    for ptype, start, size in entries:
        if ptype == ESP_MBR_TYPE and size:
            return start, size
    if not any(ptype == GPT_PROTECTIVE for ptype, _, _ in entries) or head[512:520] != b"EFI PART":
        return None
    first_lba, count, entry_size = struct.unpack_from("<QII", head, 512 + 72)
    for i in range(min(count, 128)):
        at = first_lba * 512 + i * entry_size
        if at + 48 > len(head):
            break
        if head[at:at + 16] == ESP_GUID.bytes_le:
            first, last = struct.unpack_from("<QQ", head, at + 32)
            return first, last - first + 1
    return None


@dataclass
class EspFacts:
    """What a UEFI firmware would find on the disk, read before any UEFI boot."""
    bootable: bool
    evidence: str


def read_esp(image: Path, fmt: str, work: Path) -> EspFacts:
    """The ESP and its loader, read from the image (qcow2 or raw) without booting or mounting:
    the first MiB for the partition table, then the ESP's bytes for mtools."""
    head_file, esp_file = work / "head.raw", work / "esp.raw"
    _dd(image, fmt, head_file, 0, HEAD_BYTES // 512)
    found = esp_partition(head_file.read_bytes())
    if found is None:
        return EspFacts(False, "no EFI system partition in the partition table (no MBR type 0xEF, no "
                               "GPT ESP type): a UEFI firmware finds nothing to boot")
    start, sectors = found
    _dd(image, fmt, esp_file, start, sectors)
    proc = runner.run(["mdir", "-b", "-i", str(esp_file), "::" + EFI_LOADER], check=False,
                      text=True, timeout=60, env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})
    esp_file.unlink(missing_ok=True)
    where = f"EFI system partition at sector {start} ({sectors * 512 // 1024**2} MiB)"
    if proc.returncode != 0 or "BOOTX64.EFI" not in proc.stdout.upper():
        err = (proc.stderr.strip().splitlines() or ["not found"])[-1]
        return EspFacts(False, f"{where} has no {EFI_LOADER} ({err})")
    return EspFacts(True, f"{where} holds {EFI_LOADER}")


def _dd(image: Path, fmt: str, out: Path, skip: int, count: int) -> None:
    bs = 1024 * 1024 if skip % 2048 == 0 and count % 2048 == 0 else 512  # whole MiBs when aligned
    unit = bs // 512
    runner.run(["qemu-img", "dd", "-f", fmt, "-O", "raw", f"bs={bs}", f"skip={skip // unit}",
                f"count={count // unit}", f"if={image}", f"of={out}"], timeout=300)


def ena_module(modules: dict[str, tuple[list[str], str]]) -> dict[str, str]:
    """{kernel: where its ena driver is} from {kernel: (names in its ena dir, modules.builtin)};
    a kernel without one is left out. Pure."""
    found = {}
    for kver, (names, builtin) in modules.items():
        ko = sorted(n for n in names if re.fullmatch(r"ena\.ko(\.[a-z]+)?", n))
        if ko:
            found[kver] = f"{ENA_DIR}/{ko[0]}"
        elif re.search(r"(^|/)ena\.ko$", builtin, re.M):
            found[kver] = "built in (modules.builtin)"
    return found


@dataclass
class OfflineFacts:
    read: bool = False
    note: str = ""
    partition_offset: int | None = None
    bindings: list[str] = field(default_factory=list)
    present: dict[str, bool] = field(default_factory=dict)
    datasource_list: list[str] | None = None  # cloud-init's, as the image sets it (None: unset)
    datasource_from: str = ""                 # the file that set it
    kernels: list[str] = field(default_factory=list)     # /lib/modules/<version> dirs
    ena: dict[str, str] = field(default_factory=dict)    # kernel -> its ena driver (read when asked)


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


def _modules(raw: Path, offset: int) -> tuple[list[str], dict[str, tuple[list[str], str]]]:
    for top in MODULE_DIRS:
        out, _ = _debugfs(raw, offset, f"ls -p {top}")
        kernels = [p[5] for p in (line.split("/") for line in out.splitlines())
                   if len(p) >= 7 and p[2][:2] == "04" and p[5] not in (".", "..")]
        if kernels:
            return kernels, {k: (_list(raw, offset, f"{top}/{k}/{ENA_DIR}"),
                                 _debugfs(raw, offset, f"cat {top}/{k}/modules.builtin")[0])
                             for k in kernels}
    return [], {}


def read(raw: Path, ena: bool = False) -> OfflineFacts:
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
        if ena:
            facts.kernels, modules = _modules(raw, offset)
            facts.ena = ena_module(modules)
        facts.note = f"ext filesystem with /etc at byte offset {offset}"
        return facts
    facts.note = "no ext2/3/4 filesystem holding /etc: the image's files were not read offline"
    return facts
