"""Every input checked before anything is written: kickstarts flattened, TDLs rendered and
validated, the system tools a compose needs."""

from __future__ import annotations

from pathlib import Path

from rel_eng import kickstart, tdl
from rel_eng.builders import BUILDERS
from rel_eng.config import Config
from rel_eng.errors import InputError
from rel_eng.plan import DropPlan
from rel_eng.process import TOOLS as PROCESS_TOOLS


def prepare_inputs(config: Config, plan: DropPlan) -> dict[str, tuple[str, str]]:
    """Flatten every kickstart and render every TDL: {job key: (kickstart text, tdl text)}."""
    inputs = {}
    flat: dict[str, str] = {}
    template = Path(config.tdl_dir) / tdl.TEMPLATE_NAME
    for job in plan.images:
        if job.kickstart not in flat:
            flat[job.kickstart] = kickstart.flatten(Path(config.kickstart_dir) / job.kickstart,
                                                    job.ksversion, Path(config.kickstart_dir)).text
        inputs[job.key] = (flat[job.kickstart], tdl.render(job, template))
    if Path(tdl.SYSTEM_PYTHON).exists():
        bad = tdl.validate_with_oz({k: v[1] for k, v in inputs.items()})
        if bad:
            key, err = sorted(bad.items())[0]
            raise InputError(f"{template}: generated TDL for {key} is invalid for Oz: {err}")
    return inputs


def required_tools(config: Config, builder: str) -> list[str]:
    return [*getattr(BUILDERS[builder], "tools", ()), *PROCESS_TOOLS,
            *(["gpg"] if config.signing.enabled else [])]
