"""The named checks: each turns what was observed into a result, evidence and a failure message.

Everything here is pure. The guest is asked once, by GUEST_SCRIPT over ssh, and its answer is
split into sections (`@@name` lines) that the evaluators read.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from rel_eng.config.boot_test import CHECKS  # the names (config validates them), in report order
from rel_eng.config.boot_test import DEFAULT_CHECKS  # all but the opt-in ones

# The root must end within this much of the end of the (larger) disk, and the filesystem fill
# at least this share of its partition (ext4/xfs/btrfs metadata takes a few percent).
ROOT_END_TOLERANCE_BYTES = 16 * 1024**2
ROOT_FILL_MIN = 0.90
FIREWALL_SERVICES = ("firewalld", "nftables", "ufw", "iptables", "netfilter-persistent")


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | not-run | skipped (cannot apply, or lacks its input: no verdict)
    evidence: str
    message: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def passed(name, evidence):
    return CheckResult(name, "pass", evidence)


def failed(name, evidence, message):
    return CheckResult(name, "fail", evidence, message)


def not_run(name, why):
    return CheckResult(name, "not-run", "", why)


def skipped(name, why):
    return CheckResult(name, "skipped", "", why)


def counts_against(c: CheckResult) -> bool:
    """Whether a check's result fails the image (a skipped check neither passes nor fails it)."""
    return c.status not in ("pass", "skipped")


def parse_checks(text: str | None) -> tuple[str, ...]:
    """`--checks a,b`: known names only (ValueError names the unknown one)."""
    if not text:
        return DEFAULT_CHECKS
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CHECKS]
    if unknown or not names:
        raise ValueError(f"unknown check {', '.join(unknown) or '(none given)'}; "
                         f"known checks: {', '.join(CHECKS)}")
    return tuple(n for n in CHECKS if n in names)


