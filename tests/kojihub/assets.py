"""Real files the test hub needs: a TLS CA with server and client certs, and real images.

Certificates come from the openssl CLI, images from truncate + dd + xz and qemu-img, all through
rel_eng.runner (argv lists). Both are made once per test session.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rel_eng import runner

RAW_SIZE = "64M"  # virtual size of the test disk; only 4 MiB of it holds data
# 1 MiB of random data at each of these offsets: the raw.xz is ~4 MiB that xz cannot shrink,
# far more than one read, so a download cut short leaves a partial file to resume from.
DATA_AT_MIB = (0, 16, 32, 60)


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    clients: dict  # user name -> PEM holding cert + key (koji's `cert` option)


@dataclass(frozen=True)
class Images:
    raw: Path
    raw_xz: Path
    qcow2: Path


def _key_args() -> list[str]:
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]


def make_certs(dest: Path, users: tuple[str, ...] = ("releng", "nobody", "kojiadmin")) -> Certs:
    dest.mkdir(parents=True, exist_ok=True)
    ca, ca_key = dest / "ca.pem", dest / "ca.key"
    runner.run(["openssl", "req", "-x509", *_key_args(), "-keyout", ca_key, "-out", ca,
                "-subj", "/CN=rel-eng test hub CA"])
    server, server_key = dest / "server.pem", dest / "server.key"
    runner.run(["openssl", "req", "-x509", *_key_args(), "-keyout", server_key, "-out", server,
                "-subj", "/CN=127.0.0.1", "-CA", ca, "-CAkey", ca_key,
                "-addext", "subjectAltName=IP:127.0.0.1",
                "-addext", "basicConstraints=critical,CA:FALSE"])
    clients = {}
    for user in users:
        cert, key = dest / f"{user}.crt", dest / f"{user}.key"
        runner.run(["openssl", "req", "-x509", *_key_args(), "-keyout", key, "-out", cert,
                    "-subj", f"/CN={user}", "-CA", ca, "-CAkey", ca_key,
                    "-addext", "extendedKeyUsage=clientAuth",
                    "-addext", "basicConstraints=critical,CA:FALSE"])
        pem = dest / f"{user}.pem"
        pem.write_bytes(cert.read_bytes() + key.read_bytes())
        pem.chmod(0o600)
        clients[user] = pem
    return Certs(ca, server, server_key, clients)


def make_images(dest: Path) -> Images:
    """A sparse raw disk with a little random data, its .xz and a qcow2 of it."""
    dest.mkdir(parents=True, exist_ok=True)
    raw = dest / "disk.raw"
    runner.run(["truncate", "-s", RAW_SIZE, raw])
    for mib in DATA_AT_MIB:
        runner.run(["dd", "if=/dev/urandom", f"of={raw}", "bs=64K", "count=16",
                    f"seek={mib * 16}", "conv=notrunc", "status=none"])
    runner.run(["xz", "-T0", "-3", "-k", "-f", raw])
    qcow2 = dest / "disk.qcow2"
    runner.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2])
    return Images(raw, dest / "disk.raw.xz", qcow2)
