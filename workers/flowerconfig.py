"""Flower settings for the docker-compose "flower" service (mounted at /etc/rel-eng/flowerconfig.py)."""

port = 5555
address = "0.0.0.0"
# Keep a bounded history: a compose is a few dozen tasks; a week of composes fits easily.
max_tasks = 10000
persistent = True
db = "/data/flower.db"
# Workers are started with --events; ask them for state every 10 s.
inspect_timeout = 10000
