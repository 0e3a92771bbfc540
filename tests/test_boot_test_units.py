"""Boot gate pieces that need no VM: accel choice, qemu argv, console parsing, offline MAC scan,
the check evaluators, settings and the bad-input refusals of `rel-eng boot-test`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rel_eng.boottest import accel, checks as ck, console, kvmprobe, offline, qemu, seed
from rel_eng.config.boot_test import BootTestConfig
from rel_eng.config import load_config
from rel_eng.errors import ConfigError

RELENG = [sys.executable, "-m", "rel_eng"]


# accel -------------------------------------------------------------------------------------

def _sysmod(tmp_path, *mods):
    d = tmp_path / "sys_module"
    for m in ("kvm", *mods):
        (d / m).mkdir(parents=True)
    return d


def _devkvm(tmp_path):
    dev = tmp_path / "kvm"
    dev.write_text("")
    return dev


def test_accel_pvm_only_means_tcg_and_says_why(tmp_path):
    a = accel.choose("auto", env={}, sys_module=_sysmod(tmp_path, "kvm_pvm"), dev_kvm=_devkvm(tmp_path),
                     probe=None)
    assert a.name == "tcg"
    assert "kvm_pvm" in a.reason and "exists" in a.reason


@pytest.mark.parametrize("mod", ["kvm_intel", "kvm_amd"])
def test_accel_hardware_module_means_kvm(tmp_path, mod):
    a = accel.choose("auto", env={}, sys_module=_sysmod(tmp_path, mod), dev_kvm=_devkvm(tmp_path))
    assert a == accel.Accel("kvm", f"hardware KVM module {mod} is loaded")


def test_accel_no_dev_kvm_is_tcg(tmp_path):
    a = accel.choose("auto", env={}, sys_module=_sysmod(tmp_path, "kvm_intel"), dev_kvm=tmp_path / "nope")
    assert a.name == "tcg" and "does not exist" in a.reason


def test_accel_probe_decides_when_no_hardware_module_is_loaded(tmp_path):
    calls = []
    kw = dict(env={}, sys_module=_sysmod(tmp_path, "kvm_pvm"), dev_kvm=_devkvm(tmp_path))
    a = accel.choose("auto", probe=lambda: calls.append(1) or kvmprobe.ProbeResult(True, "it ran"), **kw)
    assert a == accel.Accel("kvm", f"{kw['dev_kvm']} exists with only kvm_pvm loaded, and it ran")
    b = accel.choose("auto", probe=lambda: calls.append(2) or kvmprobe.ProbeResult(False, "it hung", True),
                     **kw)
    assert b.name == "tcg" and b.reason.endswith("only kvm_pvm is loaded, and it hung (cached probe result)")
    assert calls == [1, 2]


def test_accel_probe_is_not_run_when_the_module_or_an_override_decides(tmp_path):
    def probe():
        raise AssertionError("probe run")
    dev = _devkvm(tmp_path)
    assert accel.choose("auto", env={}, sys_module=_sysmod(tmp_path, "kvm_amd"), dev_kvm=dev,
                        probe=probe).name == "kvm"
    assert accel.choose("auto", env={"REL_ENG_ACCEL": "tcg"}, dev_kvm=dev, probe=probe).name == "tcg"
    assert accel.choose("auto", env={}, dev_kvm=tmp_path / "nope", probe=probe).name == "tcg"


def test_accel_overrides(tmp_path):
    kw = dict(sys_module=_sysmod(tmp_path, "kvm_intel"), dev_kvm=_devkvm(tmp_path))
    assert accel.choose("tcg", env={}, **kw).reason == 'forced by [boot_test] accel = "tcg"'
    assert accel.choose("kvm", env={"REL_ENG_ACCEL": "tcg"}, **kw) == \
        accel.Accel("tcg", "forced by REL_ENG_ACCEL=tcg")
    with pytest.raises(ValueError, match="REL_ENG_ACCEL"):
        accel.choose("auto", env={"REL_ENG_ACCEL": "hvf"}, **kw)


# qemu argv ---------------------------------------------------------------------------------

def _spec(**kw):
    base = dict(arch="x86_64", accel="tcg", disk=Path("/w/overlay.qcow2"), seed=Path("/w/seed.iso"),
                console=Path("/w/console.log"), mac="52:54:00:aa:bb:cc", ssh_port=40022)
    base.update(kw)
    return qemu.VmSpec(**base)


def test_qemu_argv_boots_the_disk_through_the_bios():
    argv = qemu.argv(_spec())
    assert argv[0] == "qemu-system-x86_64"
    assert "-kernel" not in argv and "-snapshot" not in argv
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert "file=/w/overlay.qcow2,format=qcow2,if=virtio,cache=unsafe" in argv
    assert "file=/w/seed.iso,format=raw,if=ide,media=cdrom,readonly=on" in argv
    nic = argv[argv.index("-nic") + 1]
    assert "mac=52:54:00:aa:bb:cc" in nic and "hostfwd=tcp:127.0.0.1:40022-:22" in nic
    assert argv[argv.index("-serial") + 1] == "file:/w/console.log"
    assert "-cpu" not in argv  # -cpu host aborts without a hardware KVM


def test_qemu_argv_caps_the_tcg_translation_cache_only_under_tcg():
    assert qemu.argv(_spec(tb_size_mib=256))[qemu.argv(_spec()).index("-accel") + 1] == "tcg,tb-size=256"
    kvm = qemu.argv(_spec(accel="kvm", tb_size_mib=256))
    assert kvm[kvm.index("-accel") + 1] == "kvm"
    assert BootTestConfig().tcg_tb_size_mib == 256
    assert load_config(None).boot_test.tcg_tb_size_mib == 256


def test_qemu_argv_kvm_and_i386():
    argv = qemu.argv(_spec(arch="i386", accel="kvm"))
    assert argv[0] == "qemu-system-i386"
    assert argv[argv.index("-accel") + 1] == "kvm" and argv[argv.index("-cpu") + 1] == "host"
    with pytest.raises(ValueError):
        qemu.argv(_spec(arch="aarch64"))


def test_random_mac_is_qemu_prefixed_and_varies():
    assert qemu.random_mac(b"\x01\x02\xff") == "52:54:00:01:02:ff"
    macs = {qemu.random_mac() for _ in range(20)}
    assert len(macs) > 1 and all(m.startswith("52:54:00:") for m in macs)


# seed ---------------------------------------------------------------------------------------

def test_seed_is_a_cidata_iso(tmp_path):
    ud_text = seed.user_data("ssh-ed25519 AAAAC3Nz key\"quote", "n0nce", (6379, 40001))
    iso = seed.make_iso(tmp_path / "seed.iso", user_data_text=ud_text, instance_id="i-1", hostname="h")
    label = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True).stdout \
        if subprocess.run(["which", "isoinfo"], capture_output=True).returncode == 0 else "cidata"
    assert "cidata" in label
    ud = (tmp_path / "cidata" / "user-data").read_text()
    assert ud.startswith("#cloud-config\n")
    body = json.loads(ud.split("\n", 1)[1])
    assert body["ssh_authorized_keys"] == ["ssh-ed25519 AAAAC3Nz key\"quote"]
    assert "n0nce" in body["runcmd"][0][2] and seed.NONCE_PATH in body["runcmd"][0][2]
    # the seal probe rides in every boot's user data: each gateway address, each port
    probe = body["runcmd"][1][2]
    assert seed.SEAL_PATH in probe and "/dev/tcp/$h/$p" in probe
    assert "10.0.2.2 169.254.0.2" in probe and "for p in 6379 40001" in probe
    assert "seal" not in seed.user_data("k", "n")  # no ports: no probe


# console ------------------------------------------------------------------------------------

CONSOLE = """\x1b[0;32mGRUB\r
[    0.000000] Linux version 6.1.0-41-amd64 (debian-kernel@lists.debian.org)
[   50.8] cloud-init[247]: Cloud-init v. 22.4.2 running 'init-local'
<14>Dec  1 09:14:51 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----
<14>Dec  1 09:14:53 cloud-init: 256 SHA256:+Fl8pfphQRBZAoPvA/XxZ5KipxlUtwrRl7lFX3qcpWQ root@bt1 (ECDSA)
[   99.1] some kernel line interleaved
<14>Dec  1 09:14:54 cloud-init: 256 SHA256:yCCl4Tm6ZxZ3cZPJB9QJl/XJggO62YIIFAJoEJ9v0+o root@bt1 (ED25519)
<14>Dec  1 09:14:56 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----
-----BEGIN SSH HOST KEY KEYS-----
ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBD8= root@bt1
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICo8MatBz3+v+orI1ng+9hkGSQ9+KyZ6G2NM33p6skwi root@bt1
-----END SSH HOST KEY KEYS-----
[  131.4] cloud-init[445]: Cloud-init v. 22.4.2 finished at Tue, 01 Dec 2026 09:14:57 +0000. Datasource DataSourceNoCloud [seed=/dev/sr0][dsmode=net].  Up 131.31 seconds
"""


def test_console_parse_milestones_keys_and_uptime():
    c = console.parse(CONSOLE)
    assert c.kernel and c.cloud_init and c.keys_complete
    assert c.fingerprints == ["SHA256:+Fl8pfphQRBZAoPvA/XxZ5KipxlUtwrRl7lFX3qcpWQ",
                              "SHA256:yCCl4Tm6ZxZ3cZPJB9QJl/XJggO62YIIFAJoEJ9v0+o"]
    assert [k for k, _ in c.host_keys] == ["ecdsa-sha2-nistp256", "ssh-ed25519"]
    assert c.finished_uptime == 131.31
    assert c.last_line.startswith("[  131.4] cloud-init[445]")
    # the kernel's time stamp on the newest line: what dates the guest's uptime 0 on the host
    assert c.printk_uptime == 131.4
    assert console.parse(CONSOLE.split("[   50.8]")[0]).printk_uptime == 0.0
    assert console.parse("GRUB loading").printk_uptime is None


def test_console_parse_partial_block_is_not_complete():
    c = console.parse(CONSOLE.split("-----END SSH HOST KEY KEYS-----")[0])
    assert not c.keys_complete and c.host_keys == []
    assert console.parse("").last_line == "" and not console.parse("").kernel


def test_pinned_known_hosts_keeps_only_keys_whose_fingerprint_was_printed(tmp_path):
    from rel_eng.boottest import sshclient
    c = console.parse(CONSOLE)
    # the ed25519 key's real fingerprint is the one printed; a forged ecdsa blob is not
    path, pinned = sshclient.pinned_known_hosts(tmp_path, 2222, c.host_keys, c.fingerprints)
    assert pinned == ["ssh-ed25519 SHA256:yCCl4Tm6ZxZ3cZPJB9QJl/XJggO62YIIFAJoEJ9v0+o"]
    assert path.read_text().splitlines() == [
        "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICo8MatBz3+v+orI1ng+9hkGSQ9+KyZ6G2NM33p6skwi"]
    _, none = sshclient.pinned_known_hosts(tmp_path, 2222, c.host_keys, [])
    assert none == []


# offline MAC scan ---------------------------------------------------------------------------

def test_find_bindings_each_network_stack():
    files = {
        "/etc/sysconfig/network-scripts/ifcfg-eth0": 'DEVICE=eth0\nHWADDR="52:54:00:12:34:56"\n',
        "/etc/sysconfig/network-scripts/ifcfg-eth1": "DEVICE=eth1\nMACADDR=52:54:00:12:34:57\n",
        "/etc/udev/rules.d/70-persistent-net.rules":
            'SUBSYSTEM=="net", ATTR{address}=="52:54:00:de:ad:01", NAME="eth0"\n',
        "/etc/network/interfaces": "iface eth0 inet dhcp\n    hwaddress ether 52:54:00:00:00:01\n",
        "/etc/network/interfaces.d/eth0": "  hwaddress 52:54:00:00:00:02\n",
        "/etc/NetworkManager/system-connections/eth0.nmconnection": "[ethernet]\nmac-address=52:54:00:00:00:03\n",
        "/etc/systemd/network/10-eth0.link": "[Match]\nMACAddress=52:54:00:00:00:04\n",
    }
    found = offline.find_bindings(files)
    assert len(found) == 7
    assert "/etc/sysconfig/network-scripts/ifcfg-eth0: HWADDR=\"52:54:00:12:34:56\"" in found


def test_find_bindings_ignores_what_is_not_a_binding():
    files = {
        "/etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\n# HWADDR is left out on purpose\nBOOTPROTO=dhcp\n",
        "/etc/udev/rules.d/80-net-setup-link.rules": 'SUBSYSTEM=="net", NAME="$env{ID_NET_NAME}"\n',
        "/etc/udev/rules.d/README": 'ATTR{address}=="52:54:00:de:ad:01"\n',  # not a .rules file
        "/etc/network/interfaces": "auto lo\niface lo inet loopback\n",
        "/etc/ssh/sshd_config": "HWADDR=52:54:00:12:34:56\n",  # not a network config file
        "/etc/sysconfig/network-scripts/ifcfg-eth1": "HWADDR=not-a-mac\n",
    }
    assert offline.find_bindings(files) == []


# check evaluators ---------------------------------------------------------------------------

def _root(start, part, disk, fs):
    return {"root": f"source=/dev/vda1\nfstype=ext4\nfs_bytes={fs}\npart_start={start}\n"
                    f"part_sectors={part}\ndisk_sectors={disk}"}


def test_root_grown_within_tolerance():
    gib = 2**30 // 512
    assert ck.root_grown(_root(2048, 3 * gib - 2048, 3 * gib, int(2.9 * 2**30))).status == "pass"
    r = ck.root_grown(_root(2048, 2 * gib - 2048, 3 * gib, int(1.9 * 2**30)))
    assert r.status == "fail" and "not grown" in r.message and "1024 MiB left over" in r.message
    r = ck.root_grown(_root(2048, 3 * gib - 2048, 3 * gib, int(1.9 * 2**30)))
    assert r.status == "fail" and "not resized" in r.message
    assert ck.root_grown({"root": "fs_bytes=x"}).status == "fail"
    assert ck.root_grown({"root": "source=/dev/vda\nfs_bytes=1"}).status == "fail"


def test_cloud_init_check():
    ok = {"ci-status": "status: done\ntime: x\nrc=0", "ci-result": '{"v1": {"errors": []}}'}
    assert ck.cloud_init(ok).status == "pass"
    bad = {"ci-status": "status: error\nrc=1", "ci-result": '{"v1": {"errors": ["mod failed"]}}'}
    r = ck.cloud_init(bad)
    assert r.status == "fail" and "mod failed" in r.message
    assert ck.cloud_init({"ci-status": "status: done", "ci-result": "garbage"}).status == "fail"


def _status_json(**stages):
    v1 = {"stage": None, "datasource": "DataSourceNoCloud"}
    v1.update({st: {"errors": stages.get(st.replace("-", "_"), []), "start": 1.0, "finished": 2.0}
               for st in ck.CI_STAGES})
    return "source=/run/cloud-init/status.json\n" + json.dumps({"v1": v1})


def test_cloud_init_check_from_its_json_files():
    done = {"ci-status": _status_json(), "ci-result": '{"v1": {"errors": []}}'}
    r = ck.cloud_init(done)
    assert r.status == "pass" and r.evidence == ("cloud-init status: done (from /run/cloud-init/status.json); "
                                                 "result.json errors: 0")
    stage_error = {"ci-status": _status_json(modules_final=["cc_runcmd failed"]),
                   "ci-result": '{"v1": {"errors": []}}'}
    r = ck.cloud_init(stage_error)
    assert r.status == "fail" and "cc_runcmd failed" in r.message and "status: error" in r.evidence
    running = {"ci-status": _status_json(), "ci-result": ""}  # result.json never appeared
    r = ck.cloud_init(running)
    assert r.status == "fail" and "running" in r.evidence
    r = ck.cloud_init({"ci-status": "source=/run/cloud-init/status.json\nnot json", "ci-result": "{}"})
    assert r.status == "fail" and "is not JSON" in r.evidence


def test_mac_check_online_and_offline():
    links = ("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 link/loopback 00:00:00:00:00:00\n"
             "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 link/ether 52:54:00:6b:7d:11 brd ff")
    clean = offline.OfflineFacts(read=True, note="ext4")
    assert ck.no_hardcoded_mac({"links": links}, "52:54:00:6b:7d:11", clean).status == "pass"
    r = ck.no_hardcoded_mac({"links": links}, "52:54:00:00:00:99", clean)
    assert r.status == "fail" and "52:54:00:00:00:99" in r.message
    bound = offline.OfflineFacts(read=True, note="ext4", bindings=["/etc/x: hwaddress 52:54:00:00:00:01"])
    r = ck.no_hardcoded_mac({"links": links}, "52:54:00:6b:7d:11", bound)
    assert r.status == "fail" and "hwaddress" in r.message
    assert ck.no_hardcoded_mac(None, "52:54:00:6b:7d:11", clean).status == "not-run"
    unread = offline.OfflineFacts(note="no ext2/3/4 filesystem holding /etc")
    r = ck.no_hardcoded_mac({"links": links}, "52:54:00:6b:7d:11", unread)
    assert r.status == "pass" and "not read" not in r.message and "no ext2/3/4" in r.evidence


def test_firewall_root_sudo_anaconda():
    assert ck.firewall_off({"firewall": "service firewalld inactive\nservice ufw unknown"}).status == "pass"
    r = ck.firewall_off({"firewall": "service ufw inactive", "firewall-rules": "iptables -P INPUT DROP"})
    assert r.status == "fail" and "iptables -P INPUT DROP" in r.message
    r = ck.firewall_off({"firewall": "service firewalld active\nnft  chain input { policy drop; }"})
    assert r.status == "fail" and "firewalld" in r.message
    assert ck.root_locked({"root-shadow": "*\nrc=0"}).status == "pass"
    assert ck.root_locked({"root-shadow": "!$6\nrc=0"}).status == "pass"
    empty = ck.root_locked({"root-shadow": "\nrc=0"})
    assert empty.status == "fail" and "without a password" in empty.message
    assert ck.root_locked({"root-shadow": "$6$\nrc=0"}).status == "fail"
    assert ck.root_locked({"root-shadow": "rc=1"}).status == "fail"
    assert ck.sudo_nopasswd({"sudo": "sudo-ok"}, "fedora").status == "pass"
    assert ck.sudo_nopasswd({"sudo": "sudo: a password is required"}, "fedora").status == "fail"
    s = {"pkgq": "cloud-init installed\nsudo installed\nfirewalld missing\nufw installed"}
    assert ck.anaconda_install(s, ["cloud-init", "sudo"], ["firewalld"], "ks").status == "pass"
    r = ck.anaconda_install(s, ["cloud-init", "growpart"], ["ufw"], "ks")
    assert r.status == "fail" and "not installed: growpart" in r.message and "excluded but installed: ufw" in r.message


def test_guest_script_never_interpolates_hostile_package_names():
    script = ck.guest_script(seed.NONCE_PATH, ["sudo", "$(reboot)", "a;b", "ok-pkg+1.2"])
    assert "$(reboot)" not in script and "a;b" not in script
    assert 'pkgs="sudo ok-pkg+1.2"' in script


def test_parse_checks():
    assert ck.parse_checks(None) == ck.DEFAULT_CHECKS
    assert ck.parse_checks("ssh,console") == ("console", "ssh")
    with pytest.raises(ValueError, match="unknown check bogus"):
        ck.parse_checks("ssh,bogus")


# settings -----------------------------------------------------------------------------------

def test_boot_test_settings(tmp_path):
    assert load_config().boot_test == BootTestConfig()
    assert BootTestConfig().gated("Alpha") and not BootTestConfig().gated(None)
    assert BootTestConfig(gate="all").gated(None) and not BootTestConfig(gate="none").gated("Beta")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[boot_test]\ngate = "all"\nparallel = 3\naccel = "tcg"\n')
    loaded = load_config(cfg)
    bt = loaded.boot_test
    assert (bt.gate, bt.parallel, bt.accel) == ("all", 3, "tcg")
    from rel_eng.config import Config
    assert Config.from_dict(json.loads(json.dumps(loaded.to_dict()))).boot_test == bt
    cfg.write_text('[boot_test]\nchecks = ["ssh", "console"]\n')
    assert load_config(cfg).boot_test.checks == ("console", "ssh")
    cfg.write_text('[boot_test]\nchecks = ["ssh", "telnet"]\n')
    with pytest.raises(ConfigError, match="boot_test.checks: unknown check telnet"):
        load_config(cfg)
    cfg.write_text('[boot_test]\ngate = "sometimes"\nparallel = 0\naccel = "hvf"\nbogus = 1\n')
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    text = "\n".join(err.value.problems)
    for key in ("boot_test.gate", "boot_test.parallel", "boot_test.accel", "boot_test.bogus"):
        assert f"{cfg}: {key}:" in text


# bad input: one line, exit 2, nothing booted --------------------------------------------------

def _cli(*args, env=None, cwd=None):
    return subprocess.run([*RELENG, "boot-test", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)


def _one_error_line(proc):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rel-eng: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def _disk(tmp_path, name="disk.qcow2"):
    path = tmp_path / name
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path


def test_bad_input_missing_file(tmp_path):
    assert "no such file" in _one_error_line(_cli(tmp_path / "nope.qcow2"))


def test_bad_input_not_a_disk(tmp_path):
    for name, data in (("notes.txt", b"hello\n" * 200), ("empty.raw", b""), ("dir", None)):
        p = tmp_path / name
        if data is None:
            p.mkdir()
        else:
            p.write_bytes(data)
        line = _one_error_line(_cli(p))
        assert str(p) in line and "not" in line


def test_bad_input_other_format(tmp_path):
    p = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(p), "64M"], check=True)
    assert "format 'vmdk'" in _one_error_line(_cli(p))


def test_bad_input_missing_backing_file(tmp_path):
    base = _disk(tmp_path, "base.qcow2")
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(top)],
                   check=True)
    base.unlink()
    line = _one_error_line(_cli(top))
    assert "backing file is missing" in line and str(top) in line


def test_bad_input_unknown_check_and_parallel_zero(tmp_path):
    disk = _disk(tmp_path)
    assert "unknown check nope" in _one_error_line(_cli(disk, "--checks", "ssh,nope"))
    assert "--parallel" in _one_error_line(_cli(disk, "--parallel", "0"))
    cfg = tmp_path / "c.toml"
    cfg.write_text("[boot_test]\nparallel = 0\n")
    assert "boot_test.parallel" in _one_error_line(_cli(disk, "--config", cfg))


def test_bad_input_qemu_not_installed_names_the_package(tmp_path):
    disk = _disk(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("qemu-img",):  # everything but the emulator
        (bindir / tool).symlink_to(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip())
    env = {"PATH": str(bindir), "HOME": str(tmp_path)}
    line = _one_error_line(_cli(disk, env=env))
    assert "qemu-system-x86_64" in line and "apt-get install qemu-system-x86" in line


def test_kickstart_packages_named_and_excluded(tmp_path):
    from rel_eng.boottest import kspackages
    ks = tmp_path / "a.ks"
    ks.write_text("%packages\n@core\ncloud-init\nsudo\nkernel-*\n-firewalld\n-*firmware\n%end\n")
    assert kspackages.packages(ks) == (["cloud-init", "sudo"], ["firewalld"])
    ks.write_text("%packages\ncloud-init\n")  # no %end
    from rel_eng.errors import InputError
    with pytest.raises(InputError, match="invalid kickstart"):
        kspackages.packages(ks)
    with pytest.raises(InputError, match="not found"):
        kspackages.packages(tmp_path / "none.ks")


def test_sections_keep_the_last_one():
    out = "noise\n@@nonce\nabc\n@@packages\na 1 amd64\nb 2 all\n@@end\n"
    assert ck.sections(out) == {"nonce": "abc", "packages": "a 1 amd64\nb 2 all", "end": ""}
    assert "end" not in ck.sections("@@nonce\nabc\n@@packages\ncut short")


def test_memory_per_vm_counts_the_tcg_translation_cache():
    from rel_eng.boottest import engine
    from rel_eng.boottest.accel import Accel

    tcg = engine.BootOptions(accel=Accel("tcg", "t"), memory_mib=1024, tcg_tb_size_mib=256)
    assert engine.per_vm_mib(tcg) == 1280
    assert engine.per_vm_mib(engine.BootOptions(accel=Accel("tcg", "t"), tcg_tb_size_mib=0)) == 2048
    assert engine.per_vm_mib(engine.BootOptions(accel=Accel("kvm", "t"), memory_mib=2048)) == 2048


# the ssh phase of a boot, with the guest's answers injected -----------------------------------

def test_ssh_retries_back_off_and_the_first_login_runs_the_guest_script(tmp_path, monkeypatch):
    import threading
    import types

    from rel_eng.boottest.metadata import Instance
    from rel_eng.boottest.platform import Platform

    from fake_clock import FakeClock
    from rel_eng.boottest import engine, sshclient
    from rel_eng.boottest.accel import Accel

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "host"], check=True)
    keytype, blob = (tmp_path / "host.pub").read_text().split()[:2]
    fp = sshclient.fingerprint(keytype, blob)
    work = tmp_path / "work"
    work.mkdir()
    (work / "console.log").write_text(
        "[    0.000000] Linux version 6.1.0-13-amd64\n[    9.1] cloud-init[300]: Cloud-init v. 22.4.2 running\n"
        f"-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 {fp} root@x (ED25519)\n"
        "-----END SSH HOST KEY FINGERPRINTS-----\n-----BEGIN SSH HOST KEY KEYS-----\n"
        f"{keytype} {blob} root@x\n-----END SSH HOST KEY KEYS-----\n"
        "Cloud-init v. 22.4.2 finished at Tue, 01 Dec 2026 09:14:57 +0000. Datasource DataSourceNoCloud.  "
        "Up 38.50 seconds\n")
    answers = [(255, "ssh: connect to host 127.0.0.1 port 1: Connection refused", "")] * 3 + [
        (0, "", "@@ci-status\nstatus: done\n@@ci-result\n{\"v1\": {\"errors\": []}}\n@@nonce\nN\n"
                "@@sudo\nsudo-ok\n@@timing\nstart=40.0 cloud_init=40.1 facts=41.0 pkgq=41.2 packages=41.5\n@@end\n")]
    # ssh -v: sshd's answer to the client's first request (method "none") names the methods
    answers[-1] = (0, "debug1: SSH2_MSG_SERVICE_ACCEPT received\n"
                      "debug1: Authentications that can continue: publickey\n", answers[-1][2])
    logins, looks = [], []
    monkeypatch.setattr(engine, "runner_run_quiet", lambda argv, timeout, stdin=None: logins.append(
        (argv[-1], stdin)) or answers[len(logins) - 1])
    monkeypatch.setattr(sshclient, "auth_methods", lambda *a, **k: looks.append(a) or ["password"])

    class FakeVm:
        def running(self):
            return True

        def sample_rss(self):
            pass

        def stderr_text(self):
            return ""

    class Done(threading.Thread):
        facts = offline.OfflineFacts(read=True, note="ext filesystem")

    clock = FakeClock()
    opts = engine.BootOptions(accel=Accel("tcg", "t"), clock=clock, sleep=clock.sleep)
    v = engine.Verdict("img", "x86_64", "tcg", "t", "fail")
    v._key, v._port, v._mac, v._nonce = work / "id", 2222, "52:54:00:aa:bb:cc", "N"
    v._platform, v._server = Platform(), None
    v._inst = Instance("iid-1", "h1", "h1", "k", "ud", v._mac, "10.0.2.15", "u")
    reader = Done()
    reader.start()
    img = types.SimpleNamespace(arch="x86_64")
    results = {r.name: r for r in engine._observe(img, opts, work, FakeVm(), reader, v, clock())}
    # three refused logins, pauses doubling from 0.5 s up to the 2 s cap, then one login that
    # runs the guest script and says what sshd offers: no separate probe login
    assert [cmd for cmd, _ in logins] == ["bash -s"] * 4 and all("@@ci-status" in s for _, s in logins)
    assert clock.sleeps == [0.5, 1.0, 2.0]  # the console was complete at once: no console polls
    assert v.seconds["ssh_attempts"] == 4
    assert results["ssh"].status == "pass" and "offers: publickey" in results["ssh"].evidence
    assert looks == []  # the login's own ssh -v said which methods sshd offers
    assert results["user-data"].status == "pass" and results["cloud-init"].status == "pass"
    assert v.seconds["guest:facts"] == 0.9 and v.guest_uptime == 38.5


def _guest_state(boot_id: str, iid: str = "i-0abc", key: str = "AAAAC3Nz", sem_mtime: str = "1") -> str:
    """What reboot.STATE_SCRIPT prints in a guest."""
    return (f"@@boot_id\n{boot_id}\n@@instance_id\n{iid}\n@@host_keys\nssh-ed25519 {key}\n"
            f"ssh-rsa AAAAB3Nz\n@@per_instance\n/var/lib/cloud/instance/sem/config_ssh {sem_mtime}\n"
            f"/var/lib/cloud/instance/sem/config_users_groups {sem_mtime}\n@@end\n")


def test_reboot_is_judged_from_the_state_before_and_after():
    from rel_eng.boottest import reboot

    before = reboot.parse(_guest_state("b1"))
    assert before.instance_id == "i-0abc" and len(before.host_keys) == 2
    assert len(before.per_instance) == 2
    same = reboot.judge(before, reboot.parse(_guest_state("b2")))
    assert same.status == "pass" and "instance-id i-0abc" in same.evidence
    assert "2 per-instance semaphores unchanged" in same.evidence
    cases = {"the boot id did not change": _guest_state("b1"),
             "instance-id changed: i-0abc -> i-0new": _guest_state("b2", iid="i-0new"),
             "the ssh host keys changed": _guest_state("b2", key="AAAAnew"),
             "cloud-init ran per-instance modules again (config_ssh, config_users_groups)":
                 _guest_state("b2", sem_mtime="2")}
    for message, after in cases.items():  # non-empty: four ways of coming back as another instance
        got = reboot.judge(before, reboot.parse(after))
        assert got.status == "fail" and message in got.message, (message, got)
    gone = reboot.judge(before, None, "no login after the reboot within 900 s (Connection refused)")
    assert gone.status == "fail" and "Connection refused" in gone.message
    assert reboot.judge(None, None).status == "fail"
    assert reboot.parse("@@boot_id\nb1\n") is None  # the script did not finish
    # asked for by name only; qemu lets the guest reset only then
    assert "reboot" in ck.CHECKS and "reboot" not in ck.parse_checks(None)
    assert ck.parse_checks("ssh,reboot") == ("ssh", "reboot")
