"""`rel-eng boot-test IMAGE...`: boot qcow2/raw disks and check they behave like cloud images.

Exit 0 when every image passes, 1 when a check fails, 2 for bad input (nothing booted then).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rel_eng.boottest import accel as accel_mod
from rel_eng.boottest import checks as ck
from rel_eng.commands import common
from rel_eng.errors import InputError
from rel_eng.signals import stop_on_signal

if TYPE_CHECKING:
    from rel_eng.boottest import engine


def register(sub) -> None:
    p = sub.add_parser("boot-test", help="boot disk images and check they behave like cloud images")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="qcow2 or raw disk")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--checks", help=f"comma-separated subset of: {', '.join(ck.CHECKS)}")
    p.add_argument("--accel", choices=accel_mod.CHOICES, help="default from [boot_test] accel")
    p.add_argument("--arch", choices=("x86_64", "i386"), help="default: from the file name")
    p.add_argument("--kickstart", type=Path,
                   help="check the packages its %%packages names (and excludes)")
    p.add_argument("--parallel", type=int, help="VMs at once (default from [boot_test] parallel)")
    p.add_argument("--user", help="cloud-init default user (default from [compose] default_user)")
    p.add_argument("--logs", type=Path, help="keep each serial console log in this directory")
    p.add_argument("--packages-dir", type=Path, help="write <image>-packages.txt here")
    common.add_config_options(p)
    p.set_defaults(func=run)


def options_from(config, *, accel_request=None, checks=None, kickstart=None, user=None,
                 logs=None, packages_dir=None):
    from rel_eng.boottest import engine, kspackages  # late: pykickstart and the engine

    bt = config.boot_test
    try:
        chosen = accel_mod.choose(accel_request or bt.accel)
    except ValueError as exc:
        raise InputError(str(exc), hint="use auto, kvm or tcg") from None
    wanted, excluded, source = (), (), ""
    if kickstart is not None:
        wanted, excluded = kspackages.packages(kickstart)
        source = str(kickstart)
    return engine.BootOptions(
        accel=chosen, checks=checks or ck.CHECKS, user=user or config.default_user,
        memory_mib=bt.memory_mib, tcg_tb_size_mib=bt.tcg_tb_size_mib,
        timeouts=engine.Timeouts(bt.console_timeout_s, bt.boot_timeout_s, bt.ssh_timeout_s,
                                 bt.guest_script_timeout_s),
        wanted_packages=tuple(wanted), excluded_packages=tuple(excluded), packages_source=source,
        logs_dir=logs, packages_dir=packages_dir)


def run(args) -> int:
    config = common.load(args)
    from rel_eng import runner  # late: the engine once the config is good
    from rel_eng.boottest import engine, image

    try:
        checks = ck.parse_checks(args.checks)
    except ValueError as exc:
        raise InputError(f"--checks: {exc}") from None
    parallel = config.boot_test.parallel if args.parallel is None else args.parallel
    if parallel < 1:
        raise InputError(f"--parallel: must be at least 1, got {parallel}")
    images = [image.inspect(p, args.arch) for p in args.images]
    for img in images:
        runner.require(engine.qemu.binary(img.arch))
    opts = options_from(config, accel_request=args.accel, checks=checks, kickstart=args.kickstart,
                        user=args.user, logs=args.logs, packages_dir=args.packages_dir)
    with stop_on_signal("boot test interrupted"):  # VMs killed once, exit 130/143
        verdicts = engine.run_many(images, opts, parallel)
    if args.json:
        print(engine.to_json(verdicts))
    else:
        for v in verdicts:
            print(format_verdict(v))
    return 0 if all(v.status == "pass" for v in verdicts) else 1


def format_verdict(v: engine.Verdict) -> str:
    lines = [f"{v.image}: {v.arch}, {v.accel} ({v.accel_reason})"]
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
