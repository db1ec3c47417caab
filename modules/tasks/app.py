"""The Celery application: ``celery -A modules.tasks.app worker`` runs a worker.

Delivery is at least once and the work idempotent: a task is acknowledged only
once it has finished (``task_acks_late``), a worker process that dies in the
middle of a day gives its message back to the broker
(``task_reject_on_worker_lost``), and each process takes one message at a time
(``worker_prefetch_multiplier = 1``), so a long day does not hold other days back
in a busy worker's buffer. Running a day twice, or twice at once, leaves every
picture once with one row: the downloader skips what is stored, writes through
private ``.part`` files and inserts with ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from celery import Celery

from modules.tasks import settings
from modules.tasks.preflight import Preflight

ARCHIVE_DAY = "draydog.archive_day"
WATCH_STREAM = "draydog.watch_stream"

app = Celery(
    "draydog",
    include=["modules.tasks.archive", "modules.tasks.cycle", "modules.tasks.control"],
)


def configure(broker: str | None = None) -> Celery:
    """Point the app at ``broker`` (checked; default ``$DRAYDOG_BROKER_URL``)."""
    url = settings.broker_url(broker)
    app.conf.update(
        broker_url=url,
        result_backend=settings.result_backend(url),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.DEFAULT_QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=7 * 24 * 3600,
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=10,
        # A day can take minutes; RabbitMQ's own limit on an unacknowledged message
        # (30 min by default) stays the bound.
        broker_transport_options={"visibility_timeout": 6 * 3600},
        worker_cancel_long_running_tasks_on_connection_loss=True,
        enable_utc=True,
    )
    return app


app.steps["worker"].add(Preflight)
configure()
