"""The one SIGINT/SIGTERM handler (rel_eng.signals): the first signal raises once, with its exit
code; a second one while the cleanup runs is ignored, in nested blocks too (the boot gate inside
a compose); the handlers in place before are put back."""

from __future__ import annotations

import os
import signal

import pytest

from rel_eng.compose.model import Terminated
from rel_eng.compose.signals import terminate_on_signal
from rel_eng.errors import Interrupted
from rel_eng.signals import stop_on_signal


def test_the_first_signal_raises_with_its_exit_code_and_handlers_are_restored():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        with pytest.raises(Interrupted, match=f"boot test interrupted by signal {sig.name}") as exc:
            with stop_on_signal("boot test interrupted"):
                os.kill(os.getpid(), sig)
        assert exc.value.exit_code == code
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_signal_cannot_cut_the_cleanup_short_in_nested_blocks():
    cleaned = []
    with pytest.raises(Terminated, match="during boot tests by signal SIGTERM") as exc:
        with terminate_on_signal():  # the compose
            with terminate_on_signal("compose interrupted during boot tests"):  # its boot gate
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                finally:
                    os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C mid cleanup
                    cleaned.append("inner")
    assert cleaned == ["inner"]
    assert exc.value.exit_code == 143
    # A new run starts with the guard reset.
    with pytest.raises(Terminated):
        with terminate_on_signal():
            os.kill(os.getpid(), signal.SIGINT)


def test_the_outer_blocks_cleanup_is_guarded_too():
    steps = []
    with pytest.raises(Terminated):
        with terminate_on_signal():
            try:
                with terminate_on_signal("inner"):
                    os.kill(os.getpid(), signal.SIGINT)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # after the inner block put the outer back
                steps.append("outer cleanup ran")
    assert steps == ["outer cleanup ran"]
