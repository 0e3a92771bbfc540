"""pytest fixtures for the Koji tests: import them into a test module to use them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from rel_eng.config import Config, load_config
from rel_eng.config.koji import KojiConfig

from .assets import make_certs, make_images
from .server import KojiTestHub

PROFILE = "test-hub"
FAST = dict(poll_interval=0.05, timeout=60.0, retries=8, retry_backoff=0.05,
            retry_backoff_max=0.5, download_timeout=10.0)
ALPHA = dt.date(2013, 4, 5)


@pytest.fixture(scope="session")
def hub_assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("kojihub-assets")
    return make_certs(base / "certs"), make_images(base / "images")


@pytest.fixture
def koji_hub(tmp_path, hub_assets):
    """A started test hub; stopped (server and simulated kojid) whatever the test does."""
    certs, images = hub_assets
    hub = KojiTestHub(tmp_path / "hub", certs, images)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def client_config(hub: KojiTestHub, path: Path, **kw) -> Path:
    path.write_text(hub.client_config(PROFILE, **kw))
    return path


def koji_config(hub: KojiTestHub, tmp_path: Path, base: Config | None = None, *,
                user: str = "releng", authtype: str = "ssl", **koji_opts) -> Config:
    """The default pipeline config with [koji] pointing at `hub` through a koji client config."""
    cfg_file = client_config(hub, tmp_path / f"koji-{user}-{authtype}.conf", user=user,
                             authtype=authtype)
    base = base or load_config()
    kcfg = dataclasses.replace(KojiConfig(), profile=PROFILE, config_file=str(cfg_file),
                               **{**FAST, **koji_opts})
    # The test hub's images are synthetic disks, not bootable: no boot gate for them.
    return dataclasses.replace(base, builder="koji", koji=kcfg,
                               boot_test=dataclasses.replace(base.boot_test, enabled=False))


def compose_requests(config: Config, out: Path, release: str = "19",
                     milestone: str | None = "Alpha", date: dt.date = ALPHA):
    """A compose dir made by the core's own steps, and the BuildRequests its build step makes."""
    from rel_eng.compose import allocate, build_request, create, prepare_inputs

    plan = allocate(config, out, release, milestone, date, builder="koji")
    c = create(config, plan, out, prepare_inputs(config, plan))
    return c, [build_request(c, job.key) for job in plan.images]


class Recorder:
    """An `on_submitted` callback that remembers each handle and what the hub had by then."""

    def __init__(self, hub: KojiTestHub | None = None):
        self.hub = hub
        self.handles = []
        self.submissions_seen = []

    def __call__(self, handle) -> None:
        self.handles.append(handle)
        if self.hub is not None:
            self.submissions_seen.append(len(self.hub.hub.submissions))
