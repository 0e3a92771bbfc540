"""`rel-eng plan` says why it skipped respins in one clause, however many it skipped."""

from __future__ import annotations

from rel_eng.compose.taken import past_taken
from rel_eng.plan import plan_drop

from conftest import ALPHA_DATE


class _Taken:
    """What TakenNames answers: the first `n` labels are taken in the compose store."""

    def __init__(self, n: int):
        self.n, self.notes = n, []

    def collisions(self, plan):
        minor = int(plan.label.rsplit(".", 1)[1])
        return ("", f"{plan.label} is held by the compose store") if minor <= self.n else ("", "")


def test_many_skipped_respins_make_one_short_note(config):
    for n, label in ((1, "Beta-1.2"), (7, "Beta-1.8"), (40, "Beta-1.41")):
        taken = _Taken(n)
        plan = past_taken(config, plan_drop(config, "19", milestone="Beta", date=ALPHA_DATE),
                          taken, label_fixed=False)
        assert plan.label == label
        assert len(taken.notes) == 1
        assert len(taken.notes[0]) < 160, taken.notes[0]  # does not grow with the respins
    assert taken.notes == ["skipped 40 respins, Beta-1.1 to Beta-1.40 (the last: Beta-1.40 is "
                           "held by the compose store)"]
