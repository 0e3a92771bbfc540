"""A compose, step by step: create -> build -> process -> metadata -> publish -> readme -> stage.

Each step is a plain function over a `Compose` (top dir + plan + config, all reloadable from
disk), so `rel-eng compose` runs them in-process and a task queue can run the same functions on
other hosts. Steps record themselves in the manifest keyed by the digest of their inputs: a
rerun skips every step that already finished with the same inputs.

    model.py        Compose, its statuses and errors, the Recorder protocol (the store)
    allocate.py     respin and label allocation
    inputs.py       kickstarts, TDLs and tools checked before anything is written
    create.py       the compose directory and its inputs
    build.py        the build step (submit, watch, collect)
    signals.py      SIGINT/SIGTERM: cancel submitted builds
    postprocess.py  the process step (raw -> qcow2, raw.tar.xz)
    finalize.py     metadata, CHECKSUM, publishers, READMEs, staging
    run.py          the whole compose in-process, and resume
"""

from rel_eng.compose.allocate import allocate, existing_plans
from rel_eng.compose.build import build, build_request
from rel_eng.compose.create import create, epoch_of
from rel_eng.compose.finalize import (failures, finalize, publish, record_amis, refresh_staged,
                                      stage_drop, stage_files, write_metadata, write_readmes)
from rel_eng.compose.inputs import prepare_inputs, required_tools
from rel_eng.compose.model import (DOOMED, FINISHED, INCOMPLETE, STARTED, TERMINATED, Compose,
                                   ComposeDoomed, Recorder, Terminated)
from rel_eng.compose.postprocess import process
from rel_eng.compose.run import resume, run_compose

__all__ = [
    "DOOMED", "FINISHED", "INCOMPLETE", "STARTED", "TERMINATED", "Compose", "ComposeDoomed",
    "Recorder", "Terminated", "allocate", "build", "build_request", "create", "epoch_of",
    "existing_plans", "failures", "finalize", "prepare_inputs", "process", "publish",
    "record_amis", "refresh_staged", "required_tools", "resume", "run_compose", "stage_drop",
    "stage_files", "write_metadata", "write_readmes",
]
