"""`rel-eng release`: a blessed milestone candidate from alt/stage into the release tree.

    candidate.py  find the candidate (compose id or label) and refuse what must not be released
    tree.py       the release tree: link-or-copy into a hidden temp dir, verify, one rename
    record.py     the compose store's release row and history, and the outbox message
    run.py        the steps (rel_eng.pipeline.RELEASE_STEPS) walked under the mirror's lock
"""
