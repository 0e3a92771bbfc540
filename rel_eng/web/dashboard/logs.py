"""Log files of a compose, found and read only inside <topdir>/logs.

A path from a URL is resolved (following symlinks) and must stay under the compose's real logs
directory: `../`, absolute paths and symlinks that lead out are refused the same way as a
missing file, so nothing outside tells which files exist.
"""

from __future__ import annotations

import os
from pathlib import Path

LOG_DIR = "logs"
EXCERPT_LINES = 30
EXCERPT_BYTES = 8192
MAX_LISTED = 50  # log files listed per image


def safe_log_path(topdir: str | Path, rel: str) -> Path | None:
    """The file `rel` (relative to the compose's logs/) if it is a regular file inside it."""
    if not rel or "\x00" in rel or rel.startswith("/"):
        return None
    try:
        root = (Path(topdir) / LOG_DIR).resolve(strict=True)
        path = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def image_logs(topdir: str | Path, job_key: str) -> list[str]:
    """Log files of one image (logs/<job key>/...), relative to logs/, newest first."""
    base = Path(topdir) / LOG_DIR / job_key
    found = []
    try:
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                p = Path(dirpath) / name
                if safe_log_path(topdir, str(p.relative_to(Path(topdir) / LOG_DIR))) is not None:
                    found.append((p.stat().st_mtime, str(p.relative_to(Path(topdir) / LOG_DIR))))
                if len(found) >= MAX_LISTED:
                    break
    except OSError:
        return []
    return [rel for _, rel in sorted(found, reverse=True)]


def excerpt(topdir: str | Path, rel: str) -> str:
    """The last lines of a log (at most EXCERPT_BYTES read), as text."""
    path = safe_log_path(topdir, rel)
    if path is None:
        return ""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - EXCERPT_BYTES))
        data = fh.read()
    lines = data.decode("utf-8", "replace").splitlines()
    if size > EXCERPT_BYTES:
        lines = lines[1:]  # the first one is cut
    return "\n".join(lines[-EXCERPT_LINES:])
