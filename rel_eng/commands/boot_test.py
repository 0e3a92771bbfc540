"""`rel-eng boot-test IMAGE...`: boot qcow2/raw disks and check they behave like cloud images.

Exit 0 when every image passes, 1 when a check fails, 2 for bad input (nothing booted then).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rel_eng.boottest import accel as accel_mod
from rel_eng.boottest import checks as ck
from rel_eng.commands import common
from rel_eng.config.boot_test import IMDS_MODES, OPENSTACK_MODES, PLATFORMS
from rel_eng.config.ec2 import BOOT_MODES
from rel_eng.errors import InputError
from rel_eng.naming import user_name_problem
from rel_eng.signals import stop_on_signal

if TYPE_CHECKING:
    from rel_eng.boottest import engine


def register(sub) -> None:
    p = sub.add_parser("boot-test", help="boot disk images and check they behave like cloud images")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="qcow2 or raw disk")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--checks", help=f"comma-separated subset of: {', '.join(ck.CHECKS)}")
    p.add_argument("--accel", choices=accel_mod.CHOICES, help="default from [boot_test] accel")
    # No argparse choices: a wrong value is one line and exit 2, like every other bad input.
    p.add_argument("--platform", default="nocloud", metavar="|".join(PLATFORMS),
                   help="boot as this cloud boots its instances (default nocloud)")
    p.add_argument("--imds", default="v2", metavar="|".join(IMDS_MODES),
                   help="ec2: v2 requires IMDS tokens (ImdsSupport=v2.0), v1 leaves them optional")
    p.add_argument("--boot-mode", metavar="|".join(BOOT_MODES),
                   help="ec2: the AMI's BootMode: legacy-bios (SeaBIOS, the default), uefi (OVMF), "
                        "uefi-preferred (both, two boots)")
    p.add_argument("--ena", action="store_true",
                   help="ec2: the AMI declares EnaSupport: the image's kernel must carry ena")
    p.add_argument("--openstack", metavar="|".join(OPENSTACK_MODES),
                   help="openstack: how metadata reaches the guest (default from [boot_test] openstack)")
    p.add_argument("--arch", choices=("x86_64", "i386"), help="default: from the file name")
    p.add_argument("--kickstart", type=Path,
                   help="check the packages its %%packages names (and excludes)")
    p.add_argument("--parallel", type=int, help="VMs at once (default from [boot_test] parallel)")
    p.add_argument("--user", help="cloud-init default user (default from [compose] default_user)")
    p.add_argument("--logs", type=Path, help="keep each serial console log in this directory")
    p.add_argument("--packages-dir", type=Path, help="write <image>-packages.txt here")
    common.add_config_options(p)
    p.set_defaults(func=run)


def platform_from(name: str, imds: str, openstack: str):
    from rel_eng.boottest.platform import Platform

    for flag, value, known in (("--platform", name, PLATFORMS), ("--imds", imds, IMDS_MODES),
                               ("--openstack", openstack, OPENSTACK_MODES)):
        if value not in known:
            raise InputError(f"{flag}: unknown value {value!r}", hint=f"use {' or '.join(known)}")
    return Platform(name, imds, openstack)


def options_from(config, *, accel_request=None, checks=None, kickstart=None, user=None,
                 logs=None, packages_dir=None, platform=None):
    from rel_eng.boottest import engine, kspackages  # late: pykickstart and the engine

    bt = config.boot_test
    try:
        chosen = accel_mod.choose(accel_request or bt.accel)
    except ValueError as exc:
        raise InputError(str(exc), hint="use auto, kvm or tcg") from None
    if chosen.name == "kvm" and chosen.reason.startswith("forced"):
        # a forced kvm where KVM does not work hangs the guest or aborts qemu: refuse it first
        auto = accel_mod.choose("auto", env={})
        if auto.name != "kvm":
            raise InputError(f"accel kvm ({chosen.reason}): KVM is not usable on this host: "
                             f"{auto.reason}", hint="use --accel tcg, or auto (TCG here)")
    wanted, excluded, source = (), (), ""
    if kickstart is not None:
        wanted, excluded = kspackages.packages(kickstart)
        source = str(kickstart)
    return engine.BootOptions(
        accel=chosen, checks=checks or ck.DEFAULT_CHECKS, user=user or config.default_user,
        memory_mib=bt.memory_mib, tcg_tb_size_mib=bt.tcg_tb_size_mib,
        timeouts=engine.Timeouts(bt.console_timeout_s, bt.boot_timeout_s, bt.ssh_timeout_s,
                                 bt.guest_script_timeout_s),
        wanted_packages=tuple(wanted), excluded_packages=tuple(excluded), packages_source=source,
        logs_dir=logs, packages_dir=packages_dir, kickstart_given=kickstart is not None,
        seal_probe_ports=bt.seal_probe_ports,
        **({"platform": platform} if platform is not None else {}))


def run(args) -> int:
    config = common.load(args)
    from rel_eng import runner  # late: the engine once the config is good
    from rel_eng.boottest import engine, image

    try:
        checks = ck.parse_checks(args.checks)
    except ValueError as exc:
        raise InputError(f"--checks: {exc}") from None
    if args.checks and "anaconda-install" in checks and args.kickstart is None:
        raise InputError("--checks anaconda-install: needs --kickstart (the kickstart whose "
                         "%packages the image must hold)")
    platform = platform_from(args.platform, args.imds, args.openstack or config.boot_test.openstack)
    boot_mode = args.boot_mode or "legacy-bios"
    if boot_mode not in BOOT_MODES:
        raise InputError(f"--boot-mode: unknown value {boot_mode!r}", hint=f"use {' or '.join(BOOT_MODES)}")
    if (args.boot_mode or args.ena) and platform.name != "ec2":
        flag = "--boot-mode" if args.boot_mode else "--ena"
        raise InputError(f"{flag}: an AMI attribute, for --platform ec2 only (got --platform {platform.name})")
    if args.ena:
        import dataclasses
        platform = dataclasses.replace(platform, ena=True)
    parallel = config.boot_test.parallel if args.parallel is None else args.parallel
    if parallel < 1:
        raise InputError(f"--parallel: must be at least 1, got {parallel}")
    if args.user is not None and user_name_problem(args.user):
        raise InputError(f"--user: {user_name_problem(args.user)}",
                         hint="give the image's cloud-init default user, e.g. --user fedora")
    images = [image.inspect(p, args.arch) for p in args.images]
    for img in images:
        runner.require(engine.qemu.binary(img.arch))
        if boot_mode != "legacy-bios" and img.arch != "x86_64":
            raise InputError(f"--boot-mode {boot_mode}: {img.path} is an {img.arch} disk, and EC2 boots "
                             "i386 AMIs only through legacy BIOS", hint="use --boot-mode legacy-bios")
    opts = options_from(config, accel_request=args.accel, checks=checks, kickstart=args.kickstart,
                        user=args.user, logs=args.logs, packages_dir=args.packages_dir,
                        platform=platform)
    from rel_eng.boottest import boot_modes

    with stop_on_signal("boot test interrupted"):  # VMs killed once, exit 130/143
        verdicts = boot_modes.run_many(images, opts, parallel, [platform] * len(images),
                                       [boot_mode] * len(images))
    if args.json:
        print(engine.to_json(verdicts))
    else:
        for v in verdicts:
            print(format_verdict(v))
    return 0 if all(v.status == "pass" for v in verdicts) else 1


def format_verdict(v: engine.Verdict) -> str:
    plat = v.platform.get("label", "nocloud") if v.platform else "nocloud"
    lines = [f"{v.image}: {v.arch}, booted as {plat}, {v.accel} ({v.accel_reason})"]
    for c in v.checks:
        text = c.evidence if c.status == "pass" else (c.message or c.evidence)
        lines.append(f"  {c.status.upper():7} {c.name}: {text}")
    took = v.seconds.get("verdict")
    lines.append(f"  verdict: {v.status.upper()}" + (f" after {took:.0f} s" if took else "")
                 + (f" ({v.reason})" if v.status != "pass" and v.reason else ""))
    if v.console_log:
        lines.append(f"  console log: {v.console_log}")
    if v.packages_file:
        lines.append(f"  packages: {v.packages_file}")
    return "\n".join(lines)
