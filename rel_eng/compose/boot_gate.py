"""The boot gate step: after post-processing, before anything is published or staged.

Every bootable image of the compose is booted (side by side, bounded) by rel_eng.boottest. The
step is keyed by the disk's digest and the boot settings, so a rerun reuses a verdict instead of
booting again. Verdicts go to work/boottest/<key>.json, the manifest step `boottest:<key>` (which
the compose store mirrors and `rel-eng status` shows), compose/metadata/rel-eng.json and the
README (readme_section). Console logs go under logs/boottest/, the installed-package list next to
the images as `<NVRA>-packages.txt` (a deliverable, so it is in CHECKSUM and staged).

Where the gate applies ([boot_test] gate), a failed image is taken out of the drop: its disks
leave the manifest's artifact list (so neither EC2 nor staging sees them) and its build is marked
failed with the boot verdict as reason, so the compose ends DOOMED when the image is required and
FINISHED_INCOMPLETE when it is optional. A synthetic image is recorded "skipped: not bootable".
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path

from rel_eng.boottest import accel as accel_mod
from rel_eng.boottest import boot_modes, engine, image, kspackages
from rel_eng.boottest.platform import Platform, imds_mode
from rel_eng.config import ami_attributes
from rel_eng.config.ami_attributes import AmiAttributes
from rel_eng.compose.model import Compose, recorded
from rel_eng.compose.signals import terminate_on_signal
from rel_eng.atomic import atomic_write
from rel_eng.manifest import Artifact
from rel_eng.pipeline import step_key
from rel_eng.metadata import SUMMARY
from rel_eng.progress import Progress

SKIPPED = "skipped"
NOT_BOOTABLE = "skipped: not bootable"
DISABLED = "skipped: boot test disabled ([boot_test] enabled = false)"


def _disk(c: Compose, key: str) -> Artifact | None:
    for kind in ("qcow2", "raw-disk"):
        arts = [a for a in c.manifest.artifacts(job_key=key, kind=kind) if (c.topdir / a.path).is_file()]
        if arts:
            return arts[0]
    return None


def platform_for(c: Compose, key: str) -> Platform:
    """How the image is booted: its `[images.<key>] platform`; as ec2, with the AMI's attributes
    (the release's ec2_* over `[ec2]`): the IMDS mode from ImdsSupport ("v2.0" -> v2, "" -> v1),
    the ena driver checked when EnaSupport; the OpenStack mode from `[boot_test] openstack`."""
    itype = c.job(key).image_type
    name = next((t.platform for t in c.config.image_types if t.key == itype), "nocloud")
    attrs = ami_attributes.for_image(c.config.ec2, c.config.release(c.plan.release_key), c.job(key).arch)
    ec2 = name == "ec2"
    return Platform(name, imds_mode(attrs.imds_support), c.config.boot_test.openstack,
                    ena=ec2 and attrs.ena_support)


def attributes_for(c: Compose, key: str) -> AmiAttributes | None:
    """The AMI attributes the image's boot proves: an EC2-platform image's, else None."""
    if platform_for(c, key).name != "ec2":
        return None
    return ami_attributes.for_image(c.config.ec2, c.config.release(c.plan.release_key), c.job(key).arch)


def boot_mode_for(c: Compose, key: str) -> str:
    attrs = attributes_for(c, key)
    return attrs.boot_mode if attrs else "legacy-bios"


def verified_attributes(checks: list[dict], attrs: AmiAttributes) -> dict:
    """The AMI attributes a verdict's checks proved, as AmiAttributes.full() names them; one
    that declares nothing (IMDSv1 allowed, no ENA, SriovNetSupport and TpmSupport unset) needs
    no proof. What qemu cannot show (the Intel VF, a TPM) is never verified."""
    status = {c["name"]: c["status"] for c in checks}
    booted = status.get("console") == "pass" and status.get("ssh") == "pass"
    out: dict = {}
    if booted and all(status.get(f"boot-mode:{m}") == "pass" for m in boot_modes.firmwares(attrs.boot_mode)):
        out["BootMode"] = attrs.boot_mode
    if attrs.imds_support == "" or status.get("imds-tokens") == "pass":
        out["ImdsSupport"] = attrs.imds_support
    if not attrs.ena_support or status.get("ena-driver") == "pass":
        out["EnaSupport"] = attrs.ena_support
    if not attrs.sriov_net_support:
        out["SriovNetSupport"] = ""
    if not attrs.tpm_support:
        out["TpmSupport"] = ""
    return out


def _subject(c: Compose, key: str) -> tuple[Artifact | None, str, tuple, tuple]:
    """The disk to boot, why it is skipped (or ""), and the packages its kickstart names."""
    bt = c.config.boot_test
    disk = _disk(c, key)
    if disk is None or not disk.bootable or not bt.enabled:
        return disk, NOT_BOOTABLE if bt.enabled else DISABLED, (), ()
    job = c.job(key)
    ks = c.workdir(key) / f"{job.nvra}.ks"
    wanted, excluded = kspackages.packages(ks, job.ksversion) if ks.is_file() else ((), ())
    return disk, "", tuple(wanted), tuple(excluded)


def _inputs(c: Compose, key: str, disk: Artifact | None, skipped: str, wanted,
            excluded) -> tuple:
    if skipped:
        return (skipped,)
    bt = c.config.boot_test
    return (disk.sha256 or disk.path, disk.size, c.config.default_user, bt.memory_mib,
            list(bt.checks), list(wanted), list(excluded),
            {**platform_for(c, key).as_dict(), "boot_mode": boot_mode_for(c, key)},
            list(bt.seal_probe_ports))


def boottest_inputs(c: Compose, key: str) -> tuple:
    """What an image's boot test is keyed by (rel_eng.pipeline): the disk's digest and the boot
    settings, or why it is skipped."""
    return _inputs(c, key, *_subject(c, key))


def boottest_step(c: Compose, keys: list[str], progress: Progress) -> dict[str, dict]:
    """The pipeline's boottest step over `keys`: {image: its verdict's status}."""
    verdicts = run_gate(c, keys, progress)
    return {k: {"job": k, "boot_test": verdicts[k]["status"]} for k in keys}


def _verdict_path(c: Compose, key: str) -> Path:
    return c.topdir / "work" / "boottest" / f"{key}.json"


def run_gate(c: Compose, keys: list[str], progress: Progress | None = None, *,
             boot=engine.run_many) -> dict[str, dict]:
    """Boot-test the processed images `keys`; returns {key: verdict dict} (recorded as well)."""
    progress = progress or Progress(False)
    bt = c.config.boot_test
    manifest = recorded(c, c.recorder)  # each verdict's step reaches the store too
    verdicts: dict[str, dict] = {}
    todo: list[tuple[str, Artifact, str, tuple, tuple]] = []
    for key in sorted(keys):
        job = c.job(key)
        disk, why, wanted, excluded = _subject(c, key)
        digest = step_key("boottest", *_inputs(c, key, disk, why, wanted, excluded))
        if why:
            verdicts[key] = {"nvra": job.nvra, "status": SKIPPED, "reason": why, "checks": []}
            manifest.set_step(f"boottest:{key}", digest, SKIPPED, why)
            continue
        cached = _verdict_path(c, key)
        if manifest.step_done(f"boottest:{key}", digest) and cached.is_file():
            verdicts[key] = json.loads(cached.read_text())
            continue
        todo.append((key, disk, digest, tuple(wanted), tuple(excluded)))
    if todo:
        chosen = accel_mod.choose(bt.accel)
        with progress.step(f"boot-testing {len(todo)} image(s) under {chosen.name} ({chosen.reason})"):
            results = _boot(c, todo, chosen, boot)
        for (key, disk, digest, _, _), v in zip(todo, results):
            d = v.as_dict()
            d["nvra"] = c.job(key).nvra
            d["image"] = disk.path  # relative to the compose, never the overlay
            if d.get("console_log"):
                d["console_log"] = str(Path(d["console_log"]).relative_to(c.topdir))
            d.pop("packages_file", None)
            attrs = attributes_for(c, key)
            if attrs is not None:  # what registration may declare for this very disk
                d["ami_attributes"] = verified_attributes(d["checks"], attrs)
                raw = [a for a in c.manifest.artifacts(job_key=key, kind="raw-disk")]
                d["raw_sha256"] = raw[0].sha256 if raw else ""
            cached = _verdict_path(c, key)
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cached, json.dumps(d, indent=2, sort_keys=True) + "\n")
            _record_packages(c, key, v)
            manifest.set_step(f"boottest:{key}", digest, "done" if v.status == "pass" else "failed",
                              "pass" if v.status == "pass" else v.reason)
            verdicts[key] = d
    for key, d in verdicts.items():
        if d["status"] not in ("pass", SKIPPED) and bt.gated(c.plan.milestone):
            _reject(c, key, d)
    _write_metadata(c, verdicts)
    return verdicts


def _boot(c, todo, chosen, boot):
    # The compose's one handler, nested: a second signal cannot cut short killing the VMs.
    with terminate_on_signal("compose interrupted during boot tests"):
        return _boot_groups(c, todo, chosen, boot)


def _boot_groups(c, todo, chosen, boot):
    bt = c.config.boot_test
    results = []
    # One engine run per package set (images of one kickstart share it).
    groups: dict[tuple, list[int]] = {}
    for i, (_, _, _, wanted, excluded) in enumerate(todo):
        groups.setdefault((wanted, excluded), []).append(i)
    out: dict[int, engine.Verdict] = {}
    for (wanted, excluded), idx in groups.items():
        opts = engine.BootOptions(
            accel=chosen, checks=bt.checks, user=c.config.default_user, memory_mib=bt.memory_mib,
            tcg_tb_size_mib=bt.tcg_tb_size_mib,
            timeouts=engine.Timeouts(bt.console_timeout_s, bt.boot_timeout_s, bt.ssh_timeout_s,
                                     bt.guest_script_timeout_s),
            wanted_packages=wanted, excluded_packages=excluded,
            packages_source="the kickstart's %packages", seal_probe_ports=bt.seal_probe_ports,
            logs_dir=c.logdir / "boottest", packages_dir=c.workdir("boottest"))
        imgs = [image.inspect(c.topdir / todo[i][1].path, "i386" if c.job(todo[i][0]).arch == "i686"
                              else c.job(todo[i][0]).arch) for i in idx]
        platforms = [platform_for(c, todo[i][0]) for i in idx]
        modes = [boot_mode_for(c, todo[i][0]) for i in idx]
        for i, v in zip(idx, boot_modes.run_many(imgs, opts, bt.parallel, platforms, modes, boot=boot)):
            out[i] = v
    results = [out[i] for i in range(len(todo))]
    return results


def _record_packages(c: Compose, key: str, v: engine.Verdict) -> None:
    """<NVRA>-packages.txt beside the images, as a deliverable (listed in CHECKSUM, staged)."""
    if not v.packages_file:
        return
    job = c.job(key)
    src = Path(v.packages_file)
    dest = c.images_dir(job.arch) / f"{job.nvra}-packages.txt"
    data = src.read_bytes()
    atomic_write(dest, data)
    src.unlink(missing_ok=True)
    rel = str(dest.relative_to(c.topdir))
    with c.manifest.update() as m:
        m["artifacts"] = [a for a in m["artifacts"] if a["path"] != rel]
    recorded(c, c.recorder).add_artifacts([Artifact(
        key, job.image_type, job.arch, "packages-list", "deliverable", rel, len(data),
        hashlib.sha256(data).hexdigest(), True)])


def _reject(c: Compose, key: str, verdict: dict) -> None:
    """A gated failure: the image leaves the drop (no EC2, no staging) and counts as failed."""
    manifest = recorded(c, c.recorder)
    manifest.reject_artifacts(key)  # the compose store drops them too
    rec = manifest.read()["steps"].get(f"build:{key}", {})
    reason = f"boot test failed: {verdict.get('reason', '')}"[:500]
    manifest.set_step(f"build:{key}", rec.get("digest", ""), "failed", reason)


def _write_metadata(c: Compose, fresh: dict[str, dict]) -> None:
    """Every image's verdict under "boot_test" in compose/metadata/rel-eng.json (finalize keeps
    the key). Rebuilt from all recorded verdicts under a lock: workers test images one by one."""
    lock = c.topdir / "work" / "boottest" / ".metadata.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        steps = c.manifest.read()["steps"]
        verdicts = {}
        for job in c.plan.images:
            rec = steps.get(f"boottest:{job.key}")
            if job.key in fresh:
                verdicts[job.key] = fresh[job.key]
            elif rec and rec.get("state") == SKIPPED:
                verdicts[job.key] = {"nvra": job.nvra, "status": SKIPPED,
                                     "reason": rec.get("reason") or NOT_BOOTABLE, "checks": []}
            elif rec and _verdict_path(c, job.key).is_file():
                verdicts[job.key] = json.loads(_verdict_path(c, job.key).read_text())
        path = c.metadir / SUMMARY
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            data = {"compose_id": c.plan.compose_id}
        data["boot_test"] = {
            "gate": c.config.boot_test.gate, "gated": c.config.boot_test.gated(c.plan.milestone),
            "images": {k: _summary(v) for k, v in sorted(verdicts.items())}}
        c.metadir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        if not (path.is_file() and path.read_text() == text):  # a rerun rewrites nothing
            atomic_write(path, text)


def _summary(v: dict) -> dict:
    keep = ("nvra", "status", "reason", "accel", "accel_reason", "platform", "console_log", "seconds",
            "guest_uptime", "peak_rss_mib", "metadata_requests", "ami_attributes")
    out = {k: v[k] for k in keep if k in v}
    out["checks"] = [{k: c[k] for k in ("name", "status", "evidence", "message")} for c in v.get("checks", [])]
    return out


def readme_section(c: Compose, arch: str) -> str:
    """The README's "Boot test" section for one arch: what was checked and the result."""
    try:
        bt = json.loads((c.metadir / SUMMARY).read_text()).get("boot_test")
    except (FileNotFoundError, ValueError):
        bt = None
    if not bt:
        return ""
    jobs = {j.key: j for j in c.plan.images if j.arch == arch}
    lines = ["", "Boot test", "---------",
             "Each image was booted from its own disk (BIOS, serial console, a throw-away overlay",
             "larger than the image, sealed from the build host) as its cloud boots it: ec2 (EC2's",
             "DMI, an NVMe root, the instance metadata service), openstack (Nova's DMI and a config",
             "drive or the metadata service) or nocloud (a cidata seed), with a key made for the",
             "test, and checked: console boot lines, cloud-init finished from the platform's",
             "datasource, ssh with the injected key (host key pinned from the console, password",
             "login refused), hostname, instance-id and user data from the platform, IMDS tokens,",
             "the guest reaching nothing of the host, root grown, no hard-coded MAC, firewall off,",
             "root locked, sudo without a password, system health and the kickstart's packages.",
             f"Gate: {bt['gate']} ({'failures are kept out of this drop' if bt['gated'] else 'failures are recorded, the drop goes on'}).",
             ""]
    for key in sorted(jobs):
        v = bt["images"].get(key)
        if v is None:
            continue
        if v["status"] == SKIPPED:
            lines.append(f"{v['nvra']}: {v['reason']} (not booted; this is not a pass)")
            continue
        word = "PASS" if v["status"] == "pass" else "FAIL"
        plat = (v.get("platform") or {}).get("label", "nocloud")
        lines.append(f"{v['nvra']}: {word} under {v.get('accel', '?')}, booted as {plat}"
                     + (f" - {v['reason']}" if word == "FAIL" and v.get("reason") else ""))
        for ch in v["checks"]:
            lines.append(f"  {ch['status']:<7} {ch['name']}")
    return "\n".join(lines) + "\n"
