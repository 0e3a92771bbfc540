"""The compose store: composes, images, builder task ids, artifacts and every status change.

SQLAlchemy over a SQLite file by default (`<output>/rel-eng.db`), PostgreSQL by URL. The compose
directory stays the source of truth; a `StoreRecorder` mirrors it here as the compose runs, so
`rel-eng status` can show live state and the scheduler can claim firings atomically.

Its config table is rel_eng.config.store.
"""
