import dataclasses
import datetime as dt
import json
import subprocess

from lxml import etree

from rel_eng import paths, tdl
from rel_eng.plan import plan_drop

TEMPLATE = paths.TDL_DIR / tdl.TEMPLATE_NAME


def _jobs(config):
    return plan_drop(config, "19", milestone="Alpha", date=dt.date(2013, 4, 5)).images


def test_every_generated_tdl_passes_oz_parser(config):
    tdls = {j.key: tdl.render(j, TEMPLATE) for j in _jobs(config)}
    assert tdl.validate_with_oz(tdls) == {}


def test_oz_reads_back_what_we_meant(config):
    job = next(j for j in _jobs(config) if j.arch == "i686")
    xml = tdl.render(job, TEMPLATE)
    script = (
        "import json,sys,oz.TDL; t=oz.TDL.TDL(sys.stdin.read());"
        "print(json.dumps([t.name,t.distro,t.update,t.arch,t.url,sorted(t.repositories)]))"
    )
    out = subprocess.run(["/usr/bin/python3", "-c", script], input=xml, capture_output=True,
                         text=True, check=True).stdout
    name, distro, update, arch, url, repos = json.loads(out)
    assert (name, distro, update, arch) == (job.nvra, "Fedora", "19", "i386")
    assert url == job.install_tree
    assert repos == ["repo0"]


def test_values_are_escaped_not_pasted(config):
    job = dataclasses.replace(_jobs(config)[0],
                              install_tree="https://example.org/os/?a=1&b=<2>",
                              description='Cloud "</description><evil/>')
    xml = tdl.render(job, TEMPLATE)
    root = etree.fromstring(xml.encode())
    assert root.find("os/install/url").text == "https://example.org/os/?a=1&b=<2>"
    assert root.find("evil") is None
    assert tdl.validate_with_oz({"x": xml}) == {}


def test_oz_rejects_a_broken_tdl():
    errors = tdl.validate_with_oz({"bad": "<template><name>x</name></template>"})
    assert "bad" in errors and "OzException" in errors["bad"]
