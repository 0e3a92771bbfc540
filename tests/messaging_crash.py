"""Flush the outbox and SIGKILL this process right after the broker confirmed one topic's message,
before the outbox marks it sent: the crash between send and mark, for test_messages_bus.py.

    python messaging_crash.py CONFIG OUTPUT TOPIC
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from rel_eng.config import load_config
from rel_eng.messaging.publisher import Publisher, require_config
from rel_eng.store.engine import open_engine
from rel_eng.store.outbox import Flusher


class KillAfterSend(Publisher):
    def __init__(self, cfg, topic: str):
        super().__init__(cfg)
        self.topic = topic

    def send(self, topic, body, message_id):
        super().send(topic, body, message_id)
        if topic == self.topic:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    config_path, output, topic = sys.argv[1:4]
    config = load_config(Path(config_path))
    require_config(config.messaging)
    engine = open_engine(config.store.url_for(Path(output)))
    Flusher(engine, KillAfterSend(config.messaging, topic)).flush()
    sys.exit("the crash never happened: no pending message had topic " + topic)


if __name__ == "__main__":
    main()
