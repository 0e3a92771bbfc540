"""A whole compose with the koji builder against the test hub."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rel_eng.compose import ComposeDoomed, run_compose

from tests.kojihub.fixtures import ALPHA, hub_assets, koji_config, koji_hub  # noqa: F401
from tests.signatures import assert_overrides_match


def _layout(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _drop(out: Path, plan) -> Path:
    return out / "mirror" / plan.mirror_path


def test_koji_compose_makes_the_same_drop_as_the_synthetic_builder(koji_hub, tmp_path,
                                                                   alpha_drop):
    synthetic, synthetic_out = alpha_drop
    config = koji_config(koji_hub, tmp_path)
    out = tmp_path / "out"
    c = run_compose(config, out, "19", "Alpha", ALPHA, builder="koji")

    assert c.read_status() == synthetic.read_status() == "FINISHED"
    assert c.plan.compose_id == synthetic.plan.compose_id
    assert _layout(c.topdir / "compose") == _layout(synthetic.topdir / "compose")
    assert _layout(_drop(out, c.plan)) == _layout(_drop(synthetic_out, synthetic.plan))
    # Built by koji: one buildImageOz per image type, real images, milestone = real builds.
    subs = koji_hub.hub.submissions
    assert [s["name"] for s in subs] == ["Fedora-Cloud-Base", "Fedora-Cloud-Base-EC2"]
    assert not any(s["opts"].get("scratch") for s in subs)
    builds = c.manifest.builds()
    assert {b["builder"] for b in builds.values()} == {"koji"}
    assert {b["external_id"] for b in builds.values()} == {str(s["task_id"]) for s in subs}
    # Koji is asked only for what is used: every image kojid made was downloaded.
    assert [s["opts"]["format"] for s in subs] == [["raw-xz"], ["raw-xz"]]
    assert len(koji_hub.hub.images_made) == 4  # 2 image types x 2 arches, raw.xz each
    assert koji_hub.formats_not_downloaded() == {}


def test_a_format_asked_for_and_not_used_is_seen_by_the_hub(koji_hub, tmp_path):
    config = koji_config(koji_hub, tmp_path, formats=("qcow2", "raw-xz"))
    c = run_compose(config, tmp_path / "out", "19", "Alpha", ALPHA, builder="koji")
    assert c.read_status() == "FINISHED"
    unused = koji_hub.formats_not_downloaded()
    assert sorted(unused.values()) == ["qcow2"] * 4
    assert all(name.endswith(".qcow2") for name in unused)


def test_optional_arch_failure_ends_finished_incomplete(koji_hub, tmp_path):
    koji_hub.inject.fail_arches = {"i386"}
    config = dataclasses.replace(koji_config(koji_hub, tmp_path), optional_arches=("i686",))
    out = tmp_path / "out"
    c = run_compose(config, out, "19", "Alpha", ALPHA, builder="koji")

    assert c.read_status() == "FINISHED_INCOMPLETE"
    staged = _layout(_drop(out, c.plan))
    assert not any("i686" in p for p in staged) and any("x86_64" in p for p in staged)
    summary = json.loads((c.metadir / "rel-eng.json").read_text())
    assert "generic-i686" in json.dumps(summary) and "ApplianceError" in json.dumps(summary)
    readme = (c.images_dir("x86_64") / "README").read_text()
    assert "i686" in readme
    assert any((c.logdir / "generic-i686").glob("koji-task-*/oz-i386.log"))


def test_required_arch_failure_dooms_the_compose_and_stages_nothing(koji_hub, tmp_path):
    koji_hub.inject.fail_arches = {"x86_64"}
    config = koji_config(koji_hub, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(ComposeDoomed, match="DOOMED"):
        run_compose(config, out, "19", "Alpha", ALPHA, builder="koji")
    topdir = next(out.glob("Fedora-Cloud-*"))
    assert (topdir / "STATUS").read_text().strip() == "DOOMED"
    # nothing staged; the label stays reserved in the mirror (a resume may still stage it)
    assert _layout(out / "mirror") == [".rel-eng-reserved/alt%2Fstage%2F19_Alpha-1.1"]


def test_a_restarted_compose_watches_recorded_tasks_instead_of_resubmitting(koji_hub, tmp_path):
    from rel_eng import compose as compose_mod
    from rel_eng.builders.koji import KojiBuilder

    class CrashesWhileWatching(KojiBuilder):
        def wait(self, handles, timeout=None):
            raise RuntimeError("worker host lost power")

    assert_overrides_match(CrashesWhileWatching)
    config = koji_config(koji_hub, tmp_path)
    out = tmp_path / "out"
    plan = compose_mod.allocate(config, out, "19", "Alpha", ALPHA, builder="koji")
    c = compose_mod.create(config, plan, out, compose_mod.prepare_inputs(config, plan))
    with pytest.raises(RuntimeError, match="lost power"):
        compose_mod.build(c, builder_factory=CrashesWhileWatching)
    submitted = [s["task_id"] for s in koji_hub.hub.submissions]
    assert len(submitted) == 2

    compose_mod.resume(compose_mod.Compose.load(c.topdir), out / "mirror")
    assert [s["task_id"] for s in koji_hub.hub.submissions] == submitted  # nothing new
    assert compose_mod.Compose.load(c.topdir).read_status() == "FINISHED"
