"""docker-compose.yml and workers/: every command names a real entry point and a real config.

Docker is not needed: the compose file is parsed, each command's argv is parsed by the real
CLI it names, and each config it mounts from this repo is loaded by the real loader.
"""

from __future__ import annotations

import configparser
import shlex
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from rel_eng import cli
from rel_eng.config import load_config
from rel_eng.distributed import routing
from rel_eng.config.celery import effective

ROOT = Path(__file__).resolve().parent.parent
WORKERS = ROOT / "workers"
OZ_QUEUES = {"oz.x86_64", "oz.i686"}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def bind_mounts(service: dict) -> dict[str, Path]:
    """Container path -> repo file for every `./...` bind mount."""
    out = {}
    for vol in service.get("volumes", []):
        source, target = vol.split(":")[:2]
        if source.startswith("./"):
            out[target] = ROOT / source
    return out


def mounted_configs(service: dict) -> list[Path]:
    """Repo files that the command names through a bind mount."""
    mounts = bind_mounts(service)
    found = []
    for arg in service["command"]:
        path = arg.split("=", 1)[-1]
        if path in mounts:
            found.append(mounts[path])
    return found


def declared(project: dict, dist: str) -> bool:
    names = [d.split("[")[0].split(">")[0].split("=")[0].strip().lower()
             for d in project["dependencies"]]
    return dist.lower() in names


def check_rel_eng_argv(argv: list[str]):
    args = cli.build_parser().parse_args(argv)  # SystemExit on any unknown command or flag
    assert callable(args.func)
    return args


def test_compose_has_the_services_and_leaves_oz_workers_outside(services):
    assert {"redis", "beat", "worker", "flower"} <= set(services)
    text = (ROOT / "docker-compose.yml").read_text()
    assert "bare-metal" in text and "rel-eng-worker@.service" in text
    for name, svc in services.items():
        assert not OZ_QUEUES & set(",".join(svc["command"]).split(",")), name


def test_every_service_command_is_a_real_entry_point_with_a_real_config(services, project):
    assert services, "docker-compose.yml defines no service"
    for name, svc in services.items():
        argv = svc["command"]
        assert isinstance(argv, list), f"{name}: command must be an argv list"
        configs = mounted_configs(svc)
        assert configs, f"{name}: names no config file from this repo"
        for path in configs:
            assert path.is_file(), f"{name}: {path} does not exist"
        if "build" in svc:  # our image: the entry point must be ours or a declared dependency
            dockerfile = ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]
            assert "pip install" in dockerfile.read_text()
            if argv[0] in project["scripts"]:
                check_rel_eng_argv(argv[1:])
                for path in configs:
                    config = load_config(path)  # raises ConfigError on any problem
                    assert config.celery.broker_url == svc["environment"]["REL_ENG_BROKER_URL"]
            else:
                (script,) = entry_points(group="console_scripts", name=argv[0])
                assert declared(project, script.dist.name), f"{name}: {script.dist.name}"
                sub = next(a for a in argv[1:] if not a.startswith("-") and "://" not in a)
                (command,) = entry_points(group="celery.commands", name=sub)
                assert declared(project, command.dist.name), f"{name}: {command.dist.name}"
                for path in configs:
                    compile(path.read_text(), str(path), "exec")
        elif svc["image"].startswith("redis:"):
            assert argv[0] == "redis-server"
            conf = configs[0].read_text().split("\n")
            # A restarted broker must keep queued and unacknowledged tasks.
            assert "appendonly yes" in conf and "maxmemory-policy noeviction" in conf
        else:
            assert svc["image"].startswith("postgres:") and argv[0] == "postgres"
            assert f"config_file={svc['volumes'][0].split(':')[1]}" in argv
            conf = configs[0].read_text()
            # The store keeps status history and firings: nothing may be lost on a crash.
            assert "fsync = on" in conf and "synchronous_commit = on" in conf


def test_light_worker_serves_koji_and_uploads_only(services):
    svc = services["worker"]
    args = check_rel_eng_argv(svc["command"][1:])
    settings = effective(load_config(mounted_configs(svc)[0]).celery,
                         svc["environment"])
    queues = routing.check_worker_queues(settings, args.queues.split(","), "stack.toml")
    assert set(queues) == {"koji", "process", "publish"}


def test_bare_metal_unit_runs_the_oz_queues_with_the_host_config():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(WORKERS / "rel-eng-worker@.service")
    env = dict(line.split("=", 1) for line in (WORKERS / "queues.env").read_text().splitlines()
               if line and not line.startswith("#"))
    exec_start = unit["Service"]["ExecStart"].replace("${REL_ENG_QUEUES}", env["REL_ENG_QUEUES"])
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/bin/rel-eng")
    args = check_rel_eng_argv(argv[1:])
    assert args.command == "worker" and args.concurrency == 1
    settings = effective(load_config(WORKERS / "host.toml").celery, env)
    assert set(routing.check_worker_queues(settings, args.queues.split(","), "host.toml")) \
        == OZ_QUEUES | {"boottest"}
    assert settings.broker_url == env["REL_ENG_BROKER_URL"]
    assert unit["Service"]["KillSignal"] == "SIGTERM"  # Celery's warm shutdown


def test_oz_cfg_template_meets_the_builder_requirements():
    oz = configparser.ConfigParser()
    oz.read(WORKERS / "oz.cfg")
    assert oz.getint("libvirt", "memory") >= 2048
    assert oz.get("icicle", "safe_generation") == "yes"
    assert oz.get("libvirt", "type") == "kvm"
    assert set(oz.sections()) <= {"paths", "libvirt", "cache", "icicle", "timeouts"}
    runbook = (WORKERS / "RUNBOOK.md").read_text()
    for name in ("rel-eng-worker@.service", "queues.env", "oz.cfg", "host.toml"):
        assert name in runbook
