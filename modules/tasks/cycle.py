"""The watch cycle as a task: ``draydog beat`` sends one per stream every interval.

A worker runs it in a moment: it reads which days the stream needs, as ``draydog
watch`` does (:func:`modules.database.days.days_to_read`: today, read again every
cycle for its new pictures, every day of the last ``backfill_days`` not recorded
done, and every day since the newest one done when that is older), and sends one
``archive_day`` per day to the queue, where any worker takes them. A day recorded done is never sent again.
"""

from __future__ import annotations

import logging
from typing import Any

from modules.database import days as day_records
from modules.site.urls import DEFAULT_TIMEZONE, terminal_today, validate_name
from modules.tasks.app import ARCHIVE_DAY, WATCH_STREAM, app

logger = logging.getLogger(__name__)


@app.task(name=WATCH_STREAM)
def watch_stream(
    terminal: str,
    stream: str,
    backfill_days: int = 7,
    queue: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> list[str]:
    """Send the stream's days to read as ``archive_day`` tasks; the days sent."""
    validate_name(terminal, "terminal")
    validate_name(stream, "stream")
    wanted = day_records.days_to_read(
        terminal, stream, terminal_today(timezone), backfill_days
    )
    options: dict[str, Any] = {} if queue is None else {"queue": queue}
    for day in wanted:
        app.send_task(ARCHIVE_DAY, args=[terminal, stream, day.isoformat()], **options)
    logger.info("%s %s: %d days sent", terminal, stream, len(wanted))
    return [day.isoformat() for day in wanted]
