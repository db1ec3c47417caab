"""The task ``draydog.archive_day``: one (terminal, stream, day) into the archive and database.

Idempotent: a day already stored costs a page read and no picture request (a past
day recorded complete costs nothing at all), and two attempts at once leave every
picture once with one row. Failures are sorted by :mod:`.failures`: permanent ones
end the task with a result that says why (the day's record says ``failed`` or
``partial``), transient ones are retried ``retries`` times with exponential backoff
(``$DRAYDOG_TASK_RETRIES``, ``$DRAYDOG_TASK_RETRY_DELAY``), after which the result
says why; a worker without a browser hands the task back and stops.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.exceptions import Reject

from modules.site.urls import parse_day, validate_name
from modules.tasks import failures, process, settings
from modules.tasks.app import ARCHIVE_DAY, app
from modules.tasks.summary import failure_summary, to_summary

logger = logging.getLogger(__name__)


@app.task(bind=True, name=ARCHIVE_DAY, max_retries=None)
def archive_day(
    self: Task[Any, Any], terminal: str, stream: str, day: str, force: bool = False
) -> dict[str, Any]:
    """Archive one day of one stream; the day's summary (see :mod:`.summary`)."""
    attempts = int(self.request.retries) + 1
    worker = self.request.hostname
    policy = settings.retry_policy()
    try:
        validate_name(terminal, "terminal")
        validate_name(stream, "stream")
        when = parse_day(day)
    except ValueError as exc:
        logger.error("%s %s %s refused: %s", terminal, stream, day, exc)
        return failure_summary(
            terminal,
            stream,
            day,
            f"ValueError: {exc}",
            attempts=attempts,
            worker=worker,
            permanent=True,
        )
    try:
        downloader = process.downloader_for(terminal)
        report = downloader.download_date(when, stream, force=force)
    except Exception as exc:
        kind = failures.classify_exception(exc)
        error = f"{type(exc).__name__}: {exc}"
        if kind == failures.ENVIRONMENT:
            _give_back_and_stop(self, error)
        if kind == failures.TRANSIENT and self.request.retries < policy.retries:
            countdown = policy.countdown(self.request.retries)
            logger.warning(
                "%s %s %s failed (%s): attempt %d again in %.1f s",
                terminal,
                stream,
                day,
                error,
                attempts + 1,
                countdown,
            )
            process.restart_browser()
            raise self.retry(exc=exc, countdown=countdown)
        logger.error("%s %s %s failed for good: %s", terminal, stream, day, error)
        return failure_summary(
            terminal,
            stream,
            day,
            error,
            attempts=attempts,
            worker=worker,
            permanent=kind == failures.PERMANENT,
        )
    trouble = failures.transient_trouble(report)
    if trouble is not None and self.request.retries < policy.retries:
        countdown = policy.countdown(self.request.retries)
        logger.warning(
            "%s %s %s: %s; attempt %d in %.1f s",
            terminal,
            stream,
            day,
            trouble,
            attempts + 1,
            countdown,
        )
        raise self.retry(countdown=countdown)
    return to_summary(
        terminal,
        stream,
        day,
        report,
        attempts=attempts,
        worker=worker,
        permanent=trouble is None and not report.ok,
    )


def _give_back_and_stop(task: Task[Any, Any], error: str) -> None:
    """The task back to the queue for another worker; this worker stops (exit 3)."""
    logger.critical(
        "this worker cannot archive (%s): giving the task back and stopping", error
    )
    process.close_downloader()
    hostname = task.request.hostname
    try:
        if hostname is not None:
            task.app.control.broadcast(
                "draydog_broken", arguments={"reason": error}, destination=[hostname]
            )
    except Exception as exc:  # the task goes back all the same
        logger.error("could not ask this worker to stop: %s", exc)
    raise Reject(error, requeue=True)
