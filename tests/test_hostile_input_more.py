"""More hostile input, in the classes test_hostile_input.py does not reach: dates and times past
what the calendar or a compose id can hold, numbers past what time arithmetic takes, inputs that
recurse (include loops, deep nesting) or never end (/dev/zero), damaged records of a compose, a
store that is no database or is unreachable, a beat state file that is not one, a mirror tree
that staging could not go through, files that are no kickstart, control characters in values.

Each case runs `rel-eng` in a subprocess inside a fresh world and asserts: exit 2, exactly one
line on stderr that starts with "rel-eng", no traceback, no control character, the fragment
that names the problem, and a world unchanged to the byte and the mtime.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rel_eng import paths
from tests.hostile_support import assert_refused_in_one_line, run_in_world, run_selected

DEAD_PG = "postgresql+psycopg://rel_eng@127.0.0.1:1/rel_eng"
SECRET = "root:$6$hostile-secret-41f2$Zx:19000:0:99999:7:::"
TODAY = dt.datetime.now(dt.timezone.utc).date()

WEEKLY = ["compose", "--release", "19", "--weekly", "--date", "2013-04-05", "--output", "{W}/out"]
BETA = ["compose", "--release", "19", "--milestone", "Beta", "--date", "2013-04-05",
        "--output", "{W}/out"]
PLAN = ["plan", "--release", "19", "--weekly", "--date", "2013-04-05", "--output", "{W}/out"]


def _nested(n: int, open_: str, close: str) -> str:
    return "a = " + open_ * n + close * n + "\n"


def _shipped_ks() -> dict[str, str]:
    return {f"ks/{p.name}": p.read_text() for p in paths.KICKSTART_DIR.glob("*.ks")}


# World files: relative path -> text (bytes for raw content). Every world gets all of them.
FILES = {
    "afile": "not a directory\n",
    "deep-arrays.toml": _nested(5000, "[", "]"),
    "deep-tables.toml": "a = " + "{b = " * 5000 + "1" + "}" * 5000 + "\n",
    "big.toml": "# padding\n" * (1_800_000),  # 18 MiB of comments: a valid TOML, too large
    "etc/shadow": SECRET + "\ndaemon:*:19000:0:99999:7:::\n",
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "ks-self/fedora-cloud-base.ks": "%include fedora-cloud-base.ks\n",
    "ks-self/fedora-cloud-base-ec2.ks": "%include fedora-cloud-base.ks\n",
    "ks-loop/fedora-cloud-base.ks": "%include fedora-cloud-base-ec2.ks\n",
    "ks-loop/fedora-cloud-base-ec2.ks": "%include fedora-cloud-base.ks\n",
    "ks-esc/fedora-cloud-base.ks": "text\n\x1b[2J\x1b[31mowned\x1b[0m --now\n",
    "ks-esc/fedora-cloud-base-ec2.ks": "%include fedora-cloud-base.ks\n",
    "ks-badline/fedora-cloud-base.ks": (paths.KICKSTART_DIR / "fedora-cloud-base.ks").read_text()
    + "frobnicate --now\n",
    "ks-badline/fedora-cloud-base-ec2.ks":
        (paths.KICKSTART_DIR / "fedora-cloud-base-ec2.ks").read_text(),
    "notdb/rel-eng.db": b"SQLite format 2\x00 but not really" + bytes(range(256)) * 8,
    "textdb/rel-eng.db": "this is a text file, not a compose store\n",
    "beat-state": "precious, not a dbm file\n",
    "rel-esc.toml": '[releases.19]\nversion = "19"\nfedora_version = 19\n'
                    'install_tree = "http://127.0.0.1:9/\\u001b[31m/"\n',
    "streams-empty.toml": "",
    "ks-big/fedora-cloud-base-ec2.ks": "%include fedora-cloud-base.ks\n",
}

CONFIGS = {
    "deep-arrays": None,  # --config names the file itself
    "desc-newline": '[images.generic]\ndescription = "one\\ntwo"\n',
    "desc-esc": '[images.generic]\ndescription = "x\\u001b]0;owned\\u0007y"\n',
    "desc-c1": '[images.generic]\ndescription = "x\\u009by"\n',
    "optional-unknown": '[compose]\noptional_arches = ["ppc64le"]\n',
    "ks-dir-empty": '[compose]\nkickstart_dir = ""\n',
    "shadow": '[compose]\nkickstart_dir = "{W}/etc"\n[images.generic]\nkickstart = "shadow"\n'
              '[images.ec2]\nkickstart = "shadow"\n',
    "ks-self": '[compose]\nkickstart_dir = "{W}/ks-self"\n',
    "ks-loop": '[compose]\nkickstart_dir = "{W}/ks-loop"\n',
    "ks-esc": '[compose]\nkickstart_dir = "{W}/ks-esc"\n',
    "ks-badline": '[compose]\nkickstart_dir = "{W}/ks-badline"\n',
    "pg-dead": f'[store]\nurl = "{DEAD_PG}"\n',
    "pg-nodriver": '[store]\nurl = "postgresql+psycopg2://rel_eng@127.0.0.1:1/rel_eng"\n',
    "desc-del": '[images.ec2]\ndescription = "x\\u007fy"\n',
    "rel-esc": '[compose]\nreleases_file = "{W}/rel-esc.toml"\n'
               '[schedule]\nstreams_file = "{W}/streams-empty.toml"\n',
    "streams-deep": '[schedule]\nstreams_file = "{W}/deep-arrays.toml"\n',
    "ks-big": '[compose]\nkickstart_dir = "{W}/ks-big"\n',
    "hosts-bad": '[web]\nallowed_hosts = ["evil.example:80"]\n',
    "hosts-slash": '[web]\nallowed_hosts = ["a/b"]\n',
}

MIRRORS = {  # world setups of the mirror tree: name -> callable(world)
    "stage-symlink": lambda w: ((w / "out/mirror/alt").mkdir(parents=True),
                                (w / "elsewhere").mkdir(),
                                (w / "out/mirror/alt/stage").symlink_to(w / "elsewhere")),
    "stage-file": lambda w: ((w / "out/mirror/alt").mkdir(parents=True),
                             (w / "out/mirror/alt/stage").write_text("x")),
    "alt-symlink": lambda w: ((w / "out/mirror").mkdir(parents=True),
                              (w / "out/mirror/alt").symlink_to(w / "elsewhere-missing")),
    "weekly-file": lambda w: ((w / "out/mirror/alt/cloud").mkdir(parents=True),
                              (w / "out/mirror/alt/cloud/weekly").write_text("x")),
    "latest-dir": lambda w: (w / "out/mirror/alt/cloud/weekly/19/latest").mkdir(parents=True),
    "latest-file": lambda w: ((w / "out/mirror/alt/cloud/weekly/19").mkdir(parents=True),
                              (w / "out/mirror/alt/cloud/weekly/19/latest").write_text("x")),
}

# Damaged compose records: name -> (file under work/, content).
DAMAGED = {
    "manifest-truncated": ("manifest.json", '{"steps": {"build:generic-x86_64": {'),
    "manifest-list": ("manifest.json", "[1, 2, 3]"),
    "manifest-steps-str": ("manifest.json", '{"steps": "x", "artifacts": [], "builds": {}}'),
    "manifest-artifact-field": ("manifest.json", '{"steps": {}, "artifacts": [{"nope": 1}], '
                                                 '"builds": {}}'),
    "manifest-artifact-int": ("manifest.json", '{"steps": {}, "artifacts": [1], "builds": {}}'),
    "manifest-deep": ("manifest.json", "[" * 100_000 + "]" * 100_000),
    "manifest-not-utf8": ("manifest.json", b"\xff\xfe{}"),
    "manifest-empty": ("manifest.json", ""),
    "config-deep": ("config.json", "{" + '"a": {' * 50_000 + "}" * 50_001),
    "plan-deep": ("plan.json", "[" * 100_000 + "]" * 100_000),
}


def _future(days: int) -> str:
    return (TODAY + dt.timedelta(days=days)).isoformat()


CASES = [
    # dates a compose id and file times cannot hold, or a weekly would pin `latest` with
    ("date-0001", [*PLAN[:4], "--date", "0001-01-01"], "is before 1970-01-01"),
    ("date-0999-compose", [*WEEKLY[:4], "--date", "0999-01-01", "--output", "{W}/out"],
     "is before 1970-01-01"),
    ("date-1969", [*BETA[:5], "--date", "1969-12-31", "--output", "{W}/out"], "before 1970"),
    ("date-2099", [*WEEKLY[:4], "--date", "2099-12-31", "--output", "{W}/out"],
     "--date 2099-12-31 is more than a day ahead"),
    ("date-9999", [*PLAN[:4], "--date", "9999-12-31"], "more than a day ahead"),
    ("date-in-2-days", [*WEEKLY[:4], "--date", _future(2), "--output", "{W}/out"],
     "--allow-future-date"),
    ("date-future-milestone", [*BETA[:5], "--date", _future(30), "--output", "{W}/out"],
     "more than a day ahead"),
    ("resume-allow-future", ["compose", "--resume", "{W}/nope", "--allow-future-date"],
     "ignore --allow-future-date"),
    # times and numbers past what datetime arithmetic takes
    ("schedule-at-9999", ["schedule", "--at", "9999-12-30T23:59", "--output", "{W}/out"],
     "fall after the year 9999"),
    ("schedule-at-9999-count", ["schedule", "--at", "9999-06-01T00:00", "--count", "100",
                                "--output", "{W}/out"], "after the year 9999"),
    ("schedule-at-0001", ["schedule", "--at", "0001-01-01T00:00"], "is before 1970"),
    ("prune-days-huge", ["ec2", "prune", "--days", "99999999999999999999"], "at most 36500"),
    ("schedule-at-1969", ["schedule", "--at", "1969-12-31T23:59"], "is before 1970"),
    ("prune-days-negative-huge", ["ec2", "prune", "--days=-99999999999999999999"],
     "at least 1 day"),
    ("prune-days-century", ["ec2", "prune", "--days", "36501"], "at most 36500 days"),
    # inputs that recurse or never end
    ("toml-deep-arrays", [*PLAN, "--config", "{W}/deep-arrays.toml"], "nested too deeply"),
    ("toml-deep-tables", [*PLAN, "--config", "{W}/deep-tables.toml"], "nested too deeply"),
    ("releases-deep", [*PLAN, "--releases", "{W}/deep-arrays.toml"], "nested too deeply"),
    ("releases-dev-zero", [*PLAN, "--releases", "/dev/zero"], "/dev/zero: larger than 16 MiB"),
    ("config-dev-zero", ["validate", "--config", "/dev/zero"], "too large for an input file"),
    ("config-dev-urandom", ["status", "--config", "/dev/urandom"], "too large"),
    ("streams-deep", [*PLAN, "--config", "{W}/cfg/streams-deep.toml"], "nested too deeply"),
    ("ks-too-big", ["validate", "--config", "{W}/cfg/ks-big.toml"], "too large for a kickstart"),
    ("ks-too-big-compose", [*WEEKLY, "--config", "{W}/cfg/ks-big.toml"], "too large"),
    ("config-big", [*WEEKLY, "--config", "{W}/big.toml"], "big.toml: larger than 16 MiB"),
    ("ks-self-include", ["validate", "--output", "{W}/out", "--config", "{W}/cfg/ks-self.toml"],
     "an include loop (fedora-cloud-base.ks -> fedora-cloud-base.ks)"),
    ("ks-loop-compose", [*WEEKLY, "--config", "{W}/cfg/ks-loop.toml"], "an include loop"),
    ("ks-loop-trigger", ["trigger", "--release", "19", "--milestone", "Beta", "--output",
                         "{W}/out", "--config", "{W}/cfg/ks-loop.toml"], None),
    # damaged records of a compose, on --resume
    *[(f"resume-{name}", ["compose", "--resume", "{W}/damaged-" + name], "damaged")
      for name in DAMAGED],
    # a store that is no database, unreachable, or needs a driver this host lacks
    *[(f"{cmd}-{db}", [cmd, "--output", "{W}/" + db], "cannot open the compose store")
      for cmd in ("status", "messages", "serve") for db in ("notdb", "textdb")],
    *[(f"{cmd}-pg-dead", [cmd, "--config", "{W}/cfg/pg-dead.toml"], "Connection refused")
      for cmd in ("status", "messages", "serve")],
    ("status-pg-nodriver", ["status", "--config", "{W}/cfg/pg-nodriver.toml"], "is not installed"),
    ("messages-flush-notdb", ["messages", "flush", "--output", "{W}/notdb"], None),
    # beat's state file, and the broker checked before the store is created
    ("beat-schedule-db-under-file", ["beat", "--schedule-db", "{W}/afile/x"],
     "--schedule-db {W}/afile/x: directory {W}/afile: is a file"),
    ("beat-schedule-db-under-passwd", ["beat", "--schedule-db", "/etc/passwd/x"], "/etc/passwd"),
    ("beat-schedule-db-not-dbm", ["beat", "--schedule-db", "{W}/beat-state"],
     "is not a beat state (dbm) file"),
    ("beat-schedule-db-dir", ["beat", "--schedule-db", "{W}/out"], "is a directory"),
    ("beat-dead-broker", ["beat", "--schedule-db", "{W}/out/celerybeat-schedule"],
     "cannot reach Redis"),
    ("trigger-dead-broker", ["trigger", "--release", "19", "--milestone", "Beta", "--output",
                             "{W}/out"], "cannot reach Redis"),
    # a mirror tree staging could not go through, found before the builds
    *[(f"compose-mirror-{m}", [*(BETA if "stage" in m else WEEKLY)], None) for m in MIRRORS],
    *[(f"validate-mirror-{m}", ["validate", "--output", "{W}/out"], None)
      for m in ("stage-symlink", "latest-dir", "alt-symlink")],
    ("trigger-mirror-stage-symlink", ["trigger", "--release", "19", "--milestone", "Beta",
                                      "--output", "{W}/out"], "is a symlink"),
    # files that are no kickstart, and control characters
    ("ks-shadow-validate", ["validate", "--output", "{W}/out", "--config", "{W}/cfg/shadow.toml"],
     "the line is not shown"),
    ("ks-shadow-compose", [*WEEKLY, "--config", "{W}/cfg/shadow.toml"], "the line is not shown"),
    ("ks-esc-validate", ["validate", "--output", "{W}/out", "--config", "{W}/cfg/ks-esc.toml"],
     None),
    ("ks-esc-compose", [*BETA, "--config", "{W}/cfg/ks-esc.toml"], "the line is not shown"),
    ("ks-badline-validate", ["validate", "--output", "{W}/out", "--config",
                             "{W}/cfg/ks-badline.toml"],
     "invalid kickstart for F19, F20: Unknown command: frobnicate"),
    ("desc-newline", [*PLAN, "--config", "{W}/cfg/desc-newline.toml"],
     "images.generic.description: contains a control character ('\\n')"),
    ("desc-esc", [*WEEKLY, "--config", "{W}/cfg/desc-esc.toml"], "contains a control character"),
    ("desc-del", [*PLAN, "--config", "{W}/cfg/desc-del.toml"], "('\\x7f')"),
    ("release-esc", [*PLAN, "--config", "{W}/cfg/rel-esc.toml"],
     "releases.19.install_tree: contains a control character ('\\x1b')"),
    ("status-notdb-json", ["status", "--json", "--output", "{W}/notdb"], "not a database"),
    ("compose-queue-latest-dir", [*WEEKLY, "--queue"], None),
    ("desc-c1", ["validate", "--config", "{W}/cfg/desc-c1.toml"], "contains a control character"),
    ("optional-unknown", [*PLAN, "--config", "{W}/cfg/optional-unknown.toml"],
     "unknown arch 'ppc64le'"),
    ("ks-dir-empty", [*PLAN, "--config", "{W}/cfg/ks-dir-empty.toml"],
     "compose.kickstart_dir: . holds none of the kickstarts"),
    ("hosts-port", ["serve", "--bind", "127.0.0.1:0", "--config", "{W}/cfg/hosts-bad.toml"],
     "web.allowed_hosts: 'evil.example:80' is not a host name"),
    ("hosts-slash", ["validate", "--config", "{W}/cfg/hosts-slash.toml"], "is not a host name"),
]


def hostile_count() -> int:
    return len(CASES)


@pytest.fixture(scope="module")
def compose_records(tmp_path_factory):
    """plan.json and config.json of a real compose, for the damaged-record worlds."""
    out = tmp_path_factory.mktemp("records")
    proc = subprocess.run([sys.executable, "-m", "rel_eng", *PLAN[:-1], str(out), "--json"],
                          capture_output=True, text=True, check=True)
    from rel_eng.config import load_config
    return {"plan.json": json.dumps(json.loads(proc.stdout)),
            "config.json": json.dumps(load_config().to_dict())}


def _make_world(world: Path, records: dict, case_id: str) -> None:
    (world / "out").mkdir(parents=True)
    for name, content in FILES.items():
        path = world / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (world / "cfg").mkdir()
    for name, text in CONFIGS.items():
        if text is not None:
            (world / "cfg" / f"{name}.toml").write_text(text.replace("{W}", str(world)))
    for name, (rel, content) in DAMAGED.items():
        work = world / f"damaged-{name}" / "work"
        work.mkdir(parents=True)
        for record, text in records.items():
            (work / record).write_text(text)
        (work / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
        (work.parent / "STATUS").write_text("STARTED\n")
    for name, setup in MIRRORS.items():
        if case_id.endswith(f"mirror-{name}"):
            setup(world)
    if case_id == "compose-queue-latest-dir":
        MIRRORS["latest-dir"](world)
    with open(world / "ks-big" / "fedora-cloud-base.ks", "wb") as fh:
        fh.truncate(17 * 1024 * 1024)  # sparse: costs nothing, reads as 17 MiB


def _run_case(case, world: Path, home: Path, records: dict) -> dict:
    cid, argv, fragment = case
    _make_world(world, records, cid)
    passwd = Path("/etc/passwd").stat().st_mtime_ns
    result = run_in_world(world, home, argv, fragment)
    result["passwd_same"] = Path("/etc/passwd").stat().st_mtime_ns == passwd
    shutil.rmtree(world / "out" / "mirror", ignore_errors=True)  # symlinks point outside
    return result


@pytest.fixture(scope="module")
def results(request, tmp_path_factory, compose_records):
    return run_selected(request, "test_more_hostile_input_is_refused",
                        tmp_path_factory.mktemp("hostile-more"),
                        lambda case, world, home: _run_case(case, world, home, compose_records))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_more_hostile_input_is_refused(case, results):
    r = results[case[0]]
    line = assert_refused_in_one_line(r)
    assert "internal error" not in r["stderr"]
    assert not any(ord(ch) < 32 or 0x7f <= ord(ch) <= 0x9f for ch in line), repr(line)
    assert r["passwd_same"]
    assert "hostile-secret" not in r["stderr"] and "owned" not in r["stderr"]


def test_the_more_hostile_set_is_counted():
    assert len({c[0] for c in CASES}) == len(CASES)
    assert len(CASES) >= 80, len(CASES)
