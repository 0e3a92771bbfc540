"""Fetching Koji task outputs over HTTP(S) and turning koji's raw.xz into a sparse raw disk.

Every file name the hub reports is checked before it is joined to a local path. Downloads
stream into a `.part` file, resume with a Range request after a dropped connection (bounded
retries with back-off, rel_eng.retry), are checked against the size `listTaskOutput(stat=True)`
reported and renamed only when complete, and then against the checksum the hub recorded when it imported the
file (`listArchives`: non-scratch builds only; koji keeps none for scratch outputs).
Decompression streams `xz -dc` into the raw file, seeking over all-zero blocks, so the disk
costs what its data costs and no second uncompressed copy exists; the raw disk's manifest
digest is taken in that same pass.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable

import requests

import koji

from rel_eng import retry as rel_retry
from rel_eng import runner
from rel_eng.atomic import atomic_path
from rel_eng.digest import DigestMismatch, file_digest
from rel_eng.errors import RelEngError

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# Small reads while downloading: a dropped connection loses the read in progress, not more.
NET_CHUNK = 64 * 1024
SPARSE_BLOCK = 64 * 1024  # holes are made per block of zeros this size (a multiple of 4 KiB)
_ZERO_CHUNK = bytes(CHUNK)
_ZERO_BLOCK = bytes(SPARSE_BLOCK)


class UnsafeFileName(RelEngError):
    """The hub named a file that would land outside the directory it belongs in."""


class DownloadFailed(RelEngError):
    pass


def check_name(name: object, where: str) -> str:
    """A hub-reported file name usable as one path component, or UnsafeFileName."""
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name
            or "\\" in name or "\0" in name or name.startswith(".") or ".." in name
            or os.path.isabs(name)):
        raise UnsafeFileName(f"{where}: refusing unsafe file name {name!r} from the koji hub",
                             hint="a file name must be one plain path component; "
                                  "nothing was written")
    return name


@dataclass(frozen=True)
class Retry(rel_retry.Policy):
    """A download's retry policy (rel_eng.retry.Policy) with the sleep it waits with."""

    sleep: Callable[[float], None] = time.sleep


def _transient(exc: BaseException) -> bool:
    """Worth sending the Range request again; a TLS failure is a setup problem, not a blip."""
    return (isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                             requests.exceptions.ChunkedEncodingError))
            and not isinstance(exc, requests.exceptions.SSLError))


