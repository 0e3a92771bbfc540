"""What each platform presents, without a VM: the EC2 IMDS (tokens, tree, versions) and Nova's
metadata service answered over a real unix socket through the per-VM server, the config drive
read back from the ISO genisoimage wrote, the DMI and disk on the qemu command line, and the
platform plumbing of the config, the CLI and the compose gate. Hostile inputs included: forged
and expired tokens, over-long TTLs, proxied token requests, path tricks, unknown platforms."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rel_eng.boottest import checks as ck
from rel_eng.boottest import qemu
from rel_eng.boottest.metadata import ec2_instance, openstack_instance
from rel_eng.boottest.metadata import imds as imds_mod
from rel_eng.boottest.metadata import openstack as os_md
from rel_eng.boottest.metadata.imds import Imds
from rel_eng.boottest.metadata.server import MetadataServer, Request, guestfwd
from rel_eng.boottest.platform import Platform, imds_mode, smbios

RELENG = [sys.executable, "-m", "rel_eng"]
MAC = "52:54:00:12:34:56"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBoGus test"
UD = "#cloud-config\n{}\n"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _http(sock_path: Path, method: str, path: str, headers: dict | None = None):
    """One HTTP/1.1 request over the unix socket, as socat relays the guest's connection."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(sock_path))
    head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 169.254.169.254\r\n{head}Connection: keep-alive\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):  # the server closes after one answer (HTTP/1.0)
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = dict(ln.split(": ", 1) for ln in lines[1:])
    return int(lines[0].split()[1]), hdrs, body.decode()


@pytest.fixture()
def ec2():
    return ec2_instance(KEY, UD, MAC, "169.254.0.15")


def test_ec2_identity_is_what_cloud_init_recognises(ec2):
    # cloud-init's identify_aws and ds-identify: the DMI UUID begins with ec2, serial equal
    assert ec2.system_uuid.startswith("ec2") and len(ec2.system_uuid) == 36
    assert ec2.instance_id.startswith("i-0") and len(ec2.instance_id) == 19
    argv = smbios(Platform("ec2"), ec2.system_uuid)
    type1 = argv[argv.index("-smbios", 2) + 1]
    assert "manufacturer=Amazon EC2" in type1 and "product=t3.micro" in type1
    assert f"uuid={ec2.system_uuid},serial={ec2.system_uuid}" in type1
    os_argv = smbios(Platform("openstack"), "u-1")
    assert "manufacturer=OpenStack Foundation,product=OpenStack Nova,uuid=u-1" in os_argv[1]
    assert smbios(Platform("nocloud"), "x") == []


def test_imds_v2_tokens_through_the_per_vm_server(ec2, tmp_path):
    clock = Clock()
    server = MetadataServer(Imds(ec2, "v2", clock=clock), tmp_path)
    try:
        assert oct(server.path.stat().st_mode & 0o777) == "0o600"
        # without a token: 401 everywhere under v2
        assert _http(server.path, "GET", "/latest/meta-data/instance-id")[0] == 401
        # a token PUT needs the TTL header within 1..21600, and no proxy header
        assert _http(server.path, "PUT", "/latest/api/token")[0] == 400
        assert _http(server.path, "PUT", "/latest/api/token",
                     {imds_mod.TTL_HEADER: "21601"})[0] == 400
        assert _http(server.path, "PUT", "/latest/api/token",
                     {imds_mod.TTL_HEADER: "-5"})[0] == 400
        assert _http(server.path, "PUT", "/latest/api/token",
                     {imds_mod.TTL_HEADER: "60", "X-Forwarded-For": "1.2.3.4"})[0] == 403
        assert _http(server.path, "GET", "/latest/api/token")[0] == 405
        status, hdrs, token = _http(server.path, "PUT", "/latest/api/token", {imds_mod.TTL_HEADER: "60"})
        assert status == 200 and hdrs[imds_mod.TTL_HEADER] == "60" and len(token) > 40
        auth = {imds_mod.TOKEN_HEADER: token}
        assert _http(server.path, "GET", "/latest/meta-data/instance-id", auth)[2] == ec2.instance_id
        assert _http(server.path, "GET", "/latest/meta-data/instance-id",
                     {imds_mod.TOKEN_HEADER: token[:-1] + "x"})[0] == 401  # forged
        clock.t += 61  # expired
        assert _http(server.path, "GET", "/latest/meta-data/instance-id", auth)[0] == 401
        log = server.snapshot()
        assert [r.token for r in log][-3:] == ["valid", "invalid", "invalid"]
        assert log[0] == Request("GET", "/latest/meta-data/instance-id", "none", 401)
        assert server.cpu_s > 0
    finally:
        server.stop()
    assert not server.path.exists()


