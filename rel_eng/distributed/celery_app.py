"""The Celery app, built from CelerySettings; and the bounded broker check done at start.

Reliability choices: a task is acknowledged only after it finished (acks_late) and handed back
when its worker process dies (reject_on_worker_lost); a worker holds one task at a time
(prefetch 1), so a SIGKILLed host loses at most the task it was running, which Redis hands out
again after the visibility timeout. JSON only: nothing a worker loads can run code.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from rel_eng.config.celery import CelerySettings


def make_app(s: CelerySettings, main: str = "rel_eng") -> Celery:
    app = Celery(main, set_as_current=True)
    vt = s.visibility_timeout
    app.conf.update(
        broker_url=s.broker_url,
        result_backend=s.backend_url,
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Keep running builds when the broker blips: their result is stored with retries and
        # a lost ack only means a redelivery, which the manifest turns into a no-op.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_transport_options={
            "visibility_timeout": vt,
            # Sweep for messages of dead workers often enough to matter, once per sweep.
            "unacked_restore_interval": max(1, min(60, vt // 10)),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": s.connect_timeout,
            "socket_keepalive": True,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=60,
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 10, "interval_start": 0,
                                   "interval_step": 1, "interval_max": 5},
        redis_socket_connect_timeout=s.connect_timeout,
        redis_retry_on_timeout=True,
        # Storing a result while Redis restarts retries with back-off, bounded.
        result_backend_always_retry=True,
        result_backend_max_retries=30,
        result_backend_base_sleep_between_retries_ms=100,
        result_backend_max_sleep_between_retries_ms=5000,
        result_extended=True,  # task name and args in the backend, for `status` and flower
        task_queues=[Queue(q, routing_key=q) for q in s.queues],
        task_create_missing_queues=False,
        task_default_queue=s.route_map()["finalize"],
        worker_hijack_root_logger=False,
    )
    from rel_eng.distributed import tasks  # late: tasks import compose, which is heavy

    tasks.register(app, s)
    return app

