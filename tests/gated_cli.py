"""`rel-eng` with a pause at one named function, so a test can signal the process right there.

    python gated_cli.py MODULE:FUNCTION before|after MATCH MARKER -- rel-eng arguments...

The first call of FUNCTION whose arguments' repr contains MATCH runs (after) or waits (before)
once MARKER has been created; the pause ends at a signal or after 60 s. Everything else is the
real program.
"""

from __future__ import annotations

import importlib
import os
import sys
import time


def main() -> int:
    target, when, match, marker, sep, *argv = sys.argv[1:]
    assert sep == "--" and when in ("before", "after")
    module_name, attr = target.split(":")
    module = importlib.import_module(module_name)
    real = getattr(module, attr)
    state = {"paused": False}

    def pause() -> None:
        state["paused"] = True
        with open(marker, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        for _ in range(1200):
            time.sleep(0.05)

    def gated(*args, **kwargs):
        hit = not state["paused"] and match in repr((args, kwargs))
        if hit and when == "before":
            pause()
        result = real(*args, **kwargs)
        if hit and when == "after":
            pause()
        return result

    setattr(module, attr, gated)
    from rel_eng.cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
