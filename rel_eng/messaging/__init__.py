"""Messages on the bus: what rel-eng announces, how it is sent, and the mirror-sync consumer.

    bodies.py     message bodies and their stable ids, built from a compose (pure)
    publisher.py  sending one outbox message with fedora-messaging's API and config file
    consumer.py   the "drop staged" consumer that runs the mirror sync command once per id

Its config table is rel_eng.config.messaging. The outbox itself (the table, enqueue, flush) lives in rel_eng/store/outbox.py, because each
message is written in the same transaction as the store change it announces. The schemas are
the separate `rel_eng_messages` package (messages/ in this repo).
"""