# Under TCG every process the guest starts costs 0.1-0.5 s (python several seconds), so the
# script starts few: cloud-init's state is read from its JSON files (`cloud-init status` only
# where they are missing), one df, one ip, one systemctl, one sudo for everything root reads
# (shadow read by the shell itself), one dpkg-query; the rest are shell builtins.
CI_WAIT_TICKS = 1500  # 0.2 s each: the guest's own bound on waiting for cloud-init to finish
GUEST_SCRIPT = r"""
set +e
read -r t_start _ < /proc/uptime
echo @@ci-status
if [ -e /run/cloud-init/status.json ]; then
  i=0; while [ ! -e /run/cloud-init/result.json ] && [ $i -lt {ci_wait_ticks} ]; do sleep 0.2; i=$((i+1)); done
  echo "source=/run/cloud-init/status.json"; cat /run/cloud-init/status.json
else cloud-init status --wait --long 2>&1; echo "rc=$?"; fi
read -r t_cloud_init _ < /proc/uptime
echo @@ci-result; cat /run/cloud-init/result.json 2>/dev/null
echo @@ci-data; cat /run/cloud-init/instance-data.json 2>/dev/null
echo @@identity; echo "hostname=$(hostname)"; read -r iid 2>/dev/null < /var/lib/cloud/data/instance-id; echo "instance_id=$iid"
echo @@nonce; read -r nonce 2>/dev/null < {nonce_path}; echo "$nonce"
echo @@firmware; [ -d /sys/firmware/efi ] && echo "firmware=uefi" || echo "firmware=bios"
read -r k < /proc/sys/kernel/osrelease; echo "kernel=$k"{ena_probe}
echo @@seal; cat {seal_path} 2>/dev/null
echo @@health
systemctl --failed --no-legend --plain 2>/dev/null | while read -r u _; do echo "failed $u"; done
echo "tmp $(stat -c %a /tmp 2>/dev/null)"
read -r b < /proc/sys/kernel/random/boot_id; echo "boot_id $b"
[ -e /sys/fs/selinux/enforce ] && {{ read -r e < /sys/fs/selinux/enforce; echo "selinux_enforce $e"; }}
[ -e /etc/selinux/config ] && while IFS= read -r l; do case "$l" in SELINUX=*) echo "selinux_config $l";; esac; done < /etc/selinux/config
echo @@root
{{ read -r _; read -r src fstype fs_bytes; }} < <(df -B1 --output=source,fstype,size / 2>/dev/null)
src=${{src%%\[*}}; dev=$src; [ -L "$dev" ] && dev=$(readlink -f "$dev"); dev=${{dev##*/}}
echo "source=$src"; echo "fstype=$fstype"; echo "fs_bytes=$fs_bytes"
if [ -n "$dev" ] && [ -e /sys/class/block/$dev/partition ] && cd -P /sys/class/block/$dev/..; then
  disk=${{PWD##*/}}; cd /
  read -r v < /sys/class/block/$dev/start; echo "part_start=$v"
  read -r v < /sys/class/block/$dev/size; echo "part_sectors=$v"
  read -r v < /sys/class/block/$disk/size; echo "disk_sectors=$v"
fi
echo @@links; ip -o link 2>/dev/null
echo @@firewall
svcs="{firewall_services}"; mapfile -t st < <(systemctl is-active $svcs 2>/dev/null); i=0
for s in $svcs; do echo "service $s ${{st[$i]:-unknown}}"; i=$((i+1)); done
echo @@sudo
sudo -n bash -s 2>&1 <<'ROOT'
echo sudo-ok
echo @@firewall-rules
if command -v nft >/dev/null; then nft list ruleset 2>/dev/null | grep -E '\b(drop|reject)\b' | while read -r l; do echo "nft $l"; done; fi
if command -v iptables >/dev/null; then iptables -S 2>/dev/null | grep -E 'DROP|REJECT' | while read -r l; do echo "iptables $l"; done; fi
echo @@root-shadow
while IFS=: read -r u p _; do [ "$u" = root ] && echo "${{p:0:3}}"; done < /etc/shadow; echo "rc=$?"
echo @@journal
journalctl -b 0 -q -n 1 -o export --no-pager 2>/dev/null | while IFS= read -r l; do case "$l" in _BOOT_ID=*) echo "$l";; esac; done
ROOT
read -r t_facts _ < /proc/uptime
echo @@pkgq
pkgs="{packages}"
if command -v rpm >/dev/null; then
  if rpm -q --whatprovides $pkgs >/dev/null 2>&1; then for p in $pkgs; do echo "$p installed"; done
  else for p in $pkgs; do rpm -q --whatprovides "$p" >/dev/null 2>&1 && echo "$p installed" || echo "$p missing"; done; fi
else
  q=$'\n'$(dpkg-query -W -f='${{Package}} ${{Status}}\n' $pkgs 2>/dev/null)$'\n'
  for p in $pkgs; do case "$q" in *$'\n'"$p install ok installed"$'\n'*) echo "$p installed";; *) echo "$p missing";; esac; done
fi
read -r t_pkgq _ < /proc/uptime
echo @@packages
if command -v rpm >/dev/null; then rpm -qa --qf '%{{NAME}}-%{{VERSION}}-%{{RELEASE}}.%{{ARCH}}\n' | sort
else dpkg-query -W -f='${{binary:Package}} ${{Version}} ${{Architecture}}\n' | sort; fi
read -r t_end _ < /proc/uptime
echo @@timing; echo "start=$t_start cloud_init=$t_cloud_init facts=$t_facts pkgq=$t_pkgq packages=$t_end"
echo @@end
"""


# Only when the AMI declares ENA: modinfo is one more process, and PATH may lack /sbin.
ENA_PROBE = '\necho @@ena; PATH=$PATH:/sbin:/usr/sbin modinfo -F filename ena 2>&1; echo "rc=$?"'


