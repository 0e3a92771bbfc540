"""What the serial console says: boot milestones, the host keys cloud-init printed, the uptime."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KERNEL_RE = re.compile(r"Linux version \d")
CLOUD_INIT_RE = re.compile(r"cloud-init\[\d+\]|Cloud-init v\. \d")
FINISHED_RE = re.compile(r"Cloud-init v\. (\S+) finished at .*?Up ([\d.]+) seconds")
FP_BEGIN, FP_END = "-----BEGIN SSH HOST KEY FINGERPRINTS-----", "-----END SSH HOST KEY FINGERPRINTS-----"
KEYS_BEGIN, KEYS_END = "-----BEGIN SSH HOST KEY KEYS-----", "-----END SSH HOST KEY KEYS-----"
FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
KEY_RE = re.compile(r"\b(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) (AAAA[A-Za-z0-9+/]+=*)")
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


@dataclass
class ConsoleFacts:
    kernel: bool = False
    cloud_init: bool = False
    fingerprints: list[str] = field(default_factory=list)
    host_keys: list[tuple[str, str]] = field(default_factory=list)
    keys_complete: bool = False
    finished_uptime: float | None = None
    last_line: str = ""


def clean(text: str) -> str:
    return ANSI_RE.sub("", text)


def _block(text: str, begin: str, end: str) -> str | None:
    start = text.find(begin)
    if start < 0:
        return None
    stop = text.find(end, start)
    return None if stop < 0 else text[start + len(begin):stop]


def parse(raw: str) -> ConsoleFacts:
    text = clean(raw)
    facts = ConsoleFacts(kernel=bool(KERNEL_RE.search(text)),
                         cloud_init=bool(CLOUD_INIT_RE.search(text)))
    fp = _block(text, FP_BEGIN, FP_END)
    if fp is not None:
        facts.fingerprints = FINGERPRINT_RE.findall(fp)
    keys = _block(text, KEYS_BEGIN, KEYS_END)
    if keys is not None:
        facts.host_keys = KEY_RE.findall(keys)
        facts.keys_complete = True
    m = FINISHED_RE.search(text)
    if m:
        facts.finished_uptime = float(m.group(2))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    facts.last_line = lines[-1][:200] if lines else ""
    return facts
