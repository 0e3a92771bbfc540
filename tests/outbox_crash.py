"""Flush the outbox in batches and SIGKILL this process right after the broker's confirm of the
n-th send, before its batch is marked sent: for test_outbox_batch.py. Each confirmed send's id
is appended (and fsynced) to LOG first, as a broker would have it.

    python outbox_crash.py STORE_URL BATCH KILL_AFTER LOG
"""

from __future__ import annotations

import os
import signal
import sys

from rel_eng.store.engine import open_engine
from rel_eng.store.outbox import Flusher


class ConfirmThenDie:
    resting = False

    def __init__(self, log: str, kill_after: int):
        self.log = log
        self.kill_after = kill_after
        self.sent = 0

    def send(self, topic, body, message_id):
        with open(self.log, "a") as fh:
            fh.write(message_id + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.sent += 1
        if self.sent == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    url, batch, kill_after, log = sys.argv[1:5]
    engine = open_engine(url)
    Flusher(engine, ConfirmThenDie(log, int(kill_after)), batch=int(batch)).flush()
    sys.exit("the crash never happened: fewer pending messages than " + kill_after)


if __name__ == "__main__":
    main()
