"""The candidate's download page, moved to the top of the release tree: its links follow the
files (`Cloud/<arch>/images/...` becomes `<arch>/images/...`), a banner says what was released
from which candidate and what the release does not vouch for ("not verified by a boot", what is
missing), and metadata/web.json records the new page's size and sha256, as verify checks."""

from __future__ import annotations

import hashlib
import json
from html import escape
from pathlib import Path

from rel_eng.atomic import atomic_write

PAGE, LISTING = "index.html", "metadata/web.json"


def banner(record: dict) -> str:
    e = {k: escape(str(record.get(k, ""))) for k in ("release", "milestone", "label",
                                                       "compose_id", "released_by", "note")}
    text = (f"Released as Fedora {e['release']} {e['milestone']} from candidate {e['label']} "
            f"(<code>{e['compose_id']}</code>) by {e['released_by']}.")
    if e["note"]:
        text += f" <strong>{e['note'][:1].upper() + e['note'][1:]}.</strong>"
    return f'<p class="warning" id="release">{text}</p>\n'


def rewrite(tree: Path, variant: str, record: dict) -> None:
    """Rewrite `tree`'s page and web.json as new files (never the staged drop's inodes)."""
    page = tree / PAGE
    if not page.is_file():
        return
    html = page.read_text().replace(f'href="{variant}/', 'href="')
    html = html.replace("<header>\n", "<header>\n" + banner(record), 1)
    page.unlink()
    atomic_write(page, html)
    listing = tree / LISTING
    doc = json.loads(listing.read_text()) if listing.is_file() else {"pages": {}}
    data = html.encode()
    doc.setdefault("pages", {})[PAGE] = {"size": len(data),
                                         "sha256": hashlib.sha256(data).hexdigest()}
    if listing.exists():
        listing.unlink()
    atomic_write(listing, json.dumps(doc, indent=2, sort_keys=True) + "\n")
