"""Fake `oz-install` and `virsh` for the Oz builder tests (a real install needs a bare-metal VM host).

The fake oz-install records its argv, reads the TDL's <name> like Oz does, "defines" a libvirt
domain of that name (a line in a state file the fake virsh lists), and per FAKE_OZ_MODE:
  image   writes a sparse raw disk to -s and the libvirt XML to -x, undefines its domain, exits 0
  none    exits 0 writing nothing
  empty   creates an empty -s file, exits 0
  hang    writes part of a disk and its pid, then sleeps (the builder must kill it)
  error0  writes part of a disk, prints `ERROR: ...` on stdout and exits 0 (Oz's default level)
  fail    prints a traceback on stderr and exits 1 (what -d3 does)
FAKE_OZ_ONLY limits a non-image mode to images whose TDL path contains it; others get `image`.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

OZ_INSTALL = r'''#!{python}
import json, os, re, sys, time
args = sys.argv[1:]
state = os.environ["FAKE_OZ_STATE"]
with open(os.path.join(state, "oz-calls.jsonl"), "a") as fh:
    fh.write(json.dumps(args) + "\n")
opt = lambda flag: args[args.index(flag) + 1]
tdl = args[-1]
name = re.search(r"<name>(.*?)</name>", open(tdl).read()).group(1)
mode = os.environ.get("FAKE_OZ_MODE", "image")
if os.environ.get("FAKE_OZ_ONLY", "") not in tdl:
    mode = "image"
domains = os.path.join(state, "domains")
with open(domains, "a") as fh:
    fh.write(name + "\n")
print("Fetching install media for " + name, flush=True)
sys.stderr.write("DEBUG oz.Guest.FedoraGuest: Starting guest " + name + "\n")
sys.stderr.flush()
def undefine():
    names = [n for n in open(domains).read().split() if n != name]
    open(domains, "w").write("".join(n + "\n" for n in names))
if mode == "image":
    with open(opt("-s"), "wb") as fh:
        fh.write(b"FAKE-OZ-DISK " + name.encode())
        fh.truncate(4 * 1024 * 1024)
    open(opt("-x"), "w").write("<domain><name>" + name + "</name></domain>\n")
    undefine()
    print("Libvirt XML was written to " + opt("-x"))
elif mode == "empty":
    open(opt("-s"), "wb").close()
    undefine()
elif mode == "none":
    undefine()
elif mode == "hang":
    open(opt("-s"), "wb").write(b"partial")
    open(os.path.join(state, "oz.pid"), "w").write(str(os.getpid()))
    time.sleep(3600)
elif mode == "error0":
    open(opt("-s"), "wb").write(b"partial")
    print("")
    print("ERROR: Timed out waiting for install to finish")
    print("")
    print("(use -d3 to get the full backtrace)")
elif mode == "fail":
    open(opt("-s"), "wb").write(b"partial")
    sys.stderr.write("Traceback (most recent call last):\n")
    sys.stderr.write("oz.OzException.OzException: No disk activity in 300 seconds, failing\n")
    sys.exit(1)
'''

VIRSH = r'''#!{python}
import json, os, sys
args = sys.argv[1:]
state = os.environ["FAKE_OZ_STATE"]
with open(os.path.join(state, "virsh-calls.jsonl"), "a") as fh:
    fh.write(json.dumps(args) + "\n")
assert args[0] == "-c", args
path = os.path.join(state, "domains")
names = open(path).read().split() if os.path.exists(path) else []
cmd = args[2]
if cmd == "list":
    print("\n".join(names) + "\n")
elif cmd == "destroy":
    pass
elif cmd == "undefine":
    if args[3] not in names:
        sys.stderr.write("error: failed to get domain '" + args[3] + "'\n")
        sys.exit(1)
    open(path, "w").write("".join(n + "\n" for n in names if n != args[3]))
'''


@dataclass
class FakeOz:
    bindir: Path
    state: Path

    def env(self, mode: str = "image", only: str = "") -> dict[str, str]:
        return {"PATH": f"{self.bindir}{os.pathsep}{os.environ['PATH']}",
                "FAKE_OZ_STATE": str(self.state), "FAKE_OZ_MODE": mode, "FAKE_OZ_ONLY": only}

    def oz_calls(self) -> list[list[str]]:
        return _jsonl(self.state / "oz-calls.jsonl")

    def virsh_calls(self) -> list[list[str]]:
        return _jsonl(self.state / "virsh-calls.jsonl")

    def domains(self) -> list[str]:
        path = self.state / "domains"
        return path.read_text().split() if path.exists() else []


def install(tmp: Path) -> FakeOz:
    bindir, state = tmp / "fakebin", tmp / "fakestate"
    bindir.mkdir(parents=True)
    state.mkdir(parents=True)
    for name, text in (("oz-install", OZ_INSTALL), ("virsh", VIRSH)):
        path = bindir / name
        path.write_text(text.replace("{python}", sys.executable, 1))
        path.chmod(0o755)
    return FakeOz(bindir, state)


def _jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
