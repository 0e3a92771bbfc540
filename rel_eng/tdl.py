"""TDLs generated per image and arch from the template in tdl/, with lxml (never string pasting).

Oz's own parser (`oz.TDL.TDL`, Debian package `oz`, importable only by the system python)
validates the result against Oz's schema.
"""

from __future__ import annotations

import json
from pathlib import Path

from lxml import etree

from rel_eng import runner
from rel_eng.errors import CommandFailed, InputError
from rel_eng.plan import ImageJob

TEMPLATE_NAME = "cloud.tdl"
SYSTEM_PYTHON = "/usr/bin/python3"
OZ_CHECK = Path(__file__).with_name("ozcheck.py")


def render(job: ImageJob, template: Path) -> str:
    """The TDL for one image: Oz spells i686 as i386; disk size is a bare number of GiB."""
    try:
        tree = etree.parse(str(template), etree.XMLParser(remove_comments=True))
    except (OSError, etree.XMLSyntaxError) as exc:
        raise InputError(f"{template}: cannot read TDL template: {exc}") from None
    root = tree.getroot()

    def child(parent, tag):
        node = parent.find(tag)
        if node is None:
            node = etree.SubElement(parent, tag)
        return node

    child(root, "name").text = job.nvra
    child(root, "description").text = f"{job.description} ({job.nvra})"
    os_ = child(root, "os")
    child(os_, "name").text = "Fedora"
    child(os_, "version").text = str(job.fedora_version)
    child(os_, "arch").text = job.oz_arch
    install = child(os_, "install")
    install.set("type", "url")
    for old in install:
        install.remove(old)
    etree.SubElement(install, "url").text = job.install_tree
    child(child(root, "disk"), "size").text = str(job.disk_size_gib)
    repos = root.find("repositories")
    if repos is not None:
        root.remove(repos)
    if job.repos:
        repos = etree.SubElement(root, "repositories")
        for i, url in enumerate(job.repos):
            repo = etree.SubElement(repos, "repository", name=f"repo{i}")
            etree.SubElement(repo, "url").text = url
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode") + "\n"


def validate_with_oz(tdls: dict[str, str]) -> dict[str, str]:
    """Parse each TDL with oz.TDL.TDL; return {name: error} for the invalid ones."""
    if not Path(SYSTEM_PYTHON).exists():
        raise InputError("cannot validate TDLs: /usr/bin/python3 is missing",
                         hint="apt-get install oz")
    try:
        proc = runner.run([SYSTEM_PYTHON, str(OZ_CHECK)], input=json.dumps(tdls).encode())
    except CommandFailed as exc:
        raise InputError(f"cannot validate TDLs with Oz: {exc.stderr_tail.strip().splitlines()[-1:]}",
                         hint="apt-get install oz") from None
    return json.loads(proc.stdout)
