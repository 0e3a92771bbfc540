"""Scheduling: weekly streams on UTC cron expressions, milestone composes on release dates.

rel_eng.config.schedule parses [schedule] and schedules/streams.toml; cron.py and firings.py
compute firings from a given clock with no I/O, dispatch.py claims due firings in the store and
queues them, beat.py wires that into Celery beat. cron.py stays import-light: config checks cron
expressions with it.
"""