def test_imds_tree_is_what_cloud_init_crawls(ec2):
    svc = Imds(ec2, "v1")
    get = lambda p: svc.respond("GET", p, {})  # noqa: E731  (v1: tokens optional)
    versions = get("/").body.splitlines()
    assert {"2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest"} <= set(versions)
    for v in ("2009-04-04", "2021-03-23", "latest"):
        assert get(f"/{v}/meta-data/instance-id").body == ec2.instance_id
    listing = get("/latest/meta-data/").body.splitlines()
    assert {"instance-id", "local-hostname", "hostname", "local-ipv4", "mac", "network/",
            "placement/", "public-keys/"} <= set(listing)
    assert get("/latest/meta-data/public-keys/").body == "0=rel-eng-boot-test"
    assert get("/latest/meta-data/public-keys/0/").body == "openssh-key"
    assert get("/latest/meta-data/public-keys/0/openssh-key").body.strip() == KEY
    mac = f"/latest/meta-data/network/interfaces/macs/{MAC}/"
    assert get("/latest/meta-data/network/interfaces/macs/").body == f"{MAC}/"
    assert {"device-number", "local-ipv4s", "mac", "subnet-ipv4-cidr-block"} <= set(get(mac).body.splitlines())
    assert get(mac + "device-number").body == "0" and get(mac + "local-ipv4s").body == "169.254.0.15"
    assert get("/latest/meta-data/placement/availability-zone").body == "us-east-1a"
    assert get("/latest/user-data").body == UD
    doc = json.loads(get("/latest/dynamic/instance-identity/document").body)
    assert doc["instanceId"] == ec2.instance_id and doc["region"] == "us-east-1"
    # hostile paths: nothing outside the tree, no empty-name lookups, no listing override leak
    for bad in ("/latest/meta-data/../../etc/passwd", "/nope",
                "/latest/meta-data/instance-id/extra", "/latest/meta-data/public-keys/1"):
        assert get(bad).status == 404, bad
    # a doubled slash is one, as a web server folds it: the listing, not another key
    assert get("/latest/meta-data/public-keys//").body == "0=rel-eng-boot-test"
    assert get("/latest/meta-data/../../etc/passwd").status == 404
    assert svc.respond("POST", "/latest/meta-data/", {}).status == 405
    # a bad token is refused even where tokens are optional (as on EC2)
    assert svc.respond("GET", "/latest/meta-data/", {imds_mod.TOKEN_HEADER: "forged"}).status == 401
    with pytest.raises(ValueError):
        Imds(ec2, "v3")


def test_openstack_metadata_service_and_config_drive(tmp_path):
    inst = openstack_instance(KEY, UD, MAC, "169.254.0.15")
    svc = os_md.OpenStackMetadata(inst)
    get = lambda p: svc.respond("GET", p, {})  # noqa: E731
    versions = get("/openstack").body.splitlines()
    assert "latest" in versions and "2018-08-27" in versions and not any(v.endswith("/") for v in versions)
    md = json.loads(get("/openstack/latest/meta_data.json").body)
    assert md["uuid"] == inst.instance_id == inst.system_uuid
    assert md["hostname"] == inst.fqdn and md["name"] == inst.hostname
    assert md["public_keys"] == {"rel-eng-boot-test": KEY + "\n"} and md["availability_zone"] == "nova"
    assert get("/openstack/2018-08-27/user_data").body == UD
    net = json.loads(get("/openstack/latest/network_data.json").body)
    assert net["links"][0]["ethernet_mac_address"] == MAC and net["networks"][0]["type"] == "ipv4_dhcp"
    assert get("/latest/meta-data/instance-id").body == inst.instance_id  # the EC2 twin
    assert svc.respond("PUT", "/latest/api/token", {imds_mod.TTL_HEADER: "60"}).status == 404
    # the drive: ISO 9660 labelled config-2 with Nova's layout, read back with isoinfo
    iso = os_md.make_config_drive(tmp_path / "cd.iso", inst)
    info = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True).stdout
    assert "Volume id: config-2" in info
    listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(iso)], capture_output=True, text=True).stdout
    for path in ("/openstack/latest/meta_data.json", "/openstack/latest/user_data",
                 "/openstack/latest/network_data.json", "/ec2/latest/meta-data.json"):
        assert path in listing.splitlines(), listing
    body = subprocess.run(["isoinfo", "-R", "-x", "/openstack/latest/meta_data.json", "-i", str(iso)],
                          capture_output=True, text=True).stdout
    assert json.loads(body)["uuid"] == inst.instance_id


