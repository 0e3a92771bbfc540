"""The EC2 instance metadata service (IMDS) as cloud-init's Ec2 datasource reads it.

Tokens (IMDSv2): `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: 1..21600`
answers a token, sent back on every later request as `X-aws-ec2-metadata-token`. In v2 mode
(`ImdsSupport=v2.0`) a request without a valid token gets 401; in v1 mode a request without one
is answered, but a wrong or expired token is still 401, as on EC2. A PUT that carries
X-Forwarded-For is refused (403): EC2 does so to keep proxies from fetching tokens.

The tree holds what cloud-init crawls: the dated API versions it asks for and `latest`, the
meta-data it turns into hostname, keys and network config, user-data, and the instance identity
document. Pure apart from the clock (injected).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from rel_eng.boottest.metadata import Instance
from rel_eng.boottest.metadata.tree import lookup

TOKEN_PATH = "/latest/api/token"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL_S = 21600
# The API versions cloud-init 22.x asks for (DataSourceEc2.min_metadata_version and
# extended_metadata_versions), among the older ones EC2 still lists.
API_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2008-02-01", "2008-09-01", "2009-04-04",
                "2011-01-01", "2012-01-12", "2014-02-25", "2016-09-02", "2018-09-24",
                "2021-03-23")
MODES = ("v1", "v2")


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    headers: tuple[tuple[str, str], ...] = ()


def meta_data(inst: Instance) -> dict:
    mac = inst.mac.lower()
    subnet = inst.ipv4.rsplit(".", 2)[0] + ".0.0/16"
    nic = {
        "device-number": "0", "interface-id": "eni-0" + inst.instance_id[3:], "local-hostname": inst.fqdn,
        "local-ipv4s": inst.ipv4, "mac": mac, "owner-id": inst.account_id,
        "security-group-ids": "sg-0123456789abcdef0", "security-groups": "default",
        "subnet-id": "subnet-0123456789abcdef0", "subnet-ipv4-cidr-block": subnet,
        "vpc-id": "vpc-0123456789abcdef0", "vpc-ipv4-cidr-block": subnet,
        "vpc-ipv4-cidr-blocks": subnet,
    }
    return {
        "ami-id": inst.image_id, "ami-launch-index": "0", "ami-manifest-path": "(unknown)",
        "block-device-mapping": {"ami": "/dev/xvda", "root": "/dev/xvda"},
        "hostname": inst.fqdn, "instance-action": "none", "instance-id": inst.instance_id,
        "instance-type": inst.instance_type, "local-hostname": inst.fqdn, "local-ipv4": inst.ipv4,
        "mac": mac, "network": {"interfaces": {"macs": {mac: nic}}},
        "placement": {"availability-zone": inst.availability_zone, "region": inst.region},
        "profile": "default-hvm",
        "public-keys": {"": f"0={inst.key_name}", "0": {"openssh-key": inst.pubkey.strip() + "\n"}},
        "reservation-id": "r-0" + inst.instance_id[3:], "security-groups": "default",
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }


def identity_document(inst: Instance) -> str:
    return json.dumps({
        "accountId": inst.account_id, "architecture": "x86_64",
        "availabilityZone": inst.availability_zone, "imageId": inst.image_id,
        "instanceId": inst.instance_id, "instanceType": inst.instance_type,
        "pendingTime": "2013-04-05T00:00:00Z", "privateIp": inst.ipv4, "region": inst.region,
        "version": "2017-09-30",
    }, indent=2)


def version_tree(inst: Instance) -> dict:
    return {"dynamic": {"instance-identity": {"document": identity_document(inst)}},
            "meta-data": meta_data(inst), "user-data": inst.user_data}


def tree(inst: Instance) -> dict:
    """The whole service: `/` lists the API versions, each serving the same instance."""
    one = version_tree(inst)
    return {**{v: one for v in API_VERSIONS}, "latest": one}


@dataclass
class Imds:
    inst: Instance
    mode: str = "v2"
    clock: Callable[[], float] = time.monotonic
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"IMDS mode {self.mode!r}: expected one of {', '.join(MODES)}")
        self._tree = tree(self.inst)

    def token_state(self, headers: dict[str, str]) -> str:
        """none | valid | invalid (unknown or expired)."""
        tok = _get(headers, TOKEN_HEADER)
        if tok is None:
            return "none"
        expiry = self.tokens.get(tok)
        return "valid" if expiry is not None and self.clock() < expiry else "invalid"

    def respond(self, method: str, path: str, headers: dict[str, str]) -> Response:
        path = path.split("?", 1)[0]
        if path.rstrip("/") == TOKEN_PATH:
            return self._token(method, headers)
        if method not in ("GET", "HEAD"):
            return Response(405, "Method Not Allowed\n")
        state = self.token_state(headers)
        if state == "invalid" or (state == "none" and self.mode == "v2"):
            return Response(401, "Unauthorized\n")
        body = lookup(self._tree, path) if path.strip("/") else \
            "\n".join([*API_VERSIONS, "latest"])
        return Response(404, "Not Found\n") if body is None else Response(200, body)

    def _token(self, method: str, headers: dict[str, str]) -> Response:
        if method != "PUT":
            return Response(405, "Method Not Allowed\n")
        if _get(headers, "X-Forwarded-For") is not None:
            return Response(403, "Forbidden\n")
        ttl = _get(headers, TTL_HEADER)
        if ttl is None or not ttl.strip().isdigit() or not 1 <= int(ttl) <= MAX_TTL_S:
            return Response(400, "Bad Request\n")
        token = secrets.token_urlsafe(42)
        self.tokens[token] = self.clock() + int(ttl)
        return Response(200, token, ((TTL_HEADER, str(int(ttl))),))


def _get(headers: dict[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None
