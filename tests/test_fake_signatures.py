"""The test doubles shared by several tests keep the signatures of the real code they replace.

Doubles defined inside one test check themselves there (tests.signatures). Koji hub methods in
tests/kojihub/hub.py follow the hub's API, which is not importable here (no koji-hub package):
the real koji.ClientSession calling them over XML-RPC is what checks those.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import distributed_builders  # noqa: E402
from signatures import assert_overrides_match, assert_same_signature, params  # noqa: E402

from rel_eng.builders.base import Builder  # noqa: E402
from rel_eng.builders.synthetic import SyntheticBuilder  # noqa: E402


@pytest.mark.parametrize("fake", [distributed_builders.SlowBuilder,
                                  distributed_builders.BrokenBuilder])
def test_distributed_test_builders_match_the_builder_interface(fake):
    assert assert_overrides_match(fake) == 1
    for name in ("submit", "wait", "collect", "cancel"):
        assert_same_signature(getattr(fake, name), getattr(Builder, name))


def test_store_recorder_broken_builder_matches():
    from test_store_recorder import BrokenI686

    assert assert_overrides_match(BrokenI686) == 1


def test_a_drifted_fake_is_caught():
    class Drifted(SyntheticBuilder):
        def wait(self, handles, deadline=None):  # renamed keyword: callers passing timeout= break
            return []

    with pytest.raises(AssertionError, match="does not match"):
        assert_overrides_match(Drifted)
    assert params(Drifted.wait) != params(SyntheticBuilder.wait)
