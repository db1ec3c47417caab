"""Each archived day's verdict (``archive_days``): what the site listed, what the archive stored.

The downloader records a day after each download of it; ``watch`` skips the days
that are done (complete or empty) and ``gaps`` reports the others. A day's
statuses:

- ``complete``: the day is over at the terminal and every picture the site listed
  is stored (full size or thumbnail);
- ``empty``: the day is over and the site confirmed it has no pictures;
- ``partial``: some pictures failed, or the day is not over yet;
- ``failed``: the page could not be read.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.orm import Session

from modules.database.models import (
    ArchiveDay,
    Image,
    read_scope,
    session_scope,
    upsert_insert,
    utcnow,
    with_db_retries,
)

logger = logging.getLogger(__name__)

COMPLETE, EMPTY, PARTIAL, FAILED = "complete", "empty", "partial", "failed"
STATUSES = frozenset({COMPLETE, EMPTY, PARTIAL, FAILED})
DONE = (COMPLETE, EMPTY)
"""The statuses of a day no later download can add to."""

_TABLE = cast(Table, ArchiveDay.__table__)


@dataclass(frozen=True)
class DayRecord:
    """One (terminal, stream, day) as last recorded."""

    terminal: str
    stream: str
    day: date
    status: str
    listed: int
    stored: int
    failed: int
    thumbnails: int
    updated_at: datetime


def record_day(
    terminal: str,
    stream: str,
    day: date,
    *,
    status: str,
    listed: int,
    stored: int,
    failed: int = 0,
    thumbnails: int = 0,
    session: Session | None = None,
) -> None:
    """Insert or replace the day's record (one statement, safe against concurrent writers).

    One exception: a ``failed`` read does not replace a ``complete`` or ``empty``
    record, since a page that could not be read says nothing about pictures already
    stored. Errors left after the transient-error retries are raised.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {sorted(STATUSES)}, not {status!r}")
    counts = {
        "listed": listed,
        "stored": stored,
        "failed": failed,
        "thumbnails": thumbnails,
    }
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, not {value!r}")
    values = {"status": status, **counts, "updated_at": utcnow()}

    def write(s: Session) -> None:
        insert = upsert_insert(s, _TABLE)
        stmt = insert.values(terminal=terminal, camera_id=stream, day=day, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["terminal", "camera_id", "day"],
            set_={name: getattr(insert.excluded, name) for name in values},
            where=~((insert.excluded.status == FAILED) & ArchiveDay.status.in_(DONE)),
        )
        s.execute(stmt)

    if session is not None:
        write(session)
        return

    def in_transaction() -> None:
        with session_scope() as own:
            write(own)

    with_db_retries(in_transaction, f"recording {terminal} {stream} {day}")


def get_day(terminal: str, stream: str, day: date) -> DayRecord | None:
    """The day's record, or None when it was never recorded."""
    query = select(ArchiveDay).where(_of(terminal, stream), ArchiveDay.day == day)
    with read_scope() as session:
        row = session.execute(query).scalar_one_or_none()
        return None if row is None else _record(row)


def days_with_status(
    terminal: str,
    stream: str,
    start: date,
    end: date,
    statuses: Collection[str] = DONE,
) -> set[date]:
    """The days from ``start`` to ``end`` (inclusive) whose status is one of ``statuses``."""
    query = select(ArchiveDay.day).where(
        _of(terminal, stream),
        ArchiveDay.day >= start,
        ArchiveDay.day <= end,
        ArchiveDay.status.in_(list(statuses)),
    )
    with read_scope() as session:
        return set(session.execute(query).scalars())


def newest_done_day(terminal: str, stream: str) -> date | None:
    """The newest day whose status is complete or empty, or None."""
    query = select(func.max(ArchiveDay.day)).where(
        _of(terminal, stream), ArchiveDay.status.in_(DONE)
    )
    with read_scope() as session:
        return session.execute(query).scalar_one_or_none()


def days_to_read(
    terminal: str,
    stream: str,
    today: date,
    backfill_days: int,
    known: Collection[date] = (),
) -> list[date]:
    """The days a stream still needs: today first (read again for its new pictures),
    then the past days not done, oldest first.

    Those are every day of the window, ``backfill_days`` back to yesterday, that is
    not recorded done (never recorded, ``partial`` or ``failed``: the site's History
    may still offer it, and a later done day must not hide it for good), plus every
    day since the newest one done when that is older than the window (a service
    stopped for a while catches up). ``known`` holds days this process saw done:
    they count as done, for the newest too.
    """
    newest = max(
        (d for d in (newest_done_day(terminal, stream), max(known, default=None)) if d),
        default=None,
    )
    first = first_day_to_read(today, backfill_days, newest)
    done: set[date] = set()
    if first < today:
        done = days_with_status(terminal, stream, first, today - timedelta(days=1))
    return past_days_to_read(today, first, done | set(known))


def first_day_to_read(today: date, backfill_days: int, newest: date | None) -> date:
    """The oldest day :func:`days_to_read` may return: the window's first day, or the
    day after the newest done one when that is older."""
    window = today - timedelta(days=backfill_days)
    return window if newest is None else min(window, newest + timedelta(days=1))


def past_days_to_read(today: date, first: date, done: Collection[date]) -> list[date]:
    """Today, then the days from ``first`` to yesterday that are not in ``done``."""
    past = (first + timedelta(days=n) for n in range((today - first).days))
    return [today] + [day for day in past if day not in done]


StoredKey = tuple[datetime, bool]
"""A stored picture of a stream: its capture instant (aware UTC) and whether it is a thumbnail."""


def stored_pictures(
    terminal: str, stream: str, local_days: Collection[date]
) -> dict[StoredKey, tuple[int | None, str | None]]:
    """The size and SHA-256 of every picture stored of ``stream`` on ``local_days``.

    Keyed by the picture's identity (instant and kind), not its file path, so the
    answer holds wherever the archive is mounted. One query per 500 days, on the
    (terminal, camera, local day) index.
    """
    wanted = sorted(set(local_days))
    found: dict[StoredKey, tuple[int | None, str | None]] = {}
    with read_scope() as session:
        for start in range(0, len(wanted), 500):
            query = select(
                Image.timestamp, Image.is_thumbnail, Image.file_size, Image.sha256
            ).where(
                Image.terminal == terminal,
                Image.camera_id == stream,
                Image.local_day.in_(wanted[start : start + 500]),
            )
            for instant, thumbnail, size, sha256 in session.execute(query):
                found[(instant, bool(thumbnail))] = (size, sha256)
    return found


def _of(terminal: str, stream: str) -> ColumnElement[bool]:
    return (ArchiveDay.terminal == terminal) & (ArchiveDay.camera_id == stream)


def _record(row: ArchiveDay) -> DayRecord:
    return DayRecord(
        row.terminal,
        row.camera_id,
        row.day,
        row.status,
        row.listed,
        row.stored,
        row.failed,
        row.thumbnails,
        row.updated_at,
    )
