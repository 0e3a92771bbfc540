"""A compose, step by step: create, then the steps rel_eng.pipeline declares (build -> process
-> boottest per image, then finalize: metadata -> checksum -> publish -> readme -> stage ->
verify -> share).

Each step is a plain function over a `Compose` (top dir + plan + config, all reloadable from
disk), so `rel-eng compose` runs them in-process and a task queue can run the same functions on
other hosts. Steps record themselves in the manifest keyed by the digest of their declared
inputs (pipeline.step_key): a rerun skips every step that already finished with the same inputs.

    model.py        Compose, its statuses and errors, the Recorder protocol (the store)
    allocate.py     respin and label allocation (under a lock, past what output and mirror hold)
    locks.py        per-step and allocation file locks, shared with the Celery tasks
    inputs.py       kickstarts, TDLs and tools checked before anything is written
    create.py       the compose directory and its inputs
    build.py        the build step (submit, watch, collect)
    signals.py      SIGINT/SIGTERM at any step (rel_eng.signals): TERMINATED, cancel builds
    postprocess.py  the process step (raw -> qcow2, raw.tar.xz)
    boot_gate.py    the boot test of every processed image, before anything is published
    finalize.py     its declared sub-steps over one read of the manifest (FinalizeRun)
    run.py          the whole compose in-process (the pipeline walked in order), and resume
"""

from rel_eng.compose.allocate import allocate, allocate_and_create, existing_plans, parse_label
from rel_eng.compose.build import build, build_request
from rel_eng.compose.create import create, epoch_of
from rel_eng.compose.finalize import (failures, finalize, finalize_steps, publish, record_amis,
                                      refresh_staged, share, stage_drop, stage_files,
                                      write_metadata, write_readmes)
from rel_eng.compose.inputs import prepare_inputs, required_tools
from rel_eng.compose.model import (DOOMED, FINISHED, INCOMPLETE, STARTED, TERMINATED, Compose,
                                   ComposeDoomed, Recorder, Terminated, recorded)
from rel_eng.compose.postprocess import process
from rel_eng.compose.run import resume, run_compose, sweep_leftovers

__all__ = [
    "DOOMED", "FINISHED", "INCOMPLETE", "STARTED", "TERMINATED", "Compose", "ComposeDoomed",
    "Recorder", "Terminated", "allocate", "allocate_and_create", "build", "build_request",
    "create", "epoch_of", "existing_plans", "failures", "finalize", "finalize_steps",
    "parse_label", "prepare_inputs", "process", "publish", "record_amis", "recorded", "refresh_staged",
    "required_tools", "resume", "run_compose", "share", "stage_drop", "stage_files",
    "sweep_leftovers", "write_metadata", "write_readmes",
]
