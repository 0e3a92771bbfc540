"""Scheduling: weekly streams on UTC cron expressions, milestone composes on release dates.

settings.py parses schedules/streams.toml (config.py calls it), cron.py and firings.py compute
firings from a given clock with no I/O, dispatch.py claims due firings in the store and queues
them, beat.py wires that into Celery beat. Kept import-light: config.py imports settings.
"""