def test_vfat_config_drive_as_nova_writes_it(tmp_path):
    """Nova's other format: a 64 MiB vfat filesystem labelled config-2, the same files, attached
    as a read-only disk (not a CD); read back with blkid and mtools."""
    inst = openstack_instance(KEY, UD, MAC, "10.0.2.15")
    img = os_md.make_vfat_config_drive(tmp_path / "cd.img", inst)
    assert img.stat().st_size == 64 * 1024**2
    blkid = subprocess.run(["blkid", "-o", "export", str(img)], capture_output=True, text=True).stdout
    assert "TYPE=vfat" in blkid.splitlines() and "LABEL=config-2" in blkid.splitlines()
    listing = subprocess.run(["mdir", "-/", "-b", "-i", str(img), "::/"], capture_output=True,
                             text=True).stdout.splitlines()
    for path in ("::/openstack/latest/meta_data.json", "::/openstack/latest/user_data",
                 "::/openstack/latest/network_data.json", "::/ec2/latest/meta-data.json"):
        assert path in listing, listing
    body = subprocess.run(["mtype", "-i", str(img), "::/openstack/latest/meta_data.json"],
                          capture_output=True, text=True).stdout
    assert json.loads(body)["uuid"] == inst.instance_id
    plat = Platform("openstack", openstack="config-drive-vfat")
    assert plat.label == "openstack (config drive vfat)" and plat.datasources == ("ConfigDrive",)
    assert not plat.serves_metadata
    spec = qemu.VmSpec("x86_64", "tcg", Path("/w/o.qcow2"), img, Path("/w/c.log"), MAC, 40022,
                       seed_is_disk=True)
    drives = [a for a in qemu.argv(spec) if a.startswith("file=")]
    assert drives[1] == f"file={img},format=raw,if=virtio,readonly=on"


def test_qemu_argv_per_platform_is_sealed(tmp_path):
    base = dict(arch="x86_64", accel="tcg", disk=Path("/w/o,verlay.qcow2"), seed=None,
                console=Path("/w/c.log"), mac=MAC, ssh_port=40022)
    nocloud = qemu.argv(qemu.VmSpec(**{**base, "seed": Path("/w/seed.iso")}))
    nic = nocloud[nocloud.index("-nic") + 1]
    assert "restrict=on" in nic and "hostfwd=tcp:127.0.0.1:40022-:22" in nic and "guestfwd" not in nic
    assert "file=/w/o,,verlay.qcow2,format=qcow2,if=virtio" in nocloud[nocloud.index("-drive") + 1]
    ec2 = qemu.argv(qemu.VmSpec(**base, nvme_root=True, guestfwd=guestfwd(),
                                smbios=tuple(smbios(Platform("ec2"), "ec2abc"))))
    nic = ec2[ec2.index("-nic") + 1]
    assert "restrict=on" in nic and "net=169.254.0.0/16" in nic and "dhcpstart=169.254.0.15" in nic
    assert "guestfwd=tcp:169.254.169.254:80-cmd:" in nic and "UNIX-CONNECT:metadata.sock" in nic
    assert any(a.startswith("nvme,drive=root,serial=vol0") for a in ec2)
    assert "if=none,id=root" in ec2[ec2.index("-drive") + 1] and "media=cdrom" not in " ".join(ec2)
    assert "-smbios" in ec2
    # a guest reset ends qemu, unless the reboot check asked for one
    assert "-no-reboot" in nocloud and "-no-reboot" in ec2
    assert "-no-reboot" not in qemu.argv(qemu.VmSpec(**base, allow_reboot=True))


