"""The user data every boot carries, and the NoCloud seed (a `cidata` ISO) that hands it over
on the nocloud platform (ec2 and openstack hand the same user data over their own way).

The user data holds this run's key, a nonce the `user-data` check reads back, and the seal
probe: a runcmd that tries the host's loopback ports (through every address slirp gives the
host, and the default gateway) and records what it reached in SEAL_PATH, for the `sealed` check.
"""

from __future__ import annotations

import json
from pathlib import Path

from rel_eng import runner
from rel_eng.boottest.qemu import GATEWAYS

STATE_DIR = "/var/lib/rel-eng-boot-test"
NONCE_PATH = f"{STATE_DIR}/nonce"
SEAL_PATH = f"{STATE_DIR}/seal"
PROBE_TIMEOUT_S = 3


def seal_probe(ports: tuple[int, ...]) -> str:
    """A bash script: one line per host:port tried, "open" or "closed" (tries side by side)."""
    hosts = " ".join(GATEWAYS)
    plist = " ".join(str(int(p)) for p in ports)
    return (f"read -r _ _ gw _ < <(ip route show default 2>/dev/null); "
            f"for h in $gw {hosts}; do for p in {plist}; do "
            f"(if timeout {PROBE_TIMEOUT_S} bash -c \"exec 3<>/dev/tcp/$h/$p\" 2>/dev/null; "
            f"then echo \"$h:$p open\"; else echo \"$h:$p closed\"; fi) & done; done; wait")


def user_data(pubkey: str, nonce: str, probe_ports: tuple[int, ...] = ()) -> str:
    # JSON is valid YAML: no quoting surprises whatever the key comment holds.
    runcmd = [["sh", "-c", f"mkdir -p {STATE_DIR} && echo {nonce} > {NONCE_PATH}"]]
    if probe_ports:
        runcmd.append(["bash", "-c", f"{{ {seal_probe(probe_ports)}; }} > {SEAL_PATH}.tmp; "
                                     f"mv {SEAL_PATH}.tmp {SEAL_PATH}"])
    body = {"ssh_authorized_keys": [pubkey.strip()], "ssh_pwauth": False, "runcmd": runcmd}
    return "#cloud-config\n" + json.dumps(body, indent=1) + "\n"


def meta_data(instance_id: str, hostname: str) -> str:
    return f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"


def make_iso(dest: Path, *, user_data_text: str, instance_id: str, hostname: str) -> Path:
    src = dest.parent / "cidata"
    src.mkdir(exist_ok=True)
    (src / "user-data").write_text(user_data_text)
    (src / "meta-data").write_text(meta_data(instance_id, hostname))
    runner.run(["genisoimage", "-quiet", "-output", dest, "-volid", "cidata", "-joliet", "-rock",
                src / "user-data", src / "meta-data"])
    return dest