def download(http: requests.Session, url: str, dest: Path, size: int, retry: Retry,
             timeout: float, verify: str | bool = True) -> Path:
    """Fetch `url` into `dest` (size known beforehand), resuming a partial `.part` file.

    `verify` goes with each request: requests lets REQUESTS_CA_BUNDLE override a session's.
    """
    part = dest.with_name(f".{dest.name}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)

    def fetch_rest() -> None:  # one attempt: Range requests until the part file is whole
        while True:
            have = part.stat().st_size if part.exists() else 0
            if have > size:  # not ours, or the file changed on the hub: start over
                part.unlink()
                have = 0
            if have == size:
                return
            _fetch_from(http, url, part, have, size, timeout, verify)

    def resuming(exc: BaseException, attempt: int, delay: float) -> None:
        log.warning("download of %s interrupted (%s); resuming in %.1fs (retry %d/%d)",
                    url, type(exc).__name__, delay, attempt, policy.retries)

    def failed(exc: BaseException, attempts: int) -> DownloadFailed:
        return DownloadFailed(f"download of {url} failed after {attempts} attempts "
                              f"({part.stat().st_size if part.exists() else 0} of {size} "
                              f"bytes): {exc}", hint="rerun to resume the download")

    policy = retry
    try:
        rel_retry.call(fetch_rest, policy, transient=_transient,
                       catch=(requests.exceptions.RequestException,), sleep=policy.sleep,
                       on_retry=resuming, give_up=failed)
    except requests.exceptions.RequestException as exc:  # not transient: no retry helps
        raise DownloadFailed(f"GET {url}: {exc}") from None
    os.replace(part, dest)
    return dest


def _fetch_from(http: requests.Session, url: str, part: Path, have: int, size: int,
                timeout: float, verify: str | bool) -> None:
    headers = {"Range": f"bytes={have}-"} if have else {}
    with http.get(url, headers=headers, stream=True, timeout=(30, timeout),
                  verify=verify) as resp:
        if resp.status_code == 416 and have:
            part.unlink()  # the server says our partial file does not fit: start over
            return
        if resp.status_code not in (200, 206):
            raise DownloadFailed(f"GET {url}: HTTP {resp.status_code} {resp.reason}")
        if have and resp.status_code == 200:
            have = 0  # Range ignored: the body is the whole file
        elif have and not resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            raise DownloadFailed(f"GET {url}: answer to Range bytes={have}- starts elsewhere "
                                 f"({resp.headers.get('Content-Range')!r})")
        with open(part, "r+b" if have else "wb") as out:
            out.truncate(have)
            written = have
            for chunk in resp.iter_content(NET_CHUNK):
                if written + len(chunk) > size:
                    raise DownloadFailed(f"GET {url}: more than the {size} bytes the hub listed")
                # All-zero runs stay holes, so a plain raw disk lands sparse. The file then
                # ends at its last data byte, and a resume refetches the skipped zeros.
                if chunk.count(0) != len(chunk):
                    out.seek(written)
                    out.write(chunk)
                written += len(chunk)
            if written == size:
                out.truncate(size)
    if written != size:  # a clean close before the end is a truncation too
        raise requests.exceptions.ChunkedEncodingError(
            f"connection closed at byte {written} of {size}")


def check_archive(path: Path, archive: dict, where: str) -> None:
    """The downloaded file against the hub's archive record (size, and checksum of
    `checksum_type`: koji.CHECKSUM_TYPES md5 0, sha1 1, sha256 2). A mismatch removes the file,
    so a rerun fetches it afresh."""
    size = path.stat().st_size
    try:
        algo = koji.CHECKSUM_TYPES[int(archive["checksum_type"])]
        expected = str(archive["checksum"]).lower()
        want_size = int(archive["size"])
    except (KeyError, IndexError, TypeError, ValueError):
        shown = {k: archive.get(k) for k in ("checksum", "checksum_type", "size")}
        raise DownloadFailed(f"{where}: unusable archive record for {path.name} ({shown})",
                             hint="check the build in koji") from None
    if size != want_size:
        path.unlink()
        raise DownloadFailed(f"{where}: {path.name} is {size} bytes, the hub recorded {want_size}",
                             hint="rerun to fetch it again")
    actual = file_digest(path, algo)
    if actual != expected:
        path.unlink()
        raise DigestMismatch(f"{where}: downloaded {path.name}", expected, actual, what=algo,
                             hint="the file was damaged on its way from the hub (removed); "
                                  "rerun to fetch it again")


def write_sparse(src: IO[bytes], dest: Path, digest=None) -> int:
    """Copy a stream into `dest`, leaving holes for all-zero blocks; returns the size. `digest`
    (e.g. a rel_eng.digest.BlockDigest) is fed every byte on the way."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pos = 0
    try:
        while chunk := src.read(CHUNK):
            if chunk == _ZERO_CHUNK:  # the common case in a disk image: one memcmp
                if digest is not None:
                    digest.update_zeros(len(chunk))
                pos += len(chunk)
                continue
            if digest is not None:
                digest.update(chunk)
            for off in range(0, len(chunk), SPARSE_BLOCK):
                # bytes slices compare with one memcmp; memoryview compares item by item
                block = chunk[off:off + SPARSE_BLOCK]
                if block != _ZERO_BLOCK[:len(block)]:
                    os.pwrite(fd, block, pos + off)
            pos += len(chunk)
        os.ftruncate(fd, pos)  # sets the size, trailing holes included
        os.fsync(fd)
    finally:
        os.close(fd)
    return pos


def unxz_sparse(src: Path, dest: Path, digest=None) -> int:
    """`xz -dc src` streamed into a sparse `dest` (temp name, renamed when xz succeeded)."""
    with atomic_path(dest) as tmp:  # removed on any failure, a corrupt .xz included
        proc = runner.start(["xz", "-dc", "-T0", "--", str(src)])
        try:
            size = write_sparse(proc.stdout, tmp, digest)
        except BaseException:
            proc.kill()
            proc.stdout.close()
            proc.wait()
            raise
        proc.stdout.close()
        runner.wait(proc)  # a corrupt or truncated .xz makes xz exit non-zero
    return size
