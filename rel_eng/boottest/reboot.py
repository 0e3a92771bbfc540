"""The opt-in `reboot` check: the instance reboots and comes back as the same instance.

A cloud instance is rebooted by its users and by the cloud (host maintenance); an image that
comes back with new host keys (every ssh client then refuses it), a new instance-id, or with
cloud-init running its per-instance modules again (a second user, a reset password, a regrown
disk) is broken in a way a first boot cannot show. The state is read over ssh before and after:
the boot id (it must change: the guest really rebooted), cloud-init's instance-id, the public
host keys, and the semaphores of cloud-init's per-instance modules (a module that reran rewrites
its own). The login after the reboot goes through the known_hosts pinned from the first boot's
console, so ssh itself refuses a changed host key. qemu runs without -no-reboot for this check
only (qemu.VmSpec.allow_reboot): elsewhere a guest that resets ends the boot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rel_eng.boottest import checks as ck

# Read-only, as the default user; the semaphores are world-readable (cloud-init writes them 0644).
STATE_SCRIPT = """set -u
cloud-init status --wait >/dev/null 2>&1 || true
echo @@boot_id; cat /proc/sys/kernel/random/boot_id
echo @@instance_id; cat /var/lib/cloud/data/instance-id 2>/dev/null
echo @@host_keys; for f in /etc/ssh/ssh_host_*_key.pub; do cut -d' ' -f1,2 "$f"; done
echo @@per_instance; for f in /var/lib/cloud/instance/sem/*; do
  [ -e "$f" ] && stat -c '%n %y' "$f"; done
echo @@end
"""
# Ends the ssh session at once and reboots a second later, so the command never hangs on a
# connection the reboot cuts.
REBOOT_COMMAND = ("(sudo -n systemd-run --quiet --on-active=1 /bin/systemctl reboot "
                  "|| (sleep 1; sudo -n systemctl reboot)) </dev/null >/dev/null 2>&1 &\n")
HOST_KEY_REFUSED = "Host key verification failed"


@dataclass(frozen=True)
class GuestState:
    boot_id: str
    instance_id: str
    host_keys: tuple[str, ...]
    per_instance: tuple[str, ...]  # "<semaphore path> <mtime>" of each per-instance module


def parse(out: str) -> GuestState | None:
    """The state STATE_SCRIPT printed; None when the script did not finish."""
    s = ck.sections(out)
    if "end" not in s or not s.get("boot_id", "").strip():
        return None
    lines = lambda name: tuple(sorted(ln.strip() for ln in s.get(name, "").splitlines() if ln.strip()))  # noqa: E731
    return GuestState(s["boot_id"].strip(), s.get("instance_id", "").strip(), lines("host_keys"),
                      lines("per_instance"))


def judge(before: GuestState | None, after: GuestState | None, why_not_back: str = "") -> ck.CheckResult:
    """Pure: the check's result from the state before and after the reboot."""
    if before is None:
        return ck.failed("reboot", "", "could not read the guest's state before rebooting")
    if after is None:
        return ck.failed("reboot", f"instance-id {before.instance_id} before",
                         why_not_back or "the guest did not come back from the reboot")
    problems = []
    if after.boot_id == before.boot_id:
        problems.append("the boot id did not change (the guest did not reboot)")
    if after.instance_id != before.instance_id:
        problems.append(f"instance-id changed: {before.instance_id} -> {after.instance_id}")
    if after.host_keys != before.host_keys:
        problems.append("the ssh host keys changed")
    rerun = sorted(set(after.per_instance) - set(before.per_instance))
    if rerun:
        names = ", ".join(p.split()[0].rsplit("/", 1)[-1] for p in rerun[:4])
        problems.append(f"cloud-init ran per-instance modules again ({names})")
    evidence = (f"rebooted (boot id {before.boot_id[:8]} -> {after.boot_id[:8]}); ssh answered "
                f"again with the pinned host keys; instance-id {after.instance_id}; "
                f"{len(after.host_keys)} host keys, {len(after.per_instance)} per-instance "
                f"semaphores unchanged")
    if problems:
        return ck.failed("reboot", evidence, "; ".join(problems))
    return ck.passed("reboot", evidence)


def reboot_and_compare(ssh: Callable[[str, float], tuple[int, str, str]], *, running: Callable[[], bool],
                       clock: Callable[[], float], sleep: Callable[[float], None],
                       bound_s: float, retry_s: float = 1.0, retry_max_s: float = 5.0,
                       stopped: Callable[[], bool] = lambda: False) -> ck.CheckResult:
    """Read the state, reboot, wait (bounded) until a login shows a new boot, read it again.
    `ssh(command_or_script, timeout)` runs one login: (rc, stderr, stdout)."""
    _rc, _err, out = ssh(STATE_SCRIPT, bound_s)
    before = parse(out)
    if before is None:
        return judge(None, None)
    ssh(REBOOT_COMMAND, 30)
    t0, attempt, last = clock(), 0, ""
    while clock() - t0 < bound_s and running() and not stopped():
        attempt += 1
        sleep(min(retry_max_s, retry_s * 2 ** min(attempt - 1, 8)))
        rc, err, out = ssh(STATE_SCRIPT, bound_s)
        after = parse(out)
        if after is not None and after.boot_id != before.boot_id:
            return judge(before, after)
        if HOST_KEY_REFUSED in err:  # back, but not with the keys pinned at first boot
            return ck.failed("reboot", f"instance-id {before.instance_id} before",
                             "the ssh host keys changed: ssh refused the keys pinned at first boot")
        last = (err.strip().splitlines()[-1:] or [""])[0] if rc else "the old boot still answered"
    why = ("qemu exited during the reboot" if not running()
           else f"no login after the reboot within {bound_s:.0f} s ({last or 'no answer'})")
    return judge(before, None, why)
