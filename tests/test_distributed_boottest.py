"""A distributed compose whose `boottest` queue boots a real guest: the Debian test appliance,
built by the test appliance builder on one real Celery worker and booted (TCG forced) by another
that serves only `boottest`, as the bare-metal hosts do. One boot serves every check."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from appliance_builder import APPLIANCES_ENV, ApplianceBuilder  # noqa: E402
from distributed_support import RedisServer, Worker  # noqa: E402

from rel_eng.boottest import fixture  # noqa: E402
from rel_eng.builders import BUILDERS  # noqa: E402
from rel_eng.compose import FINISHED, Compose  # noqa: E402
from rel_eng.config import load_config  # noqa: E402
from rel_eng.distributed import tasks  # noqa: E402
from rel_eng.distributed.canvas import submit_compose, wait_compose  # noqa: E402

DATE = dt.date(2013, 5, 28)
CHECKS = ["console", "cloud-init", "datasource", "ssh", "user-data", "root-grown",
          "no-hardcoded-mac", "firewall-off", "root-locked", "sudo-nopasswd"]
# Bounds for a shared CI host under TCG (see tests/test_boot_gate_compose.py); they only cap a hang.
BOUNDS = "console_timeout_s = 1200\nboot_timeout_s = 3000\nssh_timeout_s = 30\nguest_script_timeout_s = 1200\n"
WAIT_S = 3600  # a deadline for a hang, never reached by a boot that works


@pytest.fixture
def redis_server(tmp_path, monkeypatch):
    for var in ("REL_ENG_BROKER_URL", "REL_ENG_RESULT_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_the_boottest_queue_boots_the_image_on_its_own_worker(appliance_images, redis_server,
                                                              tmp_path, monkeypatch):
    monkeypatch.setitem(BUILDERS, ApplianceBuilder.name, ApplianceBuilder)  # as in the workers
    cfg = tmp_path / "rel-eng.toml"
    cfg.write_text(
        '[compose]\nbuilder = "appliance"\narches = ["x86_64"]\noutputs = ["qcow2"]\n'
        'qcow2_compression = "none"\n'
        '[images.generic]\nname = "Fedora-Cloud-Base"\nsubvariant = "Cloud_Base"\n'
        'kickstart = "fedora-cloud-base.ks"\n'
        f'[celery]\nbroker_url = "{redis_server.url}"\n'
        "visibility_timeout = 7200\n"  # longer than any boot: never handed out twice
        f"[boot_test]\ngate = \"all\"\nchecks = {json.dumps(CHECKS)}\n{BOUNDS}")
    # The generic image boots as OpenStack boots it (its default platform): a config drive, which
    # only the appliance built for OpenStack looks for.
    image = fixture.derive(appliance_images["amd64"], "openstack").path
    env = {APPLIANCES_ENV: json.dumps({"generic-x86_64": str(image)}),
           "REL_ENG_ACCEL": "tcg", "TMPDIR": str(tmp_path)}
    logs = tmp_path / "logs"
    started = []
    try:
        started.append(Worker("build", cfg, logs, queues="oz.x86_64,oz.i686,koji,process,publish",
                              env=env).start())
        started.append(Worker("boot", cfg, logs, queues="boottest", env=env).start())
        config = load_config(cfg)
        cid = submit_compose(config, tmp_path / "out", "19", "Beta", DATE, builder="appliance")
        topdir = tmp_path / "out" / cid
        assert wait_compose(topdir, WAIT_S, poll=1.0) == FINISHED
    finally:
        for w in started:
            w.stop()

    c = Compose.load(topdir)
    [job] = c.plan.images
    bt = json.loads((c.metadir / "rel-eng.json").read_text())["boot_test"]
    v = bt["images"]["generic-x86_64"]
    assert v["status"] == "pass" and (v["accel"], v["accel_reason"]) == ("tcg", "forced by REL_ENG_ACCEL=tcg")
    assert {ch["name"]: ch["status"] for ch in v["checks"]} == {n: "pass" for n in CHECKS}
    # the boottest worker booted the image as its platform: the config drive cloud-init found
    assert v["platform"] == {"name": "openstack", "label": "openstack (config drive)",
                             "openstack": "config-drive"}
    ds = {ch["name"]: ch for ch in v["checks"]}["datasource"]
    assert "cloud-init ran from ConfigDrive" in ds["evidence"]
    assert (c.logdir / "boottest" / f"{job.nvra}.console.log").is_file()
    # the boot ran on the worker serving `boottest`, and only there
    boot_log, build_log = (logs / "worker-boot.log").read_text(), (logs / "worker-build.log").read_text()
    boot_task = f"Task {tasks.task_name('boottest')}["
    assert boot_task in boot_log and "succeeded in" in boot_log
    assert boot_task not in build_log and f"Task {tasks.task_name('build')}[" in build_log
    # the booted image is staged with its package list, checked by CHECKSUM
    staged = tmp_path / "out" / "mirror" / c.plan.mirror_path
    names = {p.name for p in staged.rglob("*") if p.is_file()}
    assert {f"{job.nvra}.qcow2", f"{job.nvra}-packages.txt"} <= names
    status = subprocess.run([sys.executable, "-m", "rel_eng", "status", cid, "--output",
                             str(tmp_path / "out"), "--json"], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    [image] = json.loads(status.stdout)["images"]
    assert image["steps"]["boottest"]["state"] == "done"
