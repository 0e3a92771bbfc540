"""What Nova hands a guest: the config drive, or the same content from the metadata service.

Both carry `openstack/<version>/{meta_data.json, user_data, network_data.json, vendor_data.json,
vendor_data2.json}` and the EC2-compatible twin (on the drive `ec2/<version>/meta-data.json` and
`user-data`; from the service the EC2 tree at `/<version>/meta-data/...`). The drive is ISO 9660
labelled `config-2`, which is what cloud-init's ds-identify and ConfigDrive datasource look for;
the service is found by DMI (product "OpenStack Nova") and answers at 169.254.169.254.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from rel_eng import runner
from rel_eng.boottest.metadata import Instance
from rel_eng.boottest.metadata import imds
from rel_eng.boottest.metadata.imds import Response
from rel_eng.boottest.metadata.tree import lookup

LABEL = "config-2"
# Nova's metadata API versions (nova/api/metadata/base.py); cloud-init picks the newest it knows.
OS_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
               "2016-10-06", "2017-02-22", "2018-08-27", "2019-04-04", "2020-10-14")
EC2_VERSIONS = ("2009-04-04",)


def meta_data(inst: Instance) -> dict:
    key = inst.pubkey.strip() + "\n"
    return {
        "uuid": inst.instance_id, "name": inst.hostname, "hostname": inst.fqdn,
        "public_keys": {inst.key_name: key},
        "keys": [{"name": inst.key_name, "type": "ssh", "data": key}],
        "availability_zone": inst.availability_zone, "launch_index": 0,
        "project_id": "0123456789abcdef0123456789abcdef", "meta": {}, "devices": [],
    }


def network_data(inst: Instance) -> dict:
    """One port, addressed by DHCP (Neutron's ipv4_dhcp), matched by its MAC."""
    return {
        "links": [{"id": "tap-rel-eng0", "type": "phy", "ethernet_mac_address": inst.mac.lower(),
                   "mtu": 1500, "vif_id": "00000000-0000-4000-8000-000000000001"}],
        "networks": [{"id": "network0", "type": "ipv4_dhcp", "link": "tap-rel-eng0",
                      "network_id": "00000000-0000-4000-8000-000000000002"}],
        "services": [],
    }


def ec2_meta_data(inst: Instance) -> dict:
    md = imds.meta_data(inst)
    md.pop("network")  # Nova's EC2 twin has no VPC interface tree
    md["public-keys"] = {"0": {"openssh-key": inst.pubkey.strip() + "\n"}}
    return md


def openstack_files(inst: Instance) -> dict[str, str]:
    """The files under openstack/<version>/."""
    return {"meta_data.json": json.dumps(meta_data(inst), indent=1),
            "user_data": inst.user_data,
            "network_data.json": json.dumps(network_data(inst), indent=1),
            "vendor_data.json": "{}", "vendor_data2.json": "{}"}


def drive_files(inst: Instance) -> dict[str, str]:
    """Every file of the config drive by its path on the drive."""
    files = {f"openstack/latest/{n}": body for n, body in openstack_files(inst).items()}
    for v in (*EC2_VERSIONS, "latest"):
        files[f"ec2/{v}/meta-data.json"] = json.dumps(ec2_meta_data(inst), indent=1)
        files[f"ec2/{v}/user-data"] = inst.user_data
    return files


VFAT_DRIVE_KIB = 64 * 1024  # Nova's vfat config drive is 64 MiB


def _drive_tree(dest: Path, inst: Instance) -> Path:
    src = dest.parent / "config-drive"
    shutil.rmtree(src, ignore_errors=True)
    for rel, body in drive_files(inst).items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return src


def make_vfat_config_drive(dest: Path, inst: Instance) -> Path:
    """A vfat config drive (Nova's config_drive_format = vfat: 64 MiB, label config-2) at dest,
    written with mtools: no loop device, no mount."""
    src = _drive_tree(dest, inst)
    dest.unlink(missing_ok=True)
    runner.run(["mkfs.vfat", "-n", LABEL, "-C", dest, str(VFAT_DRIVE_KIB)])
    runner.run(["mcopy", "-s", "-i", dest, *sorted(src.iterdir()), "::/"])
    return dest


def make_config_drive(dest: Path, inst: Instance) -> Path:
    """An ISO 9660 config drive (Rock Ridge and Joliet, as Nova writes it) at dest."""
    src = _drive_tree(dest, inst)
    runner.run(["genisoimage", "-quiet", "-output", dest, "-volid", LABEL, "-joliet", "-rock",
                "-allow-lowercase", "-allow-multidot", "-ldots", "-l", src])
    return dest


def service_tree(inst: Instance) -> dict:
    per_version = openstack_files(inst)
    versions = (*OS_VERSIONS, "latest")
    # Nova lists the versions without a trailing "/", and cloud-init matches them as listed.
    os_tree = {"": "\n".join(versions), **{v: per_version for v in versions}}
    ec2 = {"meta-data": ec2_meta_data(inst), "user-data": inst.user_data}
    return {"openstack": os_tree, **{v: ec2 for v in (*EC2_VERSIONS, "latest")}}


@dataclass
class OpenStackMetadata:
    """Nova's metadata service: no tokens (a token PUT is 404 there, as on Nova)."""
    inst: Instance

    def __post_init__(self):
        self._tree = service_tree(self.inst)

    def token_state(self, headers: dict[str, str]) -> str:
        return "none" if imds._get(headers, imds.TOKEN_HEADER) is None else "ignored"

    def respond(self, method: str, path: str, headers: dict[str, str]) -> Response:
        path = path.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return Response(405 if path.rstrip("/") != imds.TOKEN_PATH else 404, "Not Found\n")
        body = lookup(self._tree, path) if path.strip("/") else "\n".join([*EC2_VERSIONS, "latest"])
        return Response(404, "Not Found\n") if body is None else Response(200, body)
