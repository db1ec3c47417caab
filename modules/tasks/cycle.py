"""The watch cycle as a task: ``draydog beat`` sends one per stream every interval.

A worker runs it in a moment: it reads which days the stream needs (today, read
again every cycle for its new pictures, then every past day since the newest one
recorded done, or ``backfill_days`` back on a new archive, as ``draydog watch``
does) and sends one ``archive_day`` per day to the queue, where any worker takes
them. A day recorded done is never sent again.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from modules.database import days as day_records
from modules.site.urls import DEFAULT_TIMEZONE, terminal_today, validate_name
from modules.tasks.app import ARCHIVE_DAY, WATCH_STREAM, app

logger = logging.getLogger(__name__)


def days_to_read(
    terminal: str, stream: str, today: date, backfill_days: int
) -> list[date]:
    """Today first, then the past days not recorded done, oldest first."""
    newest = day_records.newest_done_day(terminal, stream)
    if newest is None:
        first = today - timedelta(days=backfill_days)
    else:
        first = min(newest + timedelta(days=1), today)
    past = [first + timedelta(days=n) for n in range((today - first).days)]
    done: set[date] = set()
    if past:
        done = day_records.days_with_status(terminal, stream, past[0], past[-1])
    return [today] + [day for day in past if day not in done]


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
    wanted = days_to_read(terminal, stream, terminal_today(timezone), backfill_days)
    options: dict[str, Any] = {} if queue is None else {"queue": queue}
    for day in wanted:
        app.send_task(ARCHIVE_DAY, args=[terminal, stream, day.isoformat()], **options)
    logger.info("%s %s: %d days sent", terminal, stream, len(wanted))
    return [day.isoformat() for day in wanted]
