"""Boot one image (or several side by side) and turn what happens into a verdict.

Order of a boot: a throw-away overlay larger than the image, a key made for this run, and what
the image's platform presents (rel_eng.boottest.platform): a NoCloud seed, an OpenStack config
drive, or a metadata service of this VM's own, with the platform's DMI and disk. qemu runs with
a random MAC, its user network sealed (restrict=on: the guest reaches no host port and nothing
beyond; ssh is forwarded in from 127.0.0.1 only, the metadata service reached only through the
VM's network). While the guest boots, the image is read offline (MAC bindings, datasource_list).
Then the console milestones (a console that settles the boot early is judged at once), the host
keys cloud-init printed, ssh, one script in the guest, and the checks. The VM and its metadata
server are stopped and the work directory (key, seed, overlay, socket) removed in a `finally`,
so nothing of the test outlives it.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rel_eng import runner
from rel_eng.atomic import atomic_path, atomic_write
from rel_eng.boottest import checks as ck
from rel_eng.boottest import console, offline, qemu, reboot, seed, sshclient
from rel_eng.boottest.accel import Accel
from rel_eng.boottest.image import DiskImage
from rel_eng.boottest.metadata import Instance, ec2_instance, openstack_instance
from rel_eng.boottest.metadata import openstack as os_md
from rel_eng.boottest.metadata.imds import Imds
from rel_eng.boottest.metadata.server import MetadataServer, guestfwd
from rel_eng.boottest.platform import Platform, smbios
from rel_eng.boottest.vm import Vm, kill_all
from rel_eng.config.boot_test import SEAL_PROBE_PORTS
from rel_eng.errors import TimedOut

GROW_BYTES = 1024**3
SSH_RETRY_MAX_S = 2.0
MIB = 1024**2


@dataclass(frozen=True)
class Timeouts:
    # Under TCG a Debian cloud root answers ssh 31-35 s after qemu starts, cloud-init is done by
    # 36-42 s; these bounds leave room for several guests sharing two cores.
    console: float = 300.0   # first kernel line
    boot: float = 900.0      # host keys on the console (cloud-init's final stage)
    ssh: float = 120.0       # sshd answering once the keys are printed
    guest_script: float = 300.0


@dataclass(frozen=True)
class BootOptions:
    accel: Accel
    checks: tuple[str, ...] = ck.DEFAULT_CHECKS
    user: str = "fedora"
    memory_mib: int = 1024
    timeouts: Timeouts = Timeouts()
    wanted_packages: tuple[str, ...] = ()
    excluded_packages: tuple[str, ...] = ()
    packages_source: str = ""
    logs_dir: Path | None = None       # console logs are copied here as <stem>.console.log
    packages_dir: Path | None = None   # <stem>-packages.txt goes here
    tcg_tb_size_mib: int = 256  # TCG translation cache; 0: qemu's default (see qemu.py)
    poll_s: float = 0.25       # how often the console is read while the guest boots
    ssh_retry_s: float = 0.5   # first pause between ssh attempts, doubling up to SSH_RETRY_MAX_S
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    platform: Platform = Platform()  # how each image is booted unless run_many is told per image
    seal_probe_ports: tuple[int, ...] = SEAL_PROBE_PORTS
    kickstart_given: bool = False     # anaconda-install has its input (else it is skipped)


@dataclass
class Verdict:
    image: str
    arch: str
    accel: str
    accel_reason: str
    status: str  # pass | fail
    checks: list[ck.CheckResult] = field(default_factory=list)
    reason: str = ""
    console_log: str | None = None
    packages_file: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    guest_uptime: float | None = None
    peak_rss_mib: float | None = None
    memory_mib: int = 0
    platform: dict = field(default_factory=dict)           # Platform.as_dict()
    metadata_requests: list[str] = field(default_factory=list)  # every request the guest made
    metadata_cpu_s: float | None = None                     # the metadata server's own CPU time

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}  # no key, no nonce
        d["checks"] = [c.as_dict() for c in self.checks]
        return d


STOP = threading.Event()
_PORTS_LOCK = threading.Lock()
_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    with _PORTS_LOCK:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _PORTS_GIVEN:
                _PORTS_GIVEN.add(port)
                return port


def stem(image: Path) -> str:
    name = image.name
    for ext in (".qcow2", ".raw", ".img"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def run_many(images: list[DiskImage], opts: BootOptions, parallel: int,
             platforms: list[Platform] | None = None) -> list[Verdict]:
    """Side by side, at most `parallel` at once and as many as the host's memory allows; each
    image booted as `platforms[i]` (default: opts.platform)."""
    bound = max(1, min(parallel, memory_bound(per_vm_mib(opts)), len(images)))
    plats = platforms or [opts.platform] * len(images)
    STOP.clear()
    pool = ThreadPoolExecutor(max_workers=bound, thread_name_prefix="boot-test")
    try:
        futures = [pool.submit(boot_one, img, opts, plat) for img, plat in zip(images, plats)]
        return [f.result() for f in futures]
    except BaseException:
        STOP.set()
        kill_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


QEMU_DEFAULT_TB_MIB = 1024  # qemu's TCG translation cache when tb-size is not given (64-bit host)


def per_vm_mib(opts: BootOptions) -> int:
    """Guest RAM, plus under TCG the translation cache the guest may fill (not counted in the
    +100 MiB that memory_bound adds for qemu itself)."""
    tb = (opts.tcg_tb_size_mib or QEMU_DEFAULT_TB_MIB) if opts.accel.name == "tcg" else 0
    return opts.memory_mib + tb


def memory_bound(memory_mib: int) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) // 1024
                return max(1, int(avail * 0.8) // (memory_mib + 100))
    except OSError:
        pass
    return 1


class _Stopped(Exception):
    pass


def boot_one(img: DiskImage, opts: BootOptions, platform: Platform | None = None) -> Verdict:
    platform = platform or opts.platform
    v = Verdict(str(img.path), img.arch, opts.accel.name, opts.accel.reason, "fail",
                memory_mib=opts.memory_mib, platform=platform.as_dict())
    v._platform, v._server = platform, None  # type: ignore[attr-defined]
    work = Path(tempfile.mkdtemp(prefix="rel-eng-boot-"))  # mode 0700: the socket lives here
    vm = reader = None
    t0 = opts.clock()
    try:
        if platform.uefi and not _uefi_bootable(img, work, v):
            v.checks = [r for r in v.checks if r.name in opts.checks]
            return _judged(v, opts, t0)
        vm = _start(img, opts, work, v, t0)
        reader = _OfflineRead(img, work, opts.clock, ena=platform.ena)
        results = _observe(img, opts, work, vm, reader, v, t0)
        v.checks = [r for r in results if r.name in opts.checks]
    except _Stopped:
        v.reason = "stopped: rel-eng was interrupted"
    except Exception as exc:  # a crash of the check code is a failed verdict, never a traceback
        v.reason = f"boot test error: {type(exc).__name__}: {exc}"
    finally:
        t = opts.clock()
        if vm is not None:
            vm.sample_rss()
            vm.kill()
            v.peak_rss_mib = round(vm.peak_rss_kib / 1024, 1)
        if v._server is not None:  # type: ignore[attr-defined]
            v._server.stop()  # type: ignore[attr-defined]
            v.metadata_requests = [r.line() for r in v._server.snapshot()]  # type: ignore[attr-defined]
            v.metadata_cpu_s = round(v._server.cpu_s, 4)  # type: ignore[attr-defined]
        if reader is not None:
            reader.stop()
            if reader.seconds is not None:
                v.seconds["part:offline_read"] = reader.seconds
        _keep_console(img, opts, work, v)
        shutil.rmtree(work, ignore_errors=True)
        _lap(opts, v, "teardown", t)
    return _judged(v, opts, t0)


def _judged(v: Verdict, opts: BootOptions, t0: float) -> Verdict:
    v.seconds["verdict"] = round(opts.clock() - t0, 2)
    failing = [c for c in v.checks if ck.counts_against(c)]
    ran = [c for c in v.checks if c.status != "skipped"]
    v.status = "pass" if ran and not failing and not v.reason else "fail"
    if not v.reason and failing:
        v.reason = "; ".join(f"{c.name}: {c.message}" for c in failing[:3])
    return v


def _uefi_bootable(img: DiskImage, work: Path, v: Verdict) -> bool:
    """Before a UEFI boot: an image with nothing a UEFI firmware can start fails boot-mode:uefi
    from the offline read of its ESP, with no boot (and no OVMF time) spent on it."""
    why, evidence = "", ""
    if img.arch != "x86_64":
        why = f"no UEFI boot for {img.arch}: EC2 boots i386 AMIs only through legacy BIOS"
    else:
        esp = offline.read_esp(img.path, img.fmt, work)
        evidence = f"offline read: {esp.evidence}"
        why = "" if esp.bootable else f"the image cannot boot through UEFI: {esp.evidence}"
    if not why:
        v._esp = evidence  # type: ignore[attr-defined]
        return True
    v.reason = f"boot-mode:uefi: {why}"
    v.checks = [ck.failed("boot-mode:uefi", evidence, why)] + \
        [ck.not_run(n, "no UEFI boot: nothing on the disk for the firmware to start")
         for n in ck.CHECKS if n != "boot-mode:uefi"]
    return False


def _lap(opts: BootOptions, v: Verdict, name: str, since: float) -> float:
    """Record how long one part of the gate took (v.seconds["part:<name>"]); returns now."""
    now = opts.clock()
    v.seconds[f"part:{name}"] = round(now - since, 3)
    return now


def _instance(platform: Platform, pub: str, user_data: str, mac: str) -> Instance:
    ip = qemu.guest_ipv4(platform.serves_metadata)
    if platform.name == "ec2":
        return ec2_instance(pub, user_data, mac, ip)
    if platform.name == "openstack":
        return openstack_instance(pub, user_data, mac, ip)
    tag = uuid.uuid4().hex[:12]
    return Instance(f"rel-eng-{tag}", f"rel-eng-{tag}", f"rel-eng-{tag}", pub, user_data, mac, ip,
                    str(uuid.uuid4()))


def _present(platform: Platform, inst: Instance, work: Path, v: Verdict) -> tuple[Path | None, str]:
    """Build what the platform shows the guest: (CD to attach or None, guestfwd option or "")."""
    if platform.name == "nocloud":
        return seed.make_iso(work / "seed.iso", user_data_text=inst.user_data,
                             instance_id=inst.instance_id, hostname=inst.hostname), ""
    if platform.name == "openstack" and platform.openstack == "config-drive":
        return os_md.make_config_drive(work / "config-drive.iso", inst), ""
    if platform.name == "openstack" and platform.openstack == "config-drive-vfat":
        return os_md.make_vfat_config_drive(work / "config-drive.img", inst), ""
    service = Imds(inst, platform.imds) if platform.name == "ec2" else os_md.OpenStackMetadata(inst)
    v._server = MetadataServer(service, work)  # type: ignore[attr-defined]
    return None, guestfwd()


def _start(img: DiskImage, opts: BootOptions, work: Path, v: Verdict, t0: float) -> Vm:
    t = opts.clock()
    platform: Platform = v._platform  # type: ignore[attr-defined]
    key, pub = sshclient.make_key(work)
    v._key = key  # type: ignore[attr-defined]
    v._nonce = secrets.token_hex(16)  # type: ignore[attr-defined]
    v._mac = qemu.random_mac()  # type: ignore[attr-defined]
    t = _lap(opts, v, "key", t)
    inst = _instance(platform, pub, seed.user_data(pub, v._nonce, opts.seal_probe_ports), v._mac)
    v._inst = inst  # type: ignore[attr-defined]
    cd, fwd = _present(platform, inst, work, v)
    t = _lap(opts, v, "seed", t)
    overlay = work / "overlay.qcow2"
    runner.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", img.path, "-F", img.fmt,
                overlay, str(img.virtual_size + GROW_BYTES)])
    t = _lap(opts, v, "overlay", t)
    uefi_vars = None
    if platform.uefi:  # OVMF writes its variables: each VM its own copy, removed with `work`
        if not (qemu.OVMF_CODE.is_file() and qemu.OVMF_VARS.is_file()):
            raise runner.ToolMissing(str(qemu.OVMF_CODE), qemu.OVMF_PACKAGE)
        uefi_vars = work / "OVMF_VARS.fd"
        shutil.copyfile(qemu.OVMF_VARS, uefi_vars)
    for _attempt in range(3):
        v._port = free_port()  # type: ignore[attr-defined]
        spec = qemu.VmSpec(img.arch, opts.accel.name, overlay, cd,
                           work / "console.log", v._mac, v._port, opts.memory_mib,
                           tb_size_mib=opts.tcg_tb_size_mib,
                           smbios=tuple(smbios(platform, inst.system_uuid)),
                           nvme_root=platform.nvme_root(img.arch), guestfwd=fwd,
                           allow_reboot="reboot" in opts.checks,
                           seed_is_disk=platform.openstack == "config-drive-vfat",
                           uefi_vars=uefi_vars)
        vm = Vm(qemu.argv(spec), work / "qemu.log", cwd=work)
        v.seconds["qemu_started"] = round(opts.clock() - t0, 3)
        opts.sleep(0.5)  # the guest boots meanwhile: a port taken since it was chosen fails fast
        if vm.running() or "hostfwd" not in vm.stderr_text():
            return vm
        vm.kill()  # the port was taken between choosing and binding: choose another
    return vm


class _OfflineRead(threading.Thread):
    """Reads the image offline while the guest boots (qcow2 is expanded to a sparse raw first).

    `stop()` kills the expansion and waits, so the work directory is never written after removal.
    """

    def __init__(self, img: DiskImage, work: Path, clock: Callable[[], float] = time.monotonic,
                 ena: bool = False):
        super().__init__(daemon=True)
        self.img, self.work, self.clock, self.ena = img, work, clock, ena
        self.seconds: float | None = None  # how long the read took (it runs beside the boot)
        self.facts = offline.OfflineFacts(note="offline read did not finish")
        self._proc = None
        self._stopped = threading.Event()
        self.start()

    def run(self):
        raw = self.work / "offline.raw"
        t = self.clock()
        try:
            src = self.img.path
            if self.img.fmt != "raw":
                self._proc = runner.start(["qemu-img", "convert", "-f", self.img.fmt, "-O", "raw",
                                           self.img.path, raw], stdout=runner.DEVNULL)
                runner.wait(self._proc)  # CommandFailed names qemu-img's last stderr line
                if self._stopped.is_set():
                    raise RuntimeError("stopped")
                src = raw
            self.facts = offline.read(src, ena=self.ena)
            self.seconds = round(self.clock() - t, 3)
        except Exception as exc:
            self.facts = offline.OfflineFacts(note=f"offline read failed: {exc}")
        finally:
            raw.unlink(missing_ok=True)

    def stop(self):
        self._stopped.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.join(timeout=120)


def _console(work: Path) -> console.ConsoleFacts:
    try:
        return console.parse((work / "console.log").read_text(errors="replace"))
    except OSError:
        return console.ConsoleFacts()


def _wait(opts, vm, t0, bound, done) -> bool:
    while True:
        if STOP.is_set():
            raise _Stopped()
        if done():
            return True
        if not vm.running() or opts.clock() - t0 > bound:
            return False
        vm.sample_rss()
        opts.sleep(opts.poll_s)


def _likely_cause(facts: offline.OfflineFacts) -> str:
    if facts.bindings:
        return "likely cause: a MAC binding in the image (" + "; ".join(facts.bindings[:2]) + ")"
    if facts.present.get("sshd") is False:
        return "likely cause: the image has no sshd (/usr/sbin/sshd is missing)"
    return "no MAC binding or missing sshd found offline" if facts.read else facts.note


def _settled_verdict(opts, vm, reader, v, c, cons_ok: bool) -> list[ck.CheckResult]:
    """The console settled the boot before the checks could run: judge it now, naming why."""
    platform: Platform = v._platform  # type: ignore[attr-defined]
    cause = c.settled(platform.serves_metadata)
    rest = [n for n in ck.CHECKS if n != "console"]
    if c.cloud_init_disabled and not c.panic:
        reader.join(timeout=opts.timeouts.ssh)  # the image's datasource_list names the cause
        ds = ck.datasource_never_ran(platform, reader.facts, cause)
        v.reason = f"datasource: {ds.message}"
        cons = ck.failed("console", f"kernel and a login prompt; last console line: {c.last_line}",
                         "no cloud-init line on the console before the login prompt")
        return [cons, ds] + [ck.not_run(n, "cloud-init never ran") for n in rest if n != "datasource"]
    if c.metadata_sought and not c.panic and not platform.serves_metadata:
        reader.join(timeout=opts.timeouts.ssh)
        ds = ck.datasource_not_presented(platform, reader.facts, cause)
        v.reason = f"datasource: {ds.message}"
        cons = ck.passed("console", "kernel and cloud-init lines on the serial console")
        return [cons, ds] + [ck.not_run(n, "cloud-init found no datasource the platform presents")
                             for n in rest if n != "datasource"]
    v.reason = f"{cause}; last console line: {c.last_line}"
    status = ck.passed if cons_ok else None
    cons = status("console", "kernel line on the serial console") if status else \
        ck.failed("console", f"last console line: {c.last_line}", cause)
    return [cons] + [ck.not_run(n, cause) for n in rest]


def _observe(img, opts, work, vm, reader, v, t0) -> list[ck.CheckResult]:
    """The boot from the console to the checks: each stage returns a finished list of results
    when it settles the verdict (the rest not run, naming why), else hands on to the next."""
    serves = v._platform.serves_metadata  # type: ignore[attr-defined]
    booted, c = _until(opts, vm, t0, work, opts.timeouts.console,
                       lambda f: f.kernel or bool(f.settled(serves)))
    if not c.kernel and c.settled(serves):
        return _settled_verdict(opts, vm, reader, v, c, cons_ok=False)
    if not booted:
        return _no_kernel(opts, vm, v, c)
    v.seconds["kernel"] = round(opts.clock() - t0, 2)
    if c.printk_uptime is not None:  # the guest's uptime then: its uptime 0 was that much earlier
        v.seconds["kernel_uptime"] = c.printk_uptime
    keys, c = _until(opts, vm, t0, work, opts.timeouts.boot,
                     lambda f: (f.cloud_init and f.keys_complete) or bool(f.settled(serves)))
    if (not keys or not c.keys_complete) and c.settled(serves):
        v.seconds["settled"] = round(opts.clock() - t0, 2)
        return _settled_verdict(opts, vm, reader, v, c, cons_ok=True)
    cons = _console_result(opts, c)
    if not keys:
        return _no_host_keys(opts, vm, reader, v, c, cons)
    v.seconds["host_keys"] = round(opts.clock() - t0, 2)
    t = opts.clock()
    known, pinned = sshclient.pinned_known_hosts(work, v._port, c.host_keys, c.fingerprints)
    t = _lap(opts, v, "pin_host_keys", t)
    reader.join(timeout=opts.timeouts.boot)  # bounded by its own tools; rarely still running
    t = _lap(opts, v, "offline_read_wait", t)
    if not pinned:
        v.reason = "no host key on the console matches the fingerprints printed with it"
        return [cons, ck.failed("ssh", f"{len(c.host_keys)} keys, {len(c.fingerprints)} fingerprints",
                                v.reason)] + _not_run_but(("console", "ssh"), "no verified host key")
    login = _login(opts, vm, v, known)
    v.seconds["ssh_attempts"] = login.attempts
    if not login.answered:
        return _ssh_never_answered(opts, work, v, reader.facts, cons, pinned, login)
    v.seconds["guest_script"] = round(opts.clock() - t0, 2)
    t = _lap(opts, v, "ssh_and_guest_script", t)
    methods = login.methods(known, v._port, opts.user)
    t = _lap(opts, v, "auth_methods_after_script", t)
    results = _judge_guest(img, opts, work, v, reader.facts, cons,
                           _ssh_result(opts, pinned, methods), login)
    if "reboot" in opts.checks:  # opt-in: last, as it ends the boot the other checks read
        results.append(_reboot(opts, vm, v, known))
        _lap(opts, v, "reboot", t)
    return results


def _reboot(opts, vm, v, known: Path) -> ck.CheckResult:
    def ssh(script: str, timeout: float):
        return runner_run_quiet(sshclient.argv(v._key, known, v._port, opts.user, "bash -s"),
                                min(timeout, opts.timeouts.guest_script), stdin=script)

    return reboot.reboot_and_compare(ssh, running=vm.running, clock=opts.clock, sleep=opts.sleep,
                                     bound_s=opts.timeouts.boot, stopped=STOP.is_set)


def _until(opts, vm, t0, work, bound, pred) -> tuple[bool, console.ConsoleFacts]:
    """Wait (bounded from t0) until the console shows `pred`; (whether it did, the console)."""
    seen = [console.ConsoleFacts()]

    def done() -> bool:
        seen[0] = _console(work)
        return pred(seen[0])

    return _wait(opts, vm, t0, bound, done), seen[0]


def _not_run_but(ran: tuple[str, ...], why: str) -> list[ck.CheckResult]:
    return [ck.not_run(n, why) for n in ck.CHECKS if n not in ran]


def _no_kernel(opts, vm, v, c) -> list[ck.CheckResult]:
    why = ("qemu exited: " + vm.stderr_text()[-200:]) if not vm.running() else \
        f"timeout: no kernel line on the serial console within {opts.timeouts.console:.0f} s"
    v.reason = f"{why}; last console line: {c.last_line or '(console empty)'}"
    return [ck.failed("console", f"last console line: {c.last_line or '(empty)'}", why)] + \
        _not_run_but(("console",), "the guest did not boot")


def _console_result(opts, c) -> ck.CheckResult:
    if c.cloud_init:
        return ck.passed("console", "kernel and cloud-init lines on the serial console")
    return ck.failed("console", f"last console line: {c.last_line}",
                     f"no cloud-init line on the console within {opts.timeouts.boot:.0f} s")


def _no_host_keys(opts, vm, reader, v, c, cons) -> list[ck.CheckResult]:
    reader.join(timeout=opts.timeouts.ssh)
    why = (f"cloud-init printed no ssh host keys on the console within {opts.timeouts.boot:.0f} s"
           if vm.running() else "qemu exited before cloud-init printed the host keys")
    v.reason = f"{why}; last console line: {c.last_line}"
    return [cons, ck.failed("ssh", f"last console line: {c.last_line}", why)] + \
        _not_run_but(("console", "ssh"), "no host key to check ssh against")


@dataclass
class _Login:
    """The first login that worked (it ran the guest script), or the last that failed."""
    answered: bool = False
    attempts: int = 0
    rc: int = -1
    err: str = ""       # ssh's stderr without its debug lines
    out: str = ""
    last_err: str = ""
    offered: list[str] | None = None  # what sshd offered before the key, from ssh -v

    def methods(self, known: Path, port: int, user: str) -> list[str]:
        """What sshd offers before any credential: read from the login itself, or (when its
        stderr did not say) asked by one unauthenticated connection."""
        found = self.offered
        if found is None:
            found = sshclient.auth_methods(known, port, user)
        return found or []


def _login(opts, vm, v, known: Path) -> _Login:
    """The first login that works runs the guest script (no separate "ssh true" handshake) and,
    with ssh -v, also tells which methods sshd offers (no second connection for that: under TCG
    a key exchange costs the guest's one CPU a second or more); backs off between attempts."""
    script = ck.guest_script(seed.NONCE_PATH, [*opts.wanted_packages, *opts.excluded_packages],
                             seed.SEAL_PATH, ena=v._platform.ena)  # type: ignore[attr-defined]
    login = _Login()
    ssh_t0 = opts.clock()
    while opts.clock() - ssh_t0 < opts.timeouts.ssh and vm.running():
        if STOP.is_set():
            raise _Stopped()
        login.attempts += 1
        login.rc, err, login.out = runner_run_quiet(
            sshclient.argv(v._key, known, v._port, opts.user, "bash -s", verbose=True),
            opts.timeouts.guest_script, stdin=script)
        login.err, login.offered = sshclient.without_debug(err), sshclient.methods_offered(err)
        if login.out or login.rc not in (255, -1):
            login.answered = True
            return login
        login.last_err = (login.err.strip().splitlines()[-1:] or [""])[0]
        opts.sleep(min(SSH_RETRY_MAX_S, opts.ssh_retry_s * 2 ** (login.attempts - 1)))
    return login


def _ssh_never_answered(opts, work, v, facts, cons, pinned, login: _Login) -> list[ck.CheckResult]:
    c = _console(work)
    v.reason = (f"ssh never answered on 127.0.0.1:{v._port} within {opts.timeouts.ssh:.0f} s "
                f"({login.last_err or 'no answer'}); {_likely_cause(facts)}; "
                f"last console line: {c.last_line}")
    return [cons, ck.failed("ssh", f"host keys pinned from the console: {', '.join(pinned)}",
                            v.reason), ck.no_hardcoded_mac(None, v._mac, facts)] + \
        _not_run_but(("console", "ssh", "no-hardcoded-mac"), "ssh never answered")


def _ssh_result(opts, pinned: list[str], methods: list[str]) -> ck.CheckResult:
    pw = [m for m in methods if m in ("password", "keyboard-interactive")]
    evidence = f"{opts.user} logged in with the run's key; host key pinned: {', '.join(pinned)}; " \
               f"server offers: {','.join(methods) or 'unknown'}"
    if pw:
        return ck.failed("ssh", evidence, "password authentication is offered: " + ",".join(pw))
    if methods:
        return ck.passed("ssh", evidence)
    return ck.failed("ssh", evidence, "could not learn which authentication methods sshd offers")


def _judge_guest(img, opts, work, v, facts, cons, ssh_res, login: _Login) -> list[ck.CheckResult]:
    """Every check the guest script's sections (and the metadata server's log) answer."""
    platform: Platform = v._platform  # type: ignore[attr-defined]
    s = ck.sections(login.out)
    v.seconds.update(ck.guest_timing(s))
    v.guest_uptime = _console(work).finished_uptime
    if "end" not in s:
        v.reason = f"the guest script did not finish (exit {login.rc}): {login.err.strip()[-200:]}"
    _keep_packages(img, opts, s, v)
    requests = v._server.snapshot() if v._server is not None else []  # type: ignore[attr-defined]
    esp = getattr(v, "_esp", "")
    results = [cons, ck.boot_mode("legacy-bios", s, platform, esp),
               ck.boot_mode("uefi", s, platform, esp), ck.cloud_init(s),
               ck.datasource(s, platform, facts), ssh_res,
               ck.metadata(s, v._inst, platform, requests), ck.user_data(s, v._nonce),
               ck.imds_tokens(platform, requests), ck.ena_driver(s, platform, facts),
               ck.sealed(s, opts.seal_probe_ports),
               ck.nvme_root(s, platform, img.arch), ck.root_grown(s),
               ck.no_hardcoded_mac(s, v._mac, facts), ck.firewall_off(s), ck.root_locked(s),
               ck.sudo_nopasswd(s, opts.user), ck.system_health(s)]
    results.append(_anaconda_install(opts, s))
    return results


def _anaconda_install(opts, s) -> ck.CheckResult:
    if opts.wanted_packages or opts.excluded_packages or opts.kickstart_given:
        return ck.anaconda_install(s, list(opts.wanted_packages), list(opts.excluded_packages),
                                   opts.packages_source)
    return ck.skipped("anaconda-install", "no kickstart given (--kickstart): nothing to compare "
                      "the installed packages with")


def runner_run_quiet(argv, timeout, stdin: str | None = None):
    """(rc, stderr, stdout) of a command that may fail; a timeout is rc -1, never an exception."""
    try:
        proc = runner.run(argv, input=stdin, timeout=timeout, check=False, text=True)
    except TimedOut as exc:
        return -1, f"timed out after {timeout:.0f} s", exc.stdout
    return proc.returncode, proc.stderr, proc.stdout


def _keep_console(img, opts, work, v):
    src = work / "console.log"
    if opts.logs_dir is None or not src.exists():
        return
    opts.logs_dir.mkdir(parents=True, exist_ok=True)
    dest = opts.logs_dir / f"{stem(img.path)}.console.log"
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    v.console_log = str(dest)


def _keep_packages(img, opts, s, v):
    text = s.get("packages", "")
    if opts.packages_dir is None or not text:
        return
    opts.packages_dir.mkdir(parents=True, exist_ok=True)
    dest = opts.packages_dir / f"{stem(img.path)}-packages.txt"
    atomic_write(dest, text + "\n")
    v.packages_file = str(dest)


def to_json(verdicts: list[Verdict]) -> str:
    return json.dumps([v.as_dict() for v in verdicts], indent=2, sort_keys=True)
