"""URL passwords never reach a file, a log or the terminal.

Config refuses them in every URL it holds (one line, exit 2, nothing written); the broker URL
of the environment, the one allowed way, is used at runtime and redacted wherever it is shown.
Each password carries one of the characters that break naive URL parsing (`/`, `@`, `:`, `+`),
raw and percent-encoded.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import write  # noqa: E402
from distributed_support import RedisServer, Worker, wait_for  # noqa: E402

from rel_eng import redact  # noqa: E402
from rel_eng.config import load_config  # noqa: E402
from rel_eng.errors import ConfigError  # noqa: E402

# One password per troublesome character, written raw and percent-encoded.
RAW = {"slash": "sl/ash9Q", "at": "a@t9Qzz", "colon": "co:lon9Q", "plus": "pl+us9Q"}
PASSWORDS = [*RAW.values(), *(quote(p, safe="") for p in RAW.values())]
IDS = [*RAW, *(f"{k}-encoded" for k in RAW)]


def forms(password: str) -> set[str]:
    """Every spelling of a password that would betray it: as given, decoded and encoded."""
    from urllib.parse import unquote

    plain = unquote(password)
    return {password, plain, quote(plain, safe=""), quote(plain)}


@pytest.mark.parametrize("password", PASSWORDS, ids=IDS)
@pytest.mark.parametrize("template, shown", [
    ("redis://:{}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("postgresql://releng:{}@db.example.org/releng", "postgresql://releng:***@db.example.org/releng"),
    ("git+https://me:{}@pagure.io/ks.git#f19", "git+https://me:***@pagure.io/ks.git#f19"),
])
def test_redact_hides_the_whole_password(password, template, shown):
    url = template.format(password)
    assert redact.password_of(url) == password
    assert redact.redact(url) == shown
    # Inside a message, a repr and JSON, with an other URL after it that keeps its own parts.
    text = f"cannot reach {url}: refused; see {json.dumps([url])} and https://h:8443/x@"
    clean = redact.redact(text)
    assert clean == f"cannot reach {shown}: refused; see {json.dumps([shown])} and https://h:***@"
    assert not any(f in clean for f in forms(password))


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "postgresql://releng@db/releng",
                                 "https://h.example.org:8443/a", "sqlite:////srv/x.db",
                                 "redis://:@127.0.0.1/0", "plain text"])
def test_urls_without_password_are_left_alone(url):
    assert redact.password_of(url) == ""
    assert redact.redact(url) == url


def test_an_ambiguous_url_errs_on_the_side_of_hiding():
    # host:port/path@x reads like user:pass/word@host: hiding a path is safe, leaking is not.
    assert redact.redact("https://h:8443/a@b") == "https://h:***@b"


RELEASE = """[releases.19]
version = "19"
fedora_version = 19
install_tree = "{tree}"
repos = ["{repo}"]
milestones = {{ Beta = 2013-05-28 }}

