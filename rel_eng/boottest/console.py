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
# States the console settles before any bound runs out (each ends the wait at once).
LOGIN_RE = re.compile(r"^\S+ login:", re.M)
GRUB_PROMPT_RE = re.compile(r"grub(?: rescue)?> ?$|^grub(?: rescue)?>", re.M)
PANIC_RE = re.compile(r"Kernel panic - not syncing:?[^\n]*")
PRINTK_TIME_RE = re.compile(r"^\[\s*(\d+\.\d+)\]", re.M)  # the kernel's uptime on its lines
# cloud-init failing to reach a metadata service (url_helper's retry warnings name the URL, or
# with no URL only urllib3's host and path; its give-up line lists the URLs).
_MD_HOST = r"(?:169\.254\.169\.254|\[?fd00:ec2::254\]?)"
SEEKING_RE = re.compile(
    r"url_helper\.py\[(?:WARNING|ERROR)\]:[^\n]*?(?:(http://" + _MD_HOST + r"[^'\s\],]*)"
    r"|host='(" + _MD_HOST + r")', port=\d+\): Max retries exceeded with url: (\S+))")


@dataclass
class ConsoleFacts:
    kernel: bool = False
    cloud_init: bool = False
    fingerprints: list[str] = field(default_factory=list)
    host_keys: list[tuple[str, str]] = field(default_factory=list)
    keys_complete: bool = False
    finished_uptime: float | None = None
    last_line: str = ""
    login_prompt: bool = False
    grub_prompt: bool = False
    panic: str = ""  # the kernel's panic line, if it panicked
    metadata_sought: str = ""  # a metadata URL cloud-init failed to reach, if it tried one
    # The guest's uptime on the newest kernel line (printk time): the serial console starts
    # printing seconds into the boot under TCG, so this dates the guest's uptime 0 on the host.
    printk_uptime: float | None = None

    @property
    def cloud_init_disabled(self) -> bool:
        """A login prompt with no cloud-init line before it: cloud-init's units print before
        getty starts, so it never ran (ds-identify found no datasource and disabled it)."""
        return self.login_prompt and not self.cloud_init

    def settled(self, serves_metadata: bool = True) -> str:
        """Why the boot can be judged now without waiting for a bound ("" if it cannot). Where
        the platform serves no metadata service, cloud-init asking one settles it too: its
        datasource waits minutes for an answer that cannot come."""
        if self.panic:
            return f"the kernel panicked: {self.panic}"
        if self.grub_prompt and not self.kernel:
            return "GRUB stopped at its prompt (it could not load a kernel)"
        if self.cloud_init_disabled:
            return ("cloud-init never ran: the console reached a login prompt with no cloud-init "
                    "line (ds-identify found none of the image's datasources and disabled it, or "
                    "cloud-init is not enabled)")
        if self.metadata_sought and not serves_metadata:
            return (f"cloud-init looks for a metadata service ({self.metadata_sought}) that this "
                    "platform does not present")
        return ""


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
    facts.login_prompt = bool(LOGIN_RE.search(text))
    facts.grub_prompt = bool(GRUB_PROMPT_RE.search(text))
    m = PANIC_RE.search(text)
    facts.panic = m.group(0).strip()[:160] if m else ""
    m = SEEKING_RE.search(text)
    if m:
        host = m.group(2) or ""
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        facts.metadata_sought = (m.group(1) or f"http://{host}{m.group(3)}")[:120]
    stamps = PRINTK_TIME_RE.findall(text)
    facts.printk_uptime = float(stamps[-1]) if stamps else None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    facts.last_line = lines[-1][:200] if lines else ""
    return facts