def guest_script(nonce_path: str, packages: list[str], seal_path: str = "/dev/null",
                 ena: bool = False) -> str:
    safe = [p for p in packages if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9+._:-]*", p)]
    return GUEST_SCRIPT.format(nonce_path=nonce_path, packages=" ".join(safe), seal_path=seal_path,
                               firewall_services=" ".join(FIREWALL_SERVICES),
                               ci_wait_ticks=CI_WAIT_TICKS, ena_probe=ENA_PROBE if ena else "")


def guest_timing(s: dict) -> dict[str, float]:
    """Seconds the guest script spent per part, from the guest's own uptime marks."""
    try:
        marks = {k: float(v) for k, v in (p.split("=", 1) for p in s.get("timing", "").split())}
    except ValueError:
        return {}
    order = ["start", "cloud_init", "facts", "pkgq", "packages"]
    if not all(k in marks for k in order):
        return {}
    return {f"guest:{b}": round(marks[b] - marks[a], 3) for a, b in zip(order, order[1:])}


def sections(output: str) -> dict[str, str]:
    found, name, buf = {}, None, []
    for line in output.splitlines():
        if line.startswith("@@"):
            if name:
                found[name] = "\n".join(buf).strip()
            name, buf = line[2:].strip(), []
        elif name:
            buf.append(line)
    if name:  # the last section ends with the output
        found[name] = "\n".join(buf).strip()
    return found


def _kv(text: str) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln)


CI_STAGES = ("init-local", "init", "modules-config", "modules-final")


def _ci_state(status: str, result_text: str) -> tuple[str, str, list]:
    """(state, where it came from, stage errors) from `cloud-init status --long` output or, when
    the script read them instead, /run/cloud-init/status.json (result.json: finished)."""
    if not status.startswith("source="):
        m = re.search(r"^status:\s*(\S+)", status, re.M)
        return (m.group(1) if m else "unknown"), "cloud-init status --long", []
    where, _, body = status.partition("\n")
    where = where.split("=", 1)[1]
    try:
        v1 = json.loads(body).get("v1", {})
    except (ValueError, AttributeError):
        return "unknown", f"{where} is not JSON", []
    errors = [e for stage in CI_STAGES for e in ((v1.get(stage) or {}).get("errors") or [])]
    if not result_text.strip():
        return f"running (stage {v1.get('stage')})", where, errors
    return ("error" if errors else "done"), where, errors


def cloud_init(s: dict) -> CheckResult:
    state, where, stage_errors = _ci_state(s.get("ci-status", ""), s.get("ci-result", ""))
    errors = []
    try:
        errors = json.loads(s.get("ci-result", "") or "{}").get("v1", {}).get("errors", [])
    except ValueError:
        errors = ["/run/cloud-init/result.json is not JSON"]
    errors = [*errors, *(e for e in stage_errors if e not in errors)]
    evidence = f"cloud-init status: {state} (from {where}); result.json errors: {len(errors)}"
    if state == "done" and not errors:
        return passed("cloud-init", evidence)
    status = s.get("ci-status", "")
    detail = "; ".join(str(e) for e in errors[:3]) or status.splitlines()[-1:] or ["no status"]
    return failed("cloud-init", evidence, f"cloud-init did not finish cleanly: {''.join(detail)}")


def user_data(s: dict, nonce: str) -> CheckResult:
    got = s.get("nonce", "").strip()
    if got == nonce:
        return passed("user-data", f"runcmd left the nonce {nonce} behind")
    return failed("user-data", f"nonce file holds {got[:40]!r}",
                  "user data was not processed: the runcmd nonce is missing")