def test_qemu_refuses_a_forward_outside_the_guest_network(tmp_path):
    """Why the metadata network is 169.254.0.0/16: libslirp refuses a guestfwd outside net=."""
    probe = subprocess.run([qemu.binary("x86_64"), "-nodefaults", "-display", "none", "-machine", "none",
                            "-nic", "user,restrict=on,guestfwd=tcp:169.254.169.254:80-cmd:true"],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0 and "guest forwarding rule" in probe.stderr


def test_platform_values_and_labels():
    assert Platform("ec2").label == "ec2 (IMDSv2)" and Platform("ec2", "v1").label == "ec2 (IMDSv1)"
    assert Platform("openstack").label == "openstack (config drive)"
    assert Platform("openstack", openstack="metadata-service").datasources == ("OpenStack",)
    assert Platform("ec2").nvme_root("x86_64") and not Platform("ec2").nvme_root("i386")
    assert imds_mode("v2.0") == "v2" and imds_mode("") == "v1"
    for bad in (dict(name="azure"), dict(imds="v3"), dict(openstack="floppy")):
        with pytest.raises(ValueError):
            Platform(**bad)


# checks fed what a guest and a server said ----------------------------------------------------

def _s(datasource: str, **extra) -> dict:
    return {"ci-result": json.dumps({"v1": {"datasource": datasource, "errors": []}}), **extra}


def test_datasource_check_names_what_ran_and_what_the_image_lists():
    from rel_eng.boottest.offline import OfflineFacts

    facts = OfflineFacts(read=True, datasource_list=["Ec2", "None"],
                         datasource_from="/etc/cloud/cloud.cfg.d/90-x.cfg")
    assert ck.datasource(_s("DataSourceEc2Local"), Platform("ec2"), facts).status == "pass"
    assert ck.datasource(_s("DataSourceConfigDrive [net,ver=2][source=/dev/sr0]"),
                         Platform("openstack"), facts).status == "pass"
    r = ck.datasource(_s("DataSourceNoCloud [seed=/dev/sr0][dsmode=net]"), Platform("ec2"), facts)
    assert r.status == "fail" and "cloud-init used NoCloud" in r.message
    assert "[ Ec2, None ]" in r.message and "90-x.cfg" in r.message
    never = ck.datasource_never_ran(Platform("nocloud"), facts, "login prompt")
    assert "never ran under nocloud" in never.message and "Ec2, None" in never.message


def test_imds_tokens_check():
    ok = [Request("PUT", "/latest/api/token", "none", 200),
          Request("GET", "/2021-03-23/meta-data/instance-id", "valid", 200)]
    assert ck.imds_tokens(Platform("ec2"), ok).status == "pass"
    bad = ok + [Request("GET", "/latest/user-data", "none", 401)]
    r = ck.imds_tokens(Platform("ec2"), bad)
    assert r.status == "fail" and "GET /latest/user-data token=none -> 401" in r.message
    assert ck.imds_tokens(Platform("ec2"), []).status == "fail"
    assert ck.imds_tokens(Platform("ec2", "v1"), bad).status == "skipped"
    assert ck.imds_tokens(Platform("nocloud"), []).status == "skipped"


def test_sealed_system_health_nvme_and_metadata_checks():
    assert ck.sealed({"seal": "10.0.2.2:6379 closed\n169.254.0.2:6379 closed"}, (6379,)).status == "pass"
    r = ck.sealed({"seal": "10.0.2.2:6379 open\n169.254.0.2:6379 closed"}, (6379,))
    assert r.status == "fail" and "10.0.2.2:6379" in r.message
    assert ck.sealed({}, (6379,)).status == "fail"
    health = "tmp 1777\nboot_id 0f1e-2d\n"
    good = {"health": health, "journal": "_BOOT_ID=0f1e2d"}
    assert ck.system_health(good).status == "pass"
    bad = ck.system_health({"health": "failed rel-eng-hostile-probe.service\ntmp 755\nboot_id ab\n"
                                      "selinux_enforce 0\nselinux_config SELINUX=permissive", "journal": ""})
    assert bad.status == "fail"
    for part in ("rel-eng-hostile-probe.service", "not 1777", "journal holds no entry", "not enforcing"):
        assert part in bad.message
    assert ck.nvme_root({"root": "source=/dev/nvme0n1p1"}, Platform("ec2"), "x86_64").status == "pass"
    assert ck.nvme_root({"root": "source=/dev/vda1"}, Platform("ec2"), "x86_64").status == "fail"
    assert ck.nvme_root({}, Platform("ec2"), "i386").status == "skipped"
    inst = ec2_instance(KEY, UD, MAC, "169.254.0.15")
    seen = {**_s("DataSourceEc2Local"), "identity": f"hostname={inst.hostname}\ninstance_id={inst.instance_id}"}
    served = [Request("GET", "/2021-03-23/meta-data/public-keys/0/openssh-key", "valid", 200),
              Request("GET", "/2021-03-23/user-data", "valid", 200)]
    assert ck.metadata(seen, inst, Platform("ec2"), served).status == "pass"
    wrong = {**seen, "identity": "hostname=localhost\ninstance_id=i-0other"}
    r = ck.metadata(wrong, inst, Platform("ec2"), served)
    assert r.status == "fail" and "localhost" in r.message and "i-0other" in r.message
    assert "never fetched its user data" in ck.metadata(seen, inst, Platform("ec2"), served[:1]).message


# config and CLI --------------------------------------------------------------------------------

def test_image_platform_defaults_and_bad_values(tmp_path):
    from rel_eng.config import load_config

    cfg = load_config(None)
    assert {t.key: t.platform for t in cfg.image_types} == {"generic": "openstack", "ec2": "ec2"}
    assert cfg.boot_test.openstack == "config-drive"
    bad = tmp_path / "bad.toml"
    bad.write_text('[images.generic]\nplatform = "azure"\n')
    proc = subprocess.run([*RELENG, "validate", "--config", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "images.generic.platform" in proc.stderr and "azure" in proc.stderr


@pytest.mark.parametrize("args, says", [
    (["--platform", "azure"], "--platform: unknown value 'azure'"),
    (["--platform", "ec2", "--imds", "v3"], "--imds: unknown value 'v3'"),
    (["--platform", "openstack", "--openstack", "floppy"], "--openstack: unknown value 'floppy'"),
    (["--checks", "anaconda-install"], "--checks anaconda-install: needs --kickstart"),
    (["--platform", "ec2", "--boot-mode", "bios"], "--boot-mode: unknown value 'bios'"),
    (["--ena"], "--ena: an AMI attribute, for --platform ec2 only (got --platform nocloud)"),
    (["--platform", "ec2", "--boot-mode", "uefi", "--arch", "i386"],
     "is an i386 disk, and EC2 boots i386 AMIs only through legacy BIOS"),
    (["--platform", "ec2", "--boot-mode", "uefi-preferred", "--arch", "i386"],
     "--boot-mode uefi-preferred: "),
])
def test_boot_test_bad_platform_input_is_exit_2(args, says, tmp_path):
    """One line, exit 2, nothing booted; an i686 disk's arch is known before booting, so a UEFI
    boot mode for it is bad input (EC2 boots i386 AMIs only through legacy BIOS)."""
    disk = tmp_path / "d.raw"
    disk.write_bytes(b"\0" * 510 + b"\x55\xaa")
    proc = subprocess.run([*RELENG, "boot-test", *args, str(disk)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# the console settles a boot early ---------------------------------------------------------------

def test_console_settles_cloud_init_disabled_grub_and_panic():
    from rel_eng.boottest import console

    kernel = "[    0.000000] Linux version 6.1.0-13-amd64\n"
    disabled = console.parse(kernel + "[  OK  ] Started getty.\n\nDebian GNU/Linux 12 rel-eng-test ttyS0\n\n"
                             "rel-eng-test-appliance login: ")
    assert disabled.login_prompt and disabled.cloud_init_disabled
    assert "ds-identify" in disabled.settled()
    # a normal boot: cloud-init printed before getty, so a login prompt settles nothing
    normal = console.parse(kernel + "[ 9.1] cloud-init[300]: Cloud-init v. 22.4.2 running 'init-local'\n"
                           "ip-169-254-0-15 login: ")
    assert normal.login_prompt and not normal.cloud_init_disabled and normal.settled() == ""
    grub = console.parse("GRUB: appliance\nerror: invalid magic number.\n\x1b[0merror: you need to load "
                         "the kernel first.\n\ngrub> ")
    assert grub.grub_prompt and not grub.kernel and "GRUB stopped" in grub.settled()
    panic = console.parse(kernel + "[ 2.5] Kernel panic - not syncing: VFS: Unable to mount root fs "
                          "on unknown-block(0,0)\n[ 2.6] ---[ end Kernel panic")
    assert panic.settled().startswith("the kernel panicked: Kernel panic - not syncing: VFS")
    assert console.parse(kernel + "[ 5.0] systemd[1]: Reached target\n").settled() == ""
    # cloud-init asking a metadata service settles it only where the platform serves none
    seeking = console.parse(kernel + "[ 41.9] cloud-init[307]: Cloud-init v. 22.4.2 running 'init'\n"
                            "[ 42.8] cloud-init[307]: 2026-12-07 23:40:56,634 - url_helper.py[WARNING]: "
                            "Calling 'http://169.254.169.254/2009-04-04/meta-data/instance-id' failed "
                            "[0/120s]: request error [('Connection aborted.')]\n")
    assert seeking.metadata_sought == "http://169.254.169.254/2009-04-04/meta-data/instance-id"
    assert seeking.settled(serves_metadata=True) == ""
    assert "does not present" in seeking.settled(serves_metadata=False)
    # cloud-init 22.4 as the appliance prints it: no URL, only urllib3's host and path
    unnamed = console.parse(kernel + "[ 92.6] cloud-init[300]: 2026-12-08 00:15:07,345 - url_helper.py"
                            "[WARNING]: Calling 'None' failed [0/120s]: request error [HTTPConnectionPool("
                            "host='fd00:ec2::254', port=80): Max retries exceeded with url: "
                            "/2009-04-04/meta-data/instance-id (Caused by NewConnectionError('<urllib3"
                            ".connection.HTTPConnection object at 0x7f13>: Failed to establish a new "
                            "connection: [Errno 101] Network is unreachable'))]\n")
    assert unnamed.metadata_sought == "http://[fd00:ec2::254]/2009-04-04/meta-data/instance-id"
    gave_up = console.parse(kernel + "- url_helper.py[ERROR]: Timed out, no response from urls: "
                            "['http://169.254.169.254/openstack']\n")
    assert gave_up.metadata_sought == "http://169.254.169.254/openstack"
    assert console.parse(kernel + "url_helper.py[WARNING]: Calling 'http://10.0.0.1/x' failed")\
        .metadata_sought == ""


def test_offline_datasource_list_last_file_wins_in_cloud_init_order():
    from rel_eng.boottest.offline import datasource_list

    files = {"/etc/cloud/cloud.cfg": "# datasource_list: [ Nope ]\ndatasource_list: [ NoCloud, None ]\n",
             "/etc/cloud/cloud.cfg.d/90_dpkg.cfg": "datasource_list:\n  - 'ConfigDrive'\n  - OpenStack\n",
             "/etc/cloud/cloud.cfg.d/50-a.cfg": "datasource_list: [ Ec2 ]\n",
             "/etc/cloud/cloud.cfg.d/99-x.txt": "datasource_list: [ Ignored ]\n"}
    assert datasource_list(files) == (["ConfigDrive", "OpenStack"], "/etc/cloud/cloud.cfg.d/90_dpkg.cfg")
    assert datasource_list({"/etc/cloud/cloud.cfg": "system_info: {}\n"}) == (None, "")


def test_compose_gate_platform_per_image_type(alpha_drop):
    """The gate boots each image type as its [images.<key>] platform says, the IMDS mode and ENA
    from the AMI's attributes (the release's ec2_* keys over [ec2]), the OpenStack mode from
    [boot_test] openstack."""
    import dataclasses

    from rel_eng.compose import boot_gate

    c, _ = alpha_drop
    by_type = {c.job(j.key).image_type: boot_gate.platform_for(c, j.key) for j in c.plan.images}
    assert by_type["generic"] == Platform("openstack", "v1", "config-drive")
    # Fedora 19 declares IMDSv1 allowed and no ENA (releases.toml).
    assert by_type["ec2"] == Platform("ec2", "v1", "config-drive")
    ec2_key = next(j.key for j in c.plan.images if j.image_type == "ec2" and j.arch == "x86_64")
    rel = dataclasses.replace(c.config.release("19"), ec2_imds=None, ec2_ena=None)
    cfg = dataclasses.replace(c.config, releases=(rel,))
    old = c.config
    try:
        object.__setattr__(c, "config", cfg) if dataclasses.is_dataclass(c) else setattr(c, "config", cfg)
        assert boot_gate.platform_for(c, ec2_key) == Platform("ec2", "v2", "config-drive", ena=True)
        assert boot_gate.attributes_for(c, ec2_key).full() == {
            "BootMode": "legacy-bios", "ImdsSupport": "v2.0", "EnaSupport": True,
            "SriovNetSupport": "", "TpmSupport": ""}
    finally:
        object.__setattr__(c, "config", old) if dataclasses.is_dataclass(c) else setattr(c, "config", old)