[releases.rawhide]
version = "Rawhide"
fedora_version = 20
install_tree = "https://dl.example.org/rawhide/$arch/os/"
"""
TREE = "https://dl.example.org/19/$arch/os/"


def _with_secret(where: str, url: str) -> tuple[str, str, str]:
    """(config text, releases text, the key named in the problem)."""
    config, tree, repo = "", TREE, TREE
    if where == "install_tree":
        tree = url
    elif where == "repos":
        repo = url
    else:
        table, key = where.split(".")
        config = f'[{table}]\n{key} = "{url}"\n'
    key = {"install_tree": "releases.19.install_tree", "repos": "releases.19.repos[0]"}.get(where, where)
    return config, RELEASE.format(tree=tree, repo=repo), key


URL_KEYS = {
    "store.url": "postgresql://releng:{}@db.example.org/releng",
    "celery.broker_url": "redis://:{}@127.0.0.1:6379/0",
    "celery.result_backend": "redis://:{}@127.0.0.1:6379/1",
    "koji.ksurl": "git+https://me:{}@pagure.io/fedora-kickstarts.git#f19",
    "install_tree": "https://me:{}@dl.example.org/19/$arch/os/",
    "repos": "https://me:{}@dl.example.org/19/Everything/$arch/os/",
}


@pytest.mark.parametrize("password", PASSWORDS, ids=IDS)
@pytest.mark.parametrize("where", URL_KEYS)
def test_config_refuses_a_password_in_any_url(tmp_path, where, password):
    config, releases, key = _with_secret(where, URL_KEYS[where].format(password))
    cfg = write(tmp_path / "rel-eng.toml", config)
    rel = write(tmp_path / "releases.toml", releases)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, rel)
    [problem] = err.value.problems
    source = rel if key.startswith("releases.") else cfg
    assert problem.startswith(f"{source}: {key}: '")
    assert "***" in problem and "holds a password" in problem
    assert not any(f in problem for f in forms(password))


def test_cli_refuses_a_password_in_config_with_one_line_and_writes_nothing(tmp_path):
    password = RAW["at"]
    out = tmp_path / "out"
    cfg = write(tmp_path / "rel-eng.toml",
                f'[celery]\nbroker_url = "redis://:{quote(password, safe="")}@127.0.0.1:1/0"\n')
    for argv in (["validate"], ["plan", "--json", "--release", "19", "--milestone", "Beta"],
                 ["compose", "--release", "19", "--milestone", "Beta", "--output", str(out)],
                 ["compose", "--queue", "--release", "19", "--milestone", "Beta",
                  "--output", str(out)],
                 ["worker"], ["status", "--output", str(out)]):
        proc = _rel_eng(*argv, "--config", str(cfg))
        assert proc.returncode == 2, (argv, proc.stderr)
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"rel-eng: error: {cfg}: celery.broker_url: "
                               "'redis://:***@127.0.0.1:1/0' holds a password"), argv
        assert not any(f in line for f in forms(password)), (argv, line)
        if argv[0] in ("validate", "worker"):  # the traceback too (one startup is ~1 s)
            debug = _rel_eng("--debug", *argv, "--config", str(cfg))
            shown = debug.stdout + debug.stderr
            assert "Traceback" in shown and "'redis://:***@127.0.0.1:1/0' holds a password" in shown
            assert not any(f in shown for f in forms(password)), (argv, shown)
    assert not out.exists()


def test_log_records_and_tracebacks_are_redacted(tmp_path):
    password = RAW["slash"] + RAW["at"]
    url = f"redis://u:{password}@127.0.0.1:6379/0"
    redact.install()
    redact.install()  # twice is once
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("rel_eng.test_secrets")
    log.addHandler(handler)
    try:
        log.warning("broker %s down", url)
        log.warning(f"broker {url} down")
        try:
            raise ConnectionError(f"Error connecting to {url}")
        except ConnectionError:
            log.exception("lost %r", {"broker": url})
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("redis://u:***@127.0.0.1:6379/0") == 4, text
    assert "Traceback" in text and password not in text
    # An uncaught traceback (what --debug shows) goes through the same redaction.
    err = io.StringIO()
    real, sys.stderr = sys.stderr, err
    try:
        try:
            raise RuntimeError(url)
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.stderr = real
    assert "RuntimeError: redis://u:***@127.0.0.1:6379/0" in err.getvalue()
    assert password not in err.getvalue()


def _rel_eng(*args, env: dict | None = None, timeout: float = 300):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("REL_ENG_BROKER_URL", "REL_ENG_RESULT_BACKEND")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "rel_eng", *args], capture_output=True,
                          text=True, env=environ, timeout=timeout)


def _leaks(root: Path, texts: list[str], password: str) -> list[str]:
    """Every file under root and every captured text that holds a form of the password."""
    found = [f"output {i}" for i, t in enumerate(texts) if any(f in t for f in forms(password))]
    needles = re.compile(b"|".join(re.escape(f.encode()) for f in forms(password)))
    # Every file but the disk images, whose bytes come from the kickstart and the builder.
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()
             and p.stat().st_size < 16 << 20]
    assert len(files) > 20, files  # the compose's metadata, work files, logs, the store, the drop
    found += [str(p) for p in files if needles.search(p.read_bytes())]
    return found


def test_broker_password_from_environment_reaches_no_file_log_or_output(tmp_path):
    """A compose queued with `rel-eng compose --queue`, built by a real worker on a Redis that
    requires the password, then status, validate and failures with --debug: the password
    (given the allowed way, REL_ENG_BROKER_URL) shows up nowhere."""
    password = "".join(RAW.values())  # all four characters at once: one compose is slow
    server = RedisServer(tmp_path / "redis", password=password).start()
    env = {"REL_ENG_BROKER_URL": server.secret_url}
    out, logs = tmp_path / "out", tmp_path / "logs"
    # The config names the broker without the password: the environment supplies it.
    cfg = write(tmp_path / "rel-eng.toml",
                f'[compose]\ndisk_size_gib = 1\n\n[celery]\nbroker_url = "{server.url}"\n'
                "visibility_timeout = 60\nretry_backoff = 1\nretry_backoff_max = 4\n")
    worker = Worker("secret", cfg, logs, env=env)
    texts = []
    try:
        worker.start()
        queued = _rel_eng("--debug", "compose", "--queue", "--config", str(cfg), "--release",
                          "19", "--milestone", "Beta", "--date", "2013-05-28",
                          "--output", str(out), env=env)
        texts += [queued.stdout, queued.stderr]
        assert queued.returncode == 0, queued.stderr
        topdir = Path(queued.stdout.split()[2])
        wait_for(lambda: (topdir / "STATUS").read_text().strip() in ("FINISHED", "DOOMED"),
                 240, f"{topdir} to end", interval=0.5)
        assert (topdir / "STATUS").read_text() == "FINISHED\n", worker.log.read_text()[-3000:]
        for argv in (["status", "--output", str(out), "--json"],
                     ["status", "--output", str(out), topdir.name],
                     ["validate", "--config", str(cfg)]):
            proc = _rel_eng("--debug", *argv, env=env)
            texts += [proc.stdout, proc.stderr]
            assert proc.returncode == 0, (argv, proc.stderr)
        # Failures print the URL: a wrong port (unreachable) and a wrong password (refused).
        wrong = {"REL_ENG_BROKER_URL": server.secret_url.replace(str(server.port), "1")}
        for bad in (wrong, {"REL_ENG_BROKER_URL": server.secret_url.replace(":%s@" % quote(
                password, safe=""), ":%s@" % quote(password[::-1], safe=""))}):
            for argv in (["validate", "--config", str(cfg)],
                         ["compose", "--queue", "--config", str(cfg), "--release", "19",
                          "--milestone", "Beta", "--date", "2013-05-28", "--output", str(out)]):
                proc = _rel_eng("--debug", *argv, env=bad)
                texts += [proc.stdout, proc.stderr]
                assert proc.returncode != 0, (argv, proc.stdout)
                assert "redis://:***@127.0.0.1:" in proc.stdout + proc.stderr, proc.stderr
    finally:
        worker.stop()
        server.stop()
    assert "redis://:***@127.0.0.1" in worker.log.read_text()  # the banner shows it, redacted
    assert _leaks(tmp_path, texts, password) == []
    assert _leaks(tmp_path, texts, password[::-1]) == []


# A credential in the query string, as each driver spells it (names percent-encoded too:
# libpq and redis-py decode them before they look the name up).
QUERY_SECRETS = ["password", "PASSWORD", "pass%77ord", "passwd", "sslpassword", "pwd",
                 "session-key", "X-Amz-Security-Token", "x-amz-signature"]


@pytest.mark.parametrize("name", QUERY_SECRETS)
@pytest.mark.parametrize("template", [
    "postgresql://releng@db.example.org/releng?sslmode=require&{}={}",
    "redis://127.0.0.1:6379/0?{}={}",
    "amqps://rabbit.example.org/%2F?{}={};heartbeat=30",
    "https://hub.example.org/kojihub?session-id=1&{}={}&callnum=2",
])
def test_redact_hides_credential_query_parameters(name, template):
    secret = "S3cr%2Bt" + name[:3].replace("%", "")
    url = template.format(name, secret)
    assert redact.password_of(url) == secret
    text = redact.redact(f"cannot connect to {url}: refused ({json.dumps({'url': url})})")
    assert secret not in text and "S3cr" not in text
    assert text.count(f"{name}=***") == 2
    # the other parameters stay as they were
    assert ("sslmode=require" in redact.redact(url)) == ("sslmode=require" in url)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0?db=2&socket_timeout=5",
                                 "postgresql://db/releng?sslmode=require&passfile=/etc/pgpass",
                                 "redis://h/0?password=", "https://h/x?keyword=password",
                                 "https://h/compose?password_hint=1"])
def test_query_parameters_that_hold_no_credential_pass(url):
    assert redact.password_of(url) == "" and redact.redact(url) == url


QUERY_KEYS = {
    "store.url": "postgresql://releng@db.example.org/releng?{}={}",
    "celery.broker_url": "redis://127.0.0.1:6379/0?{}={}",
    "celery.result_backend": "rediss://127.0.0.1:6379/1?ssl_cert_reqs=required&{}={}",
    "koji.ksurl": "git+https://pagure.io/fedora-kickstarts.git?{}={}#f19",
    "install_tree": "https://dl.example.org/19/$arch/os/?{}={}",
    "repos": "https://dl.example.org/19/Everything/$arch/os/?{}={}",
    "messaging.location_url": "https://dl.example.org/composes?{}={}",
}


@pytest.mark.parametrize("name", ["password", "pass%77ord", "sslpassword", "passwd"])
@pytest.mark.parametrize("where", QUERY_KEYS)
def test_config_refuses_a_credential_in_any_urls_query(tmp_path, where, name):
    secret = "qS3cret" + RAW["at"]
    config, releases, key = _with_secret(where, QUERY_KEYS[where].format(name, quote(secret)))
    cfg = write(tmp_path / "rel-eng.toml", config)
    rel = write(tmp_path / "releases.toml", releases)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, rel)
    [problem] = err.value.problems
    assert f": {key}: " in problem and ("credential" in problem), problem
    assert not any(f in problem for f in forms(quote(secret)))


def test_a_query_password_from_the_environment_is_never_printed(tmp_path):
    """REL_ENG_BROKER_URL may carry the broker's password (the environment is the allowed
    place); `?password=` is redacted like user:password wherever the URL is printed."""
    secret = "envS3cret" + RAW["slash"]
    env = {"REL_ENG_BROKER_URL": f"redis://127.0.0.1:1/0?password={quote(secret, safe='')}"}
    out = tmp_path / "out"
    for argv in (["validate"], ["--debug", "validate"],
                 ["compose", "--queue", "--release", "19", "--milestone", "Beta",
                  "--output", str(out)]):
        proc = _rel_eng(*argv, env=env)
        shown = proc.stdout + proc.stderr
        assert proc.returncode == 2, (argv, shown)
        assert "password=***" in shown, shown
        assert not any(f in shown for f in forms(quote(secret, safe=""))), shown
