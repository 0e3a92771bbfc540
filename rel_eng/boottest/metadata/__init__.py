"""What a cloud presents to a guest, built for real: one instance's identity, and per platform
the metadata a cloud serves or attaches (EC2 IMDS, OpenStack config drive and metadata service).

Each tree here is pure data (tested directly); `server` serves one to one VM through that VM's
own slirp network, and `configdrive` writes the OpenStack config drive.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Instance:
    """One boot's identity, as the platform hands it to the guest."""
    instance_id: str
    hostname: str          # what the platform says the guest is called (short name)
    fqdn: str
    pubkey: str
    user_data: str
    mac: str
    ipv4: str
    system_uuid: str       # DMI system UUID (and serial on EC2)
    instance_type: str = "t3.micro"
    availability_zone: str = "us-east-1a"
    region: str = "us-east-1"
    image_id: str = "ami-0123456789abcdef0"
    key_name: str = "rel-eng-boot-test"
    account_id: str = "123456789012"


def ec2_instance(pubkey: str, user_data: str, mac: str, ipv4: str, *,
                 instance_type: str = "t3.micro") -> Instance:
    """An EC2 identity: i-<17 hex>, and a DMI UUID that begins with ec2 (what ds-identify and
    cloud-init's identify_aws look for, with the serial equal to it)."""
    iid = "i-0" + secrets.token_hex(8)
    sys_uuid = "ec2" + str(uuid.uuid4())[3:]
    host = "ip-" + ipv4.replace(".", "-")
    return Instance(iid, host, f"{host}.ec2.internal", pubkey, user_data, mac, ipv4, sys_uuid,
                    instance_type=instance_type)


def openstack_instance(pubkey: str, user_data: str, mac: str, ipv4: str) -> Instance:
    """A Nova identity: the instance UUID is also the DMI system UUID, as Nova sets it."""
    iid = str(uuid.uuid4())
    host = "rel-eng-" + iid[:8]
    return Instance(iid, host, f"{host}.novalocal", pubkey, user_data, mac, ipv4, iid,
                    instance_type="m1.small", availability_zone="nova", region="RegionOne")


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