def root_grown(s: dict) -> CheckResult:
    kv = _kv(s.get("root", ""))
    try:
        fs = int(kv["fs_bytes"])
    except (KeyError, ValueError):
        return failed("root-grown", s.get("root", "")[:200], "could not read the root filesystem size")
    if "disk_sectors" not in kv:
        return failed("root-grown", f"root {kv.get('source')} is not on a partition",
                      "cannot tell whether the root filesystem fills the disk")
    start, part, disk = (int(kv[k]) * 512 for k in ("part_start", "part_sectors", "disk_sectors"))
    gap = disk - (start + part)
    evidence = (f"disk {disk / 2**30:.2f} GiB, root partition {kv.get('source')} ends "
                f"{gap / 2**20:.1f} MiB before its end, {kv.get('fstype')} holds {fs / 2**30:.2f} GiB "
                f"of its {part / 2**30:.2f} GiB")
    if gap > ROOT_END_TOLERANCE_BYTES:
        return failed("root-grown", evidence, f"the root partition was not grown to fill the disk "
                      f"({gap / 2**20:.0f} MiB left over; tolerance {ROOT_END_TOLERANCE_BYTES // 2**20} MiB)")
    if fs < ROOT_FILL_MIN * part:
        return failed("root-grown", evidence, f"the root filesystem was not resized to its partition "
                      f"(fills {fs / part:.0%}, at least {ROOT_FILL_MIN:.0%} expected)")
    return passed("root-grown", evidence)


def macs_up(links: str) -> dict[str, str]:
    """{mac: interface} for interfaces that are UP."""
    up = {}
    for line in links.splitlines():
        m = re.match(r"\d+:\s*([^:@]+)[^<]*<([^>]*)>.*link/ether ([0-9a-f:]{17})", line)
        if m and "UP" in m.group(2).split(","):
            up[m.group(3)] = m.group(1)
    return up


def no_hardcoded_mac(s: dict | None, mac: str, offline) -> CheckResult:
    parts = []
    if offline.read:
        parts.append(f"offline read ({offline.note}): "
                     + (f"{len(offline.bindings)} MAC binding(s)" if offline.bindings else "no MAC binding"))
    else:
        parts.append(f"offline read: {offline.note}")
    if offline.bindings:
        return failed("no-hardcoded-mac", "; ".join(parts),
                      "the image as built binds a MAC address: " + "; ".join(offline.bindings[:3]))
    if s is None:
        return not_run("no-hardcoded-mac", "the guest never answered on ssh")
    up = macs_up(s.get("links", ""))
    if mac not in up:
        return failed("no-hardcoded-mac", "; ".join(parts) + f"; NICs up: {sorted(up) or 'none'}",
                      f"the NIC did not come up with the MAC the test chose ({mac})")
    parts.append(f"{up[mac]} came up with the chosen MAC {mac}")
    return passed("no-hardcoded-mac", "; ".join(parts))


def firewall_off(s: dict) -> CheckResult:
    text = s.get("firewall", "") + "\n" + s.get("firewall-rules", "")
    active = [ln.split()[1] for ln in text.splitlines()
              if ln.startswith("service ") and ln.split()[-1] == "active"]
    rules = [ln for ln in text.splitlines() if ln.startswith(("nft ", "iptables "))]
    evidence = f"active firewall services: {active or 'none'}; blocking rules: {len(rules)}"
    if active or rules:
        return failed("firewall-off", evidence, "a firewall is on in the guest: "
                      + ", ".join(active + rules[:2]))
    return passed("firewall-off", evidence)


def root_locked(s: dict) -> CheckResult:
    lines = s.get("root-shadow", "").splitlines()
    field = lines[0] if lines and not lines[0].startswith("rc=") else None
    if field is None:
        return failed("root-locked", "could not read root's shadow entry", "cannot tell whether root is locked")
    if field.startswith(("!", "*")):
        return passed("root-locked", f"root's password field starts with {field[:1]!r} (locked)")
    if field == "":
        return failed("root-locked", "root's password field is empty", "root can log in without a password")
    return failed("root-locked", "root has a password hash", "root has a usable password")


def sudo_nopasswd(s: dict, user: str) -> CheckResult:
    if "sudo-ok" in s.get("sudo", ""):
        return passed("sudo-nopasswd", f"`sudo -n true` succeeded as {user}")
    return failed("sudo-nopasswd", s.get("sudo", "")[:200], f"{user} cannot sudo without a password")


