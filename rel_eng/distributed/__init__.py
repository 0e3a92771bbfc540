"""The distributed engine: a compose as a Celery canvas over a Redis broker.

Only `settings` is imported by rel_eng.config; everything that imports Celery lives in the other
modules and is loaded by the commands that need it (`compose --queue`, `worker`).
"""
