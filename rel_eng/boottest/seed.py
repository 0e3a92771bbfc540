"""The cloud-init NoCloud seed: a `cidata` ISO with this run's key, a hostname and a nonce."""

from __future__ import annotations

import json
from pathlib import Path

from rel_eng import runner

NONCE_PATH = "/var/lib/rel-eng-boot-test/nonce"


def user_data(pubkey: str, nonce: str) -> str:
    # JSON is valid YAML: no quoting surprises whatever the key comment holds.
    body = {
        "ssh_authorized_keys": [pubkey.strip()],
        "ssh_pwauth": False,
        "runcmd": [["sh", "-c", f"mkdir -p {Path(NONCE_PATH).parent} && "
                                f"echo {nonce} > {NONCE_PATH}"]],
    }
    return "#cloud-config\n" + json.dumps(body, indent=1) + "\n"


def meta_data(instance_id: str, hostname: str) -> str:
    return f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"


def make_iso(dest: Path, *, pubkey: str, nonce: str, instance_id: str, hostname: str) -> Path:
    src = dest.parent / "cidata"
    src.mkdir(exist_ok=True)
    (src / "user-data").write_text(user_data(pubkey, nonce))
    (src / "meta-data").write_text(meta_data(instance_id, hostname))
    runner.run(["genisoimage", "-quiet", "-output", dest, "-volid", "cidata", "-joliet", "-rock",
                src / "user-data", src / "meta-data"])
    return dest