def anaconda_install(s: dict, wanted: list[str], excluded: list[str], source: str) -> CheckResult:
    state = dict(ln.rsplit(" ", 1) for ln in s.get("pkgq", "").splitlines() if " " in ln)
    missing = [p for p in wanted if state.get(p) != "installed"]
    present = [p for p in excluded if state.get(p) == "installed"]
    evidence = (f"{len(wanted) - len(missing)}/{len(wanted)} packages named in {source} installed, "
                f"{len(present)}/{len(excluded)} excluded ones present")
    if missing or present:
        msg = []
        if missing:
            msg.append("not installed: " + ", ".join(missing[:8]))
        if present:
            msg.append("excluded but installed: " + ", ".join(present[:8]))
        return failed("anaconda-install", evidence, "; ".join(msg))
    return passed("anaconda-install", evidence)


# --- what the platform presented, and what the guest made of it ---------------------------

DS_NAME_RE = re.compile(r"DataSource([A-Za-z0-9]+?)(?:Local|Net)?(?:\s|\[|$)")


def datasource_used(s: dict) -> str:
    """The datasource cloud-init ran from (its name without "DataSource"/"Local"), or ""."""
    for text in (s.get("ci-result", ""), s.get("ci-status", "")):
        try:
            v1 = json.loads(text.split("\n", 1)[1] if text.startswith("source=") else text or "{}").get("v1", {})
        except (ValueError, AttributeError):
            continue
        m = DS_NAME_RE.search(str(v1.get("datasource") or ""))
        if m:
            return m.group(1)
    return ""


def _ds_list(offline) -> str:
    if offline is None or not offline.read:
        return f"the image's datasource_list could not be read offline ({offline.note if offline else 'no read'})"
    if offline.datasource_list is None:
        return "the image sets no datasource_list (cloud-init's default: every datasource)"
    return f"the image's datasource_list: [ {', '.join(offline.datasource_list)} ] ({offline.datasource_from})"


def datasource(s: dict, platform, offline) -> CheckResult:
    used = datasource_used(s)
    expected = platform.datasources
    try:
        ci_platform = json.loads(s.get("ci-data", "") or "{}").get("v1", {}).get("platform", "")
    except ValueError:
        ci_platform = ""
    evidence = (f"cloud-init ran from {used or 'no datasource'} (platform {ci_platform or 'unknown'}); "
                f"booted as {platform.label}, which presents {'/'.join(expected)}")
    if used in expected:
        return passed("datasource", evidence)
    return failed("datasource", evidence + "; " + _ds_list(offline),
                  f"cloud-init used {used or 'no datasource'}, not {'/'.join(expected)} that "
                  f"{platform.label} presents; {_ds_list(offline)}")


def datasource_never_ran(platform, offline, cause: str) -> CheckResult:
    """cloud-init did not run at all (the console settled it): name what the image looks for."""
    return failed("datasource", cause + "; " + _ds_list(offline),
                  f"cloud-init never ran under {platform.label} (which presents "
                  f"{'/'.join(platform.datasources)}); {_ds_list(offline)}")


def datasource_not_presented(platform, offline, cause: str) -> CheckResult:
    """cloud-init is waiting for a datasource the platform does not present (the console said so)."""
    return failed("datasource", cause + "; " + _ds_list(offline),
                  f"{cause}: the image does not look for {'/'.join(platform.datasources)}, which "
                  f"{platform.label} presents; {_ds_list(offline)}")


