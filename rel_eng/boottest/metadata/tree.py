"""A metadata tree served over HTTP the way EC2-style services list it.

A node is a str (a leaf) or a dict (a directory). A directory's listing is its names, one a line,
sub-directories ending in "/"; a "" key, where present, replaces that listing (EC2's public-keys
lists `0=<key name>` although the path below it is `0/`). Pure: tested directly.
"""

from __future__ import annotations


def listing(node: dict) -> str:
    if "" in node:
        return node[""]
    return "\n".join(f"{k}/" if isinstance(v, dict) else k for k, v in node.items() if k)


def lookup(tree: dict, path: str) -> str | None:
    """The body for path (a leaf's text or a directory's listing), or None (404)."""
    node = tree
    for part in [p for p in path.strip("/").split("/") if p]:
        if not isinstance(node, dict) or part not in node or part == "":
            return None
        node = node[part]
    return listing(node) if isinstance(node, dict) else node
