"""Every subcommand under hostile input: exactly one line on stderr, exit 2, nothing written.

Each case runs `rel-eng` in a subprocess inside a fresh world (an empty output dir, decoy files,
bad config files) and compares the world before and after. Worker, beat, trigger and the EC2
commands get a broker URL on a closed port, so a case that slipped through could not reach a
real broker.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rel_eng import paths
from tests.hostile_support import assert_refused_in_one_line, run_in_world, run_selected
from tests.tmpfs_ns import in_readonly_tmpfs

# Every subcommand with arguments that would otherwise be fine ({W} is the world dir).
BASE = {
    "plan": ["plan", "--release", "19", "--milestone", "Alpha", "--date", "2013-04-05",
             "--output", "{W}/out"],
    "compose": ["compose", "--release", "19", "--weekly", "--date", "2013-04-05",
                "--output", "{W}/out"],
    "validate": ["validate", "--output", "{W}/out"],
    "worker": ["worker", "--pool", "solo"],
    "ec2-publish": ["ec2", "publish", "{W}/out/Fedora-Cloud-19-20130405.0"],
    "ec2-prune": ["ec2", "prune", "--days", "30"],
    "status": ["status", "--output", "{W}/out"],
    "schedule": ["schedule", "--output", "{W}/out", "--at", "2013-04-05T00:00"],
    "trigger": ["trigger", "--release", "19", "--milestone", "Beta", "--output", "{W}/out"],
    "beat": ["beat"],
}
assert len(BASE) == 10  # the 9 modules of cli.COMMAND_MODULES; ec2 has two actions

RELEASE_19 = ('[releases.19]\nversion = "19"\nfedora_version = 19\n'
              'install_tree = "http://127.0.0.1:9/$arch/os/"\n')
STREAM = '[[streams]]\nname = "{name}"\nrelease = "19"\ncron = "{cron}"\n'

# Files of the world: name -> text (bytes for raw content).
FILES = {
    "afile": "not a directory\n",
    "notutf8.toml": b"\xff\xfe[compose]\n",
    "rel-traversal.toml": '[releases."../19"]\nversion = "19"\nfedora_version = 19\n'
                          'install_tree = "http://127.0.0.1:9/"\n',
    "rel-version.toml": RELEASE_19.replace('version = "19"\nfedora', 'version = "1/9"\nfedora'),
    "rel-datetime.toml": RELEASE_19 + "milestones = { Alpha = 2013-04-05T00:00:00 }\n",
    "rel-fedora-huge.toml": RELEASE_19.replace("fedora_version = 19", "fedora_version = 10000000"),
    "rel-repos-int.toml": RELEASE_19 + "repos = [1]\n",
    "rel-key-hidden.toml": RELEASE_19.replace("[releases.19]", '[releases.".hidden"]'),
    "streams-never.toml": STREAM.format(name="f19", cron="0 0 30 2 *"),
    "streams-apr31.toml": STREAM.format(name="f19", cron="0 0 31 4 *"),
    "streams-name.toml": STREAM.format(name="../up", cron="0 6 * * 1"),
    "streams-name-nul.toml": STREAM.format(name="a\\u0000b", cron="0 6 * * 1"),
    "ks/fedora-cloud-base.ks": "%include /etc/shadow\n",
    # the shipped EC2 kickstart, which includes the (hostile) base
    "ks/fedora-cloud-base-ec2.ks": (paths.KICKSTART_DIR / "fedora-cloud-base-ec2.ks").read_text(),
    "compose-damaged/work/plan.json": '{"compose_id": "x", "images": [',
    "compose-damaged/work/config.json": "{}",
    "compose-wrongtype/work/plan.json": "[1, 2, 3]",
    "compose-wrongtype/work/config.json": "{}",
    "badpass": "badpass-secret-5d2e\n",
    "streams-empty.toml": "",
}

# Bad config files: name -> (TOML, a fragment of the one line that must name the problem).
CONFIGS = {
    "signing-int": ("signing = 5\n", "signing: expected a table, got int 5"),
    "signing-key-int": ("[signing]\nkey = 5\n", "signing.key: expected str, got int 5"),
    "signing-key-table": ("[signing.key]\nid = 1\n", "signing.key: expected str, got dict"),
    "arches-empty": ("[compose]\narches = []\n", "compose.arches: must name at least one arch"),
    "arches-dup": ('[compose]\narches = ["x86_64", "x86_64"]\n', "'x86_64' is listed twice"),
    "arches-int": ("[compose]\narches = [1]\n", "compose.arches: item 0: expected str, got int"),
    "arches-str": ('[compose]\narches = "x86_64"\n', "compose.arches: expected list, got str"),
    "short-escape": ('[compose]\nshort = "../evil"\n', "compose.short: '../evil' may hold only"),
    "short-slash": ('[compose]\nshort = "a/b"\n', "compose.short: 'a/b' may hold only"),
    "short-nul": ('[compose]\nshort = "a\\u0000b"\n', "compose.short: contains a NUL"),
    "variant-hidden": ('[compose]\nvariant = ".hidden"\n', "compose.variant: '.hidden'"),
    "variant-empty": ('[compose]\nvariant = ""\n', "compose.variant: must not be empty"),
    "image-name-slash": ('[images.generic]\nname = "a/b"\n', "images.generic.name: 'a/b'"),
    "image-name-dotdot": ('[images.generic]\nname = ".."\n', "images.generic.name: '..'"),
    "image-key-dotdot": ('[images."x..y"]\nname = "X"\nsubvariant = "S"\n'
                         'kickstart = "fedora-cloud-base.ks"\n', "images.x..y: 'x..y'"),
    "image-subvariant-slash": ('[images.generic]\nsubvariant = "a/b"\n',
                               "images.generic.subvariant: 'a/b'"),
    "image-names-dup": ('[images.generic]\nname = "X"\n[images.ec2]\nname = "X"\n',
                        "images.ec2.name: 'X' is also the name of images.generic"),
    "images-str": ('images = "x"\n', "images: expected [images.<key>] tables, got str"),
    "images-empty": ("[images]\n", "images: defines no image"),
    "ks-escape": ('[images.generic]\nkickstart = "../../../../../../etc/passwd"\n',
                  "images.generic.kickstart: '../../../../../../etc/passwd' is outside"),
    "ks-absolute": ('[images.generic]\nkickstart = "/etc/passwd"\n', "is outside the kickstart dir"),
    "ks-is-dir": ('[images.generic]\nkickstart = "."\n', "images.generic.kickstart:"),
    "disk-huge": ("[compose]\ndisk_size_gib = 99999999999999999999999\n", "is too large"),
    "retention-huge": ("[compose]\nweekly_retention = 9223372036854775808\n", "is too large"),
    "xz-float": ("[compose]\nxz_preset = 6.5\n", "compose.xz_preset: expected int, got float"),
    "compress-str": ('[compose]\nqcow2_compress = "yes"\n', "compose.qcow2_compress: replaced by qcow2_compression"),
    "compression-bad": ('[compose]\nqcow2_compression = "lz4"\n', "compose.qcow2_compression: unknown compression"),
    "boot-gate-bad": ('[boot_test]\ngate = "sometimes"\n', "boot_test.gate: must be one of"),
    "boot-parallel-0": ("[boot_test]\nparallel = 0\n", "boot_test.parallel: must be"),
    "web-bind-bad": ('[web]\nbind = "nohost"\n', "web.bind: expected HOST:PORT"),
    "web-poll-tiny": ("[web]\npoll_ms = 5\n", "web.poll_ms: must be 100..600000, got 5"),
    "compose-list": ("compose = [1, 2]\n", "compose: expected a table, got list"),
    "short-table": ("[compose.short]\nx = 1\n", "compose.short: expected str, got dict"),
    "unknown-key": ('[compose]\nshrot = "x"\n', "compose.shrot: unknown key"),
    "unknown-table": ("[bogus]\n", "bogus: unknown key"),
    "bad-toml": ("[compose\n", "invalid TOML"),
    "tick-str": ('[schedule]\ntick_s = "fast"\n', "schedule.tick_s: expected int, got str"),
    "catchup-huge": ("[schedule]\ncatch_up_hours = 100000000000000000000\n", "too large"),
    "gpg-home-missing": ('[signing]\nkey = "x@example.org"\ngpg_home = "{W}/nope"\n',
                         "signing.gpg_home: {W}/nope is not a directory"),
    "passphrase-dir": ('[signing]\nkey = "x@example.org"\npassphrase_file = "{W}"\n',
                       "signing.passphrase_file: {W} is not a file"),
    "kickstart-dir-file": ('[compose]\nkickstart_dir = "{W}/afile"\n',
                           "compose.kickstart_dir: {W}/afile is not a directory"),
    "ks-include-shadow": ('[compose]\nkickstart_dir = "{W}/ks"\n', "%include /etc/shadow: outside"),
    "releases-dir": ('[compose]\nreleases_file = "{W}"\n', "{W}: is a directory"),
    "releases-missing": ('[compose]\nreleases_file = "{W}/nope.toml"\n', "file not found"),
    "releases-traversal": ('[compose]\nreleases_file = "{W}/rel-traversal.toml"\n[schedule]\nstreams_file = "{W}/streams-empty.toml"\n',
                           "releases.../19: '../19' may hold only"),
    "release-hidden": ('[compose]\nreleases_file = "{W}/rel-key-hidden.toml"\n[schedule]\nstreams_file = "{W}/streams-empty.toml"\n',
                       "releases..hidden: '.hidden'"),
    "release-version": ('[compose]\nreleases_file = "{W}/rel-version.toml"\n[schedule]\nstreams_file = "{W}/streams-empty.toml"\n',
                        "releases.19.version: '1/9' may hold only"),
    "release-datetime": ('[compose]\nreleases_file = "{W}/rel-datetime.toml"\n[schedule]\nstreams_file = "{W}/streams-empty.toml"\n',
                         "releases.19.milestones.Alpha: expected a date (YYYY-MM-DD), got datetime"),
    "release-fedora-huge": ('[compose]\nreleases_file = "{W}/rel-fedora-huge.toml"\n[schedule]\nstreams_file = "{W}/streams-empty.toml"\n',
                            "releases.19.fedora_version: is required and must be 19..999"),
    "release-repos-int": ('[compose]\nreleases_file = "{W}/rel-repos-int.toml"\n[schedule]\nstreams_file = "{W}/streams-empty.toml"\n',
                          "releases.19.repos: item 0: expected str"),
    "streams-never": ('[schedule]\nstreams_file = "{W}/streams-never.toml"\n',
                      "cron expression '0 0 30 2 *' never fires"),
    "streams-apr31": ('[schedule]\nstreams_file = "{W}/streams-apr31.toml"\n', "never fires"),
    "streams-name": ('[schedule]\nstreams_file = "{W}/streams-name.toml"\n',
                     "streams[0].name: '../up' may hold only"),
    "streams-name-nul": ('[schedule]\nstreams_file = "{W}/streams-name-nul.toml"\n',
                         "streams[0].name:"),
    "streams-dir": ('[schedule]\nstreams_file = "{W}"\n', "{W}: is a directory"),
    "store-url-int": ("[store]\nurl = 5\n", "store.url: expected str"),
    "celery-queues-int": ("[celery]\nqueues = [1]\n", "celery.queues"),
}

# Config files every subcommand is run with; the rest go to validate and compose only.
EVERY_COMMAND = ["signing-int", "arches-int", "short-escape", "ks-escape", "disk-huge",
                 "release-datetime", "streams-never"]
# Files that are no config: (--config value, fragment).
NOT_CONFIGS = {
    "config-dir": ("{W}", "{W}: is a directory, expected a TOML file"),
    "config-missing": ("{W}/nope.toml", "{W}/nope.toml: file not found"),
    "config-not-utf8": ("{W}/notutf8.toml", "not UTF-8 text"),
    "config-loop": ("{W}/loop", "{W}/loop: cannot read: Too many levels of symbolic links"),
    "config-unreadable": ("/proc/self/mem", "/proc/self/mem: cannot read: Input/output error"),
}

GPG_KEY = "hostile-test@example.org"

# Flag and argument cases: (id, argv, fragment). {G} is a gpg home holding GPG_KEY, {E} an
# empty one.
FLAG_CASES = [
    ("no-command", [], "the following arguments are required: COMMAND"),
    ("unknown-command", ["frobnicate"], "invalid choice: 'frobnicate'"),
    ("unknown-flag", [*BASE["plan"], "--bogus"], "unrecognized arguments: --bogus"),
    ("plan-no-release", ["plan", "--weekly"], "--release"),
    ("plan-bad-date", [*BASE["plan"][:5], "--date", "2013-02-30"], "'2013-02-30' is not a date"),
    ("plan-date-huge", [*BASE["plan"][:5], "--date", "99999-01-01"], "is not a date"),
    ("plan-release-traversal", ["plan", "--release", "../19", "--weekly"], "unknown release '../19'"),
    ("plan-release-empty", ["plan", "--release", "", "--weekly"], "unknown release ''"),
    ("plan-milestone-bad", ["plan", "--release", "19", "--milestone", "Gamma"], "invalid choice: 'Gamma'"),
    ("plan-weekly-and-milestone", ["plan", "--release", "19", "--weekly", "--milestone", "Alpha"],
     "not allowed with argument"),
    ("plan-builder-bad", [*BASE["plan"], "--builder", "nope"], "unknown builder 'nope'"),
    ("plan-profile-without-koji", [*BASE["plan"], "--koji-profile", "x"],
     "--koji-profile applies only to the koji builder"),
    ("plan-output-file", [*BASE["plan"][:-1], "{W}/afile"], None),
    ("plan-rawhide-milestone", ["plan", "--release", "rawhide", "--milestone", "Alpha"], "rawhide"),
    ("compose-weekly-label", [*BASE["compose"], "--label", "Beta-1.1"],
     "--label names a milestone respin; a --weekly drop has none"),
    ("compose-label-traversal", ["compose", "--release", "19", "--milestone", "Beta",
                                 "--output", "{W}/out", "--label", "../../x"], "label '../../x'"),
    ("compose-label-other-milestone", ["compose", "--release", "19", "--milestone", "Beta",
                                       "--output", "{W}/out", "--label", "Alpha-1.1"],
     "does not fit milestone Beta"),
    ("compose-output-file", [*BASE["compose"][:-1], "{W}/afile"],
     "--output {W}/afile: is a file, not a directory"),
    ("compose-output-under-file", [*BASE["compose"][:-1], "{W}/afile/out"],
     "--output {W}/afile/out: {W}/afile is a file"),
    ("compose-output-readonly", [*BASE["compose"][:-1], "{W}/ro/out"], "is not writable"),
    ("compose-mirror-file", [*BASE["compose"], "--mirror", "{W}/afile"],
     "--mirror {W}/afile: is a file, not a directory"),
    ("compose-mirror-readonly", [*BASE["compose"], "--mirror", "{W}/ro/mirror"], "is not writable"),
    ("compose-koji-no-profile", [*BASE["compose"], "--builder", "koji", "--koji-profile", "nosuch"],
     "koji profile 'nosuch'"),
    ("compose-key-missing", [*BASE["compose"], "--config", "{W}/cfg-key-missing.toml"],
     f"signing.key: gpg has no secret key '{GPG_KEY}'"),
    ("compose-wrong-passphrase", [*BASE["compose"], "--config", "{W}/cfg-wrong-pass.toml"],
     "signing.passphrase_file: gpg cannot unlock key"),
    ("compose-no-passphrase", [*BASE["compose"], "--config", "{W}/cfg-no-pass.toml"],
     f"signing.key: gpg cannot sign with '{GPG_KEY}'"),
    ("compose-no-release", ["compose", "--weekly", "--output", "{W}/out"], "--release and one of"),
    ("resume-missing", ["compose", "--resume", "{W}/nope"], "is not a compose directory"),
    ("resume-damaged", ["compose", "--resume", "{W}/compose-damaged"], "damaged"),
    ("resume-wrong-type", ["compose", "--resume", "{W}/compose-wrongtype"], "damaged"),
    ("resume-with-release", ["compose", "--resume", "{W}/compose-damaged", "--release", "19"],
     "--resume continues the compose as it was planned; it would ignore --release"),
    ("resume-with-milestone", ["compose", "--resume", "x", "--milestone", "Beta"], "ignore --milestone"),
    ("resume-with-label", ["compose", "--resume", "x", "--label", "Beta-1.2"], "ignore --label"),
    ("resume-with-weekly", ["compose", "--resume", "x", "--weekly"], "ignore --weekly"),
    ("resume-with-config", ["compose", "--resume", "x", "--config", "{W}/afile"],
     "to change the config, start a new compose"),
    ("resume-with-queue", ["compose", "--resume", "x", "--queue"], "cannot be combined with --queue"),
    ("validate-output-file", ["validate", "--output", "{W}/afile"], "--output {W}/afile: is a file"),
    ("validate-mirror-file", ["validate", "--output", "{W}/out", "--mirror", "{W}/afile"],
     "--mirror {W}/afile: is a file"),
    ("validate-mirror-readonly", ["validate", "--output", "{W}/out", "--mirror", "{W}/ro/m"],
     "is not writable"),
    ("validate-key-missing", ["validate", "--output", "{W}/out", "--config", "{W}/cfg-key-missing.toml"],
     "gpg has no secret key"),
    ("validate-wrong-passphrase", ["validate", "--output", "{W}/out", "--config",
                                   "{W}/cfg-wrong-pass.toml"], "gpg cannot unlock key"),
    ("validate-koji-no-profile", ["validate", "--output", "{W}/out", "--config", "{W}/cfg-koji.toml"],
     "koji profile 'nosuch-profile'"),
    ("worker-queues-empty", ["worker", "--queues", ""], "--queues '' names no queue"),
    ("worker-queues-commas", ["worker", "--queues", ",, ,"], "names no queue"),
    ("worker-queues-unknown", ["worker", "--queues", "nope"], "nope"),
    ("worker-concurrency-zero", ["worker", "--concurrency", "0"], "--concurrency must be 1..256"),
    ("worker-concurrency-huge", ["worker", "--concurrency", "100000000000000000000"], "--concurrency"),
    ("worker-concurrency-text", ["worker", "--concurrency", "two"], "invalid int value: 'two'"),
    ("worker-pool-bad", ["worker", "--pool", "gevent"], "invalid choice: 'gevent'"),
    ("worker-loglevel-bad", ["worker", "--loglevel", "LOUD"], "--loglevel 'LOUD' is not a log level"),
    ("worker-name-empty", ["worker", "--name", ""], "--name '' must be a non-empty node name"),
    ("ec2-publish-missing", ["ec2", "publish", "{W}/nope"], "{W}/nope"),
    ("ec2-publish-file", ["ec2", "publish", "{W}/afile"], "{W}/afile"),
    ("ec2-publish-damaged", ["ec2", "publish", "{W}/compose-damaged"], "damaged"),
    ("ec2-publish-regions-empty", ["ec2", "publish", "{W}/out/x", "--regions", ","],
     "expected a comma-separated list of regions"),
    ("ec2-no-action", ["ec2"], "ACTION"),
    ("ec2-prune-days-zero", ["ec2", "prune", "--days", "0"], "must be at least 1 day"),
    ("ec2-prune-days-text", ["ec2", "prune", "--days", "ten"], "'ten' is not a whole number of days"),
    ("status-limit-zero", [*BASE["status"], "--limit", "0"], "--limit must be 1..10000"),
    ("status-limit-huge", [*BASE["status"], "--limit", "100000000000000000000000"], "--limit"),
    ("status-no-store", BASE["status"], None),
    ("status-unknown-compose", [*BASE["status"], "Fedora-Cloud-19-20130405.0"], None),
    ("status-output-file", ["status", "--output", "{W}/afile"], None),
    ("schedule-at-bad", ["schedule", "--at", "yesterday"], "'yesterday' is not a time"),
    ("schedule-at-month13", ["schedule", "--at", "2013-13-01T00:00"], "is not a time"),
    ("schedule-count-zero", [*BASE["schedule"], "--count", "0"], "--count must be 1..100"),
    ("schedule-count-huge", [*BASE["schedule"], "--count", "1000"], "--count must be 1..100"),
    ("trigger-unknown-release", ["trigger", "--release", "42", "--milestone", "Beta", "--output",
                                 "{W}/out"], "unknown release '42'"),
    ("trigger-traversal-release", ["trigger", "--release", "../19", "--milestone", "Beta",
                                   "--output", "{W}/out"], "unknown release '../19'"),
    ("trigger-milestone-bad", ["trigger", "--release", "19", "--milestone", "Gamma"], "invalid choice"),
    ("trigger-output-file", ["trigger", "--release", "19", "--milestone", "Beta", "--output",
                             "{W}/afile"], "--output {W}/afile: is a file"),
    ("beat-loglevel-bad", ["beat", "--loglevel", "LOUD"], "--loglevel 'LOUD' is not a log level"),
    # the commands of the boot gate, verify, the bus and the dashboard
    ("verify-missing", ["verify", "{W}/nope"], "no such directory"),
    ("verify-file", ["verify", "{W}/afile"], "not a directory"),
    ("verify-not-a-compose", ["verify", "{W}"], "not a compose dir or a staged drop"),
    ("release-unknown", ["release", "Beta-1.1", "--output", "{W}/out"], "no compose 'Beta-1.1'"),
    ("release-traversal", ["release", "../../etc", "--output", "{W}/out"], "no compose '../../etc'"),
    ("release-two-acts", ["release", "Beta-1.1", "--open", "--withdraw", "--output", "{W}/out"],
     "exclude each other"),
    ("release-milestone-bad", ["release", "Beta-1.1", "--milestone", "Gamma"], "invalid choice"),
    ("boot-test-missing", ["boot-test", "{W}/nope.qcow2"], "no such file"),
    ("boot-test-not-a-disk", ["boot-test", "{W}/afile"], "not a disk"),
    ("boot-test-unknown-check", ["boot-test", "--checks", "nosuch", "{W}/afile"], "unknown check nosuch"),
    ("messages-unknown-topic", ["messages", "--topic", "nosuch.topic", "--output", "{W}/out"],
     "unknown topic 'nosuch.topic'"),
    ("messages-bad-flag", ["messages", "flush", "--bogus"], "unrecognized arguments"),
    ("consume-bad-config", ["consume", "--config", "{W}/afile"], "invalid TOML"),
    ("serve-bad-port", ["serve", "--bind", "127.0.0.1:99999"], "is not a number 0..65535"),
    ("serve-bad-bind", ["serve", "--bind", "nohost"], "expected HOST:PORT"),
]


def _cases() -> list[tuple[str, list[str], str | None]]:
    cases = list(FLAG_CASES)
    for name, (_, fragment) in CONFIGS.items():
        commands = BASE if name in EVERY_COMMAND else ("validate", "compose")
        for cmd in commands:
            cases.append((f"{cmd}:{name}", [*BASE[cmd], "--config", f"{{W}}/cfg/{name}.toml"], fragment))
    for name, (value, fragment) in NOT_CONFIGS.items():
        for cmd in (BASE if name in ("config-dir", "config-loop") else ("validate", "compose")):
            cases.append((f"{cmd}:{name}", [*BASE[cmd], "--config", value], fragment))
    return cases


CASES = _cases()


def hostile_count() -> int:
    return len(CASES)


@pytest.fixture(scope="module")
def gpg_homes(tmp_path_factory):
    """{G}: a home with a passphrase-protected GPG_KEY; {E}: an empty home. The agent is killed
    after key generation so no passphrase stays cached."""
    base = tmp_path_factory.mktemp("gnupg")
    full, empty = base / "full", base / "empty"
    for home in (full, empty):
        home.mkdir(mode=0o700)
    pp = base / "right"
    pp.write_text("right-passphrase-1b7e\n")
    subprocess.run(["gpg", "--homedir", str(full), "--batch", "--pinentry-mode", "loopback",
                    "--passphrase-file", str(pp), "--quick-gen-key", GPG_KEY, "ed25519", "sign",
                    "never"], check=True, capture_output=True)
    subprocess.run(["gpgconf", "--homedir", str(full), "--kill", "all"], capture_output=True)
    yield {"G": str(full), "E": str(empty)}
    for home in (full, empty):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)


def _make_world(world: Path, homes: dict) -> None:
    (world / "out").mkdir(parents=True)
    for name, content in FILES.items():
        path = world / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    (world / "loop").symlink_to("loop")
    (world / "cfg").mkdir()
    for name, (text, _) in CONFIGS.items():
        (world / "cfg" / f"{name}.toml").write_text(text.replace("{W}", str(world)))
    signing = '[signing]\nkey = "{key}"\ngpg_home = "{home}"\n'
    (world / "cfg-key-missing.toml").write_text(signing.format(key=GPG_KEY, home=homes["E"]))
    (world / "cfg-wrong-pass.toml").write_text(
        signing.format(key=GPG_KEY, home=homes["G"]) + f'passphrase_file = "{world}/badpass"\n')
    (world / "cfg-no-pass.toml").write_text(signing.format(key=GPG_KEY, home=homes["G"]))
    (world / "cfg-koji.toml").write_text('[compose]\nbuilder = "koji"\n[koji]\nprofile = "nosuch-profile"\n'
                                         f'config_file = "{world}/koji.conf"\n')
    (world / "ro").mkdir()


def _run_case(case, world: Path, home: Path, homes: dict) -> dict:
    _, argv, fragment = case
    _make_world(world, homes)
    readonly = any("{W}/ro" in a for a in argv)
    # `ro` is a read-only tmpfs in a namespace of the command's own
    wrap = (lambda cmd: in_readonly_tmpfs(world / "ro", cmd)) if readonly else None
    return run_in_world(world, home, argv, fragment, drop_env=("REL_ENG_", "AWS_", "GNUPG"),
                        env_extra={"GNUPGHOME": homes["E"]}, wrap=wrap)


@pytest.fixture(scope="module")
def results(request, tmp_path_factory, gpg_homes):
    """Run the selected cases three at a time (each in its own world)."""
    return run_selected(request, "test_hostile_input_is_refused",
                        tmp_path_factory.mktemp("hostile"),
                        lambda case, world, home: _run_case(case, world, home, gpg_homes))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_refused(case, results):
    r = results[case[0]]
    assert_refused_in_one_line(r)
    assert list(Path(r["world"], "out").iterdir()) == []
    assert "right-passphrase" not in r["stderr"] and "badpass-secret" not in r["stderr"]


def test_the_hostile_set_covers_every_subcommand():
    from rel_eng.cli import COMMAND_MODULES

    commands = {c[1][0] for c in CASES if c[1]}
    # module names use "_" where the command has "-" (boot_test -> boot-test)
    assert {m.rsplit(".", 1)[1].replace("_", "-") for m in COMMAND_MODULES} <= commands
    assert len(CASES) >= 150, len(CASES)