def metadata(s: dict, inst, platform, requests: list) -> CheckResult:
    kv = _kv(s.get("identity", ""))
    host, iid = kv.get("hostname", "").strip(), kv.get("instance_id", "").strip()
    want_host = inst.hostname.split(".")[0]
    problems = []
    if host.split(".")[0] != want_host:
        problems.append(f"hostname is {host or '(none)'}, the platform served {want_host}")
    if iid != inst.instance_id:
        problems.append(f"instance-id is {iid or '(none)'}, the platform served {inst.instance_id}")
    used = datasource_used(s)
    if used not in platform.datasources:
        problems.append(f"the key and user data came from {used or 'no datasource'}, not the platform")
    evidence = f"hostname {host or '(none)'}, instance-id {iid or '(none)'}, datasource {used or 'none'}"
    if platform.serves_metadata:
        served = [r for r in requests if r.status == 200]
        key = any("public-keys" in r.path or "meta_data.json" in r.path for r in served)
        ud = any(r.path.rstrip("/").endswith(("user-data", "user_data")) for r in served)
        evidence += f"; served {len(served)} of {len(requests)} requests" \
                    f" (key {'served' if key else 'never asked for'}, user data {'served' if ud else 'never asked for'})"
        if not key:
            problems.append("the guest never fetched its key from the metadata service")
        if not ud:
            problems.append("the guest never fetched its user data from the metadata service")
    if problems:
        return failed("metadata", evidence, "; ".join(problems))
    return passed("metadata", evidence + "; the run's key logged in and the user data's nonce is back")


def imds_tokens(platform, requests: list) -> CheckResult:
    if platform.name != "ec2":
        return skipped("imds-tokens", f"no EC2 metadata service under {platform.label}")
    asked = [r for r in requests if not (r.method == "PUT" and "api/token" in r.path)]
    puts = len(requests) - len(asked)
    good = [r for r in asked if r.token == "valid"]
    evidence = f"{len(good)} of {len(asked)} metadata requests carried a valid token; {puts} token PUT(s)"
    if platform.imds != "v2":
        return skipped("imds-tokens", f"IMDSv1: tokens are optional ({evidence})")
    if not asked:
        return failed("imds-tokens", evidence, "the guest never read the metadata service")
    bad = [r for r in asked if r.token != "valid"]
    if bad:
        return failed("imds-tokens", evidence, "requests without a valid token (401 under IMDSv2): "
                      + "; ".join(r.line() for r in bad[:3]))
    return passed("imds-tokens", evidence)


FIRMWARE_NAMES = {"legacy-bios": ("bios", "SeaBIOS (legacy BIOS)"), "uefi": ("uefi", "OVMF (UEFI)")}


def boot_mode(mode: str, s: dict, platform, esp: str = "") -> CheckResult:
    """The AMI's BootMode, one firmware per boot: the guest booted through it to a login and sees
    it (/sys/firmware/efi exists under UEFI only)."""
    name = f"boot-mode:{mode}"
    if platform.name != "ec2":
        return skipped(name, f"booted as {platform.label}: no AMI boot mode to prove")
    if platform.boot_mode != mode:
        return skipped(name, f"this boot went through {platform.boot_mode}, not {mode}")
    want, firmware = FIRMWARE_NAMES[mode]
    seen = _kv(s.get("firmware", "")).get("firmware", "")
    evidence = f"booted through {firmware} to an ssh login; the guest's kernel reports {seen or 'nothing'}" \
               f" firmware (/sys/firmware/efi {'present' if seen == 'uefi' else 'absent'})"
    evidence += f"; {esp}" if esp else ""
    if seen == want:
        return passed(name, evidence)
    if not seen:
        return failed(name, "", "the guest script did not report its firmware")
    return failed(name, evidence, f"booted with {mode} firmware but the guest reports {seen}")


def ena_driver(s: dict, platform, facts) -> CheckResult:
    """EnaSupport: the image's own kernel carries the ena driver, read offline (ena.ko* under its
    modules dir, or ena in modules.builtin), then confirmed in the guest by `modinfo ena`. qemu
    has no ENA device model: the driver is shown present, never driving a NIC."""
    name = "ena-driver"
    if platform.name != "ec2" or not platform.ena:
        return skipped(name, "the AMI declares no ENA (EnaSupport false)")
    kernel = _kv(s.get("firmware", "")).get("kernel", "")
    if not facts.read:
        return failed(name, facts.note, "the image's modules could not be read offline")
    where = facts.ena.get(kernel)
    offline = f"offline: {kernel}: {where}" if where else \
        f"offline: kernels {', '.join(facts.kernels) or 'none found'}; with ena: " \
        f"{', '.join(facts.ena) or 'none'}"
    if not where:
        return failed(name, offline, f"the booted kernel {kernel or '(unknown)'} has no ena driver: no "
                                     f"ena.ko* under its modules dir and no ena in modules.builtin")
    probe = s.get("ena", "").strip().splitlines()
    rc = probe[-1] if probe else ""
    found = probe[0] if len(probe) > 1 else ""
    if rc != "rc=0":
        return failed(name, f"{offline}; in the guest: {' '.join(probe) or 'no answer'}",
                      "modinfo ena failed in the guest")
    return passed(name, f"{offline}; in the guest: modinfo ena -> {found} (no ENA device model in qemu: "
                        "present, not driven)")


def sealed(s: dict, ports) -> CheckResult:
    lines = [ln.split() for ln in s.get("seal", "").splitlines() if len(ln.split()) == 2]
    if not ports:
        return skipped("sealed", "no probe ports configured ([boot_test] seal_probe_ports)")
    if not lines:
        return failed("sealed", "no seal probe record in the guest",
                      "the guest recorded no seal probe (its user data's runcmd did not run)")
    opened = [t for t, st in lines if st == "open"]
    evidence = f"the guest tried {len(lines)} host address:port pairs, reached {len(opened)}"
    if opened:
        return failed("sealed", evidence, "the guest reached the host: " + ", ".join(opened[:5]))
    return passed("sealed", evidence + " (" + ", ".join(t for t, _ in lines[:4]) + ", ...)")


def nvme_root(s: dict, platform, arch: str) -> CheckResult:
    if not platform.nvme_root(arch):
        return skipped("nvme-root", f"the root is NVMe only on ec2 x86_64 (Nitro); booted as "
                                    f"{platform.label} on {arch}")
    src = _kv(s.get("root", "")).get("source", "")
    if "/nvme" in src:
        return passed("nvme-root", f"/ is on {src}")
    return failed("nvme-root", f"/ is on {src or 'unknown'}", "the root filesystem is not on an NVMe device")


def system_health(s: dict) -> CheckResult:
    h = s.get("health", "")
    failed_units = [ln.split(None, 1)[1] for ln in h.splitlines() if ln.startswith("failed ")]
    kv = dict(ln.split(None, 1) for ln in h.splitlines() if len(ln.split(None, 1)) == 2)
    tmp_mode = kv.get("tmp", "").strip()
    boot_id = kv.get("boot_id", "").replace("-", "").strip()
    journal = _kv(s.get("journal", "")).get("_BOOT_ID", "").strip()
    enforce = kv.get("selinux_enforce")
    config = kv.get("selinux_config")
    problems, evidence = [], [f"failed units: {len(failed_units)}", f"/tmp mode {tmp_mode or '?'}"]
    if failed_units:
        problems.append("failed units: " + ", ".join(failed_units[:5]))
    if tmp_mode != "1777":
        problems.append(f"/tmp is mode {tmp_mode or 'unknown'}, not 1777")
    if journal and journal == boot_id:
        evidence.append("the journal holds this boot")
    else:
        problems.append("the journal holds no entry of this boot")
    if enforce is None and config is None:
        evidence.append("no SELinux in the image")
    elif enforce == "1":
        evidence.append("SELinux enforcing")
    else:
        problems.append(f"SELinux is not enforcing ({'permissive' if enforce == '0' else 'disabled'}; "
                        f"{config or 'no config'})")
    if problems:
        return failed("system-health", "; ".join(evidence), "; ".join(problems))
    return passed("system-health", "; ".join(evidence))
