"""What the archive holds per stream and day, computed by the database (``gaps``, ``stats``, the plot).

Every query groups by ``images.local_day`` over the index
``(terminal, camera_id, local_day, timestamp)``, so the database reads the index,
not the table, and hands back one row per day (or per hour, or per hole), never
one per picture.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session, aliased

from modules.database.models import (
    LOCAL_DAY_TIMEZONE,
    THUMBNAIL,
    ArchiveDay,
    Image,
    read_scope,
)

logger = logging.getLogger(__name__)

_IN_LIST = 500
"""Days per ``IN (...)`` list, well under every driver's parameter limit."""


@dataclass(frozen=True)
class DayCoverage:
    """One stream's pictures of one day at the terminal."""

    terminal: str
    stream: str
    day: date
    pictures: int
    thumbnails: int
    first: datetime
    last: datetime
    filled_slices: int | None = None
    """How many slices of time (of the width asked for) hold a picture, when asked."""


def known_streams(
    terminal: str | None = None, stream: str | None = None
) -> dict[tuple[str, str], date]:
    """Every (terminal, stream) with pictures or day records, and its first day.

    The pictures' streams are found by seeking the index from one stream to the
    next (its first entry is the stream's first day), not by reading every entry.
    """
    found: dict[tuple[str, str], date] = {}
    with read_scope() as session:
        after: tuple[str, str] | None = None
        while (row := _next_stream(session, after, terminal, stream)) is not None:
            after = (row[0], row[1])
            found[after] = _known(row[2])
        records = (
            select(ArchiveDay.terminal, ArchiveDay.camera_id, func.min(ArchiveDay.day))
            .where(*_stream_filter(ArchiveDay, terminal, stream))
            .group_by(ArchiveDay.terminal, ArchiveDay.camera_id)
        )
        for row_terminal, row_stream, first in session.execute(records):
            key = (row_terminal, row_stream)
            found[key] = min(first, found.get(key, first))
    return found


def _next_stream(
    session: Session,
    after: tuple[str, str] | None,
    terminal: str | None,
    stream: str | None,
) -> Any:
    """The first (terminal, stream, local_day) of the index past the stream ``after``.

    The same terminal's next stream first, then the next terminal: each is a seek
    (a row-value ``>`` would make SQLite step over the whole of ``after``'s entries).
    """
    base = _stream_filter(Image, terminal, stream) + [Image.local_day.is_not(None)]
    steps: list[list[Any]] = [[]]
    if after is not None:
        steps = [
            [Image.terminal == after[0], Image.camera_id > after[1]],
            [Image.terminal > after[0]],
        ]
    for step in steps:
        row = session.execute(
            select(Image.terminal, Image.camera_id, Image.local_day)
            .where(*base, *step)
            .order_by(Image.terminal, Image.camera_id, Image.local_day)
            .limit(1)
        ).first()
        if row is not None:
            return row
    return None


def _stream_filter(model: Any, terminal: str | None, stream: str | None) -> list[Any]:
    conditions = []
    if terminal is not None:
        conditions.append(model.terminal == terminal)
    if stream is not None:
        conditions.append(model.camera_id == stream)
    return conditions


def _days_of(terminal: str, stream: str, start: date, end: date) -> list[Any]:
    return [
        Image.terminal == terminal,
        Image.camera_id == stream,
        Image.local_day >= start,
        Image.local_day <= end,
    ]


def day_coverage(
    terminal: str,
    stream: str,
    start: date,
    end: date,
    *,
    slice_seconds: int | None = None,
) -> list[DayCoverage]:
    """The stream's days from ``start`` to ``end`` that have pictures, oldest first.

    With ``slice_seconds``, each day also says how many ``slice_seconds``-wide slices
    of time (counted from the epoch) hold a picture, in the same pass.

    A day's last picture is found by a seek to the end of its index entries, not by
    ``max()`` in the pass: the entries come in time order, so a running maximum
    would be copied at every one of them (a third of the pass on SQLite).
    """
    with read_scope() as session:
        columns: list[Any] = [
            Image.local_day.label("day"),
            func.count().label("pictures"),
            func.min(Image.timestamp).label("first"),
        ]
        if slice_seconds is not None:
            number = _epoch_seconds(session, Image.timestamp) // slice_seconds
            columns.append(func.count(number.distinct()).label("slices"))
        counted = (
            select(*columns)
            .where(*_days_of(terminal, stream, start, end))
            .group_by(Image.local_day)
            .subquery("counted")
        )
        same_day = aliased(Image)
        last = (
            select(func.max(same_day.timestamp))
            .where(
                same_day.terminal == terminal,
                same_day.camera_id == stream,
                same_day.local_day == counted.c.day,
            )
            .scalar_subquery()
        )
        outputs: list[Any] = [
            counted.c.day,
            counted.c.pictures,
            counted.c.first,
            last,
        ]
        if slice_seconds is not None:
            outputs.append(counted.c.slices)
        days = select(*outputs).order_by(counted.c.day)
        thumbnails = (
            select(Image.local_day, func.count())
            .where(*_days_of(terminal, stream, start, end), THUMBNAIL)
            .group_by(Image.local_day)
        )
        thumbs = {day: int(count) for day, count in session.execute(thumbnails)}
        return [
            DayCoverage(
                terminal,
                stream,
                _known(row[0]),
                int(row[1]),
                thumbs.get(row[0], 0),
                _utc(row[2]),
                _utc(row[3]),
                int(row[4]) if slice_seconds is not None else None,
            )
            for row in session.execute(days)
        ]


def holes_within(
    terminal: str, stream: str, days: Sequence[date], longer_than: float
) -> list[tuple[datetime, datetime]]:
    """Consecutive pictures of the same day more than ``longer_than`` seconds apart.

    Consecutive by ``(local_day, timestamp)``, the index's order, which within a day
    is capture order: the window needs no sort.
    """
    holes: list[tuple[datetime, datetime]] = []
    with read_scope() as session:
        for part in _slices(days):
            previous = (
                func.lag(Image.timestamp)
                .over(partition_by=Image.local_day, order_by=Image.timestamp)
                .label("previous")
            )
            pictures = (
                select(Image.timestamp.label("taken"), previous)
                .where(
                    Image.terminal == terminal,
                    Image.camera_id == stream,
                    Image.local_day.in_(part),
                )
                .subquery()
            )
            apart = _seconds_between(session, pictures.c.previous, pictures.c.taken)
            query = (
                select(pictures.c.previous, pictures.c.taken)
                .where(apart > longer_than)
                .order_by(pictures.c.taken)
            )
            holes.extend((_utc(a), _utc(b)) for a, b in session.execute(query))
    return holes


def interval_counts(terminal: str, stream: str, days: Sequence[date]) -> dict[int, int]:
    """How often each interval (whole seconds) between consecutive pictures of a day occurs.

    For a stream's rhythm on a sample of days: a histogram of a few dozen rows,
    not a row per picture.
    """
    counts: dict[int, int] = {}
    with read_scope() as session:
        for part in _slices(days):
            previous = func.lag(Image.timestamp).over(
                partition_by=Image.local_day, order_by=Image.timestamp
            )
            pictures = (
                select(Image.timestamp.label("taken"), previous.label("previous"))
                .where(
                    Image.terminal == terminal,
                    Image.camera_id == stream,
                    Image.local_day.in_(part),
                )
                .subquery()
            )
            apart = cast(
                func.floor(
                    _seconds_between(session, pictures.c.previous, pictures.c.taken)
                ),
                BigInteger,
            ).label("apart")
            query = (
                select(apart, func.count())
                .where(pictures.c.previous.is_not(None))
                .group_by(apart)
            )
            for seconds, count in session.execute(query):
                counts[int(seconds)] = counts.get(int(seconds), 0) + int(count)
    return counts


def hourly_counts(
    terminal: str, stream: str, start: date, end: date
) -> list[tuple[datetime, int]]:
    """Pictures per UTC hour (the hour's start, aware UTC) of the stream's days in the range."""
    with read_scope() as session:
        hour = _utc_hour(session)
        query = (
            select(hour, func.count())
            .where(*_days_of(terminal, stream, start, end))
            .group_by(Image.local_day, hour)
        )
        counts: dict[datetime, int] = {}
        for value, count in session.execute(query):
            moment = _parse_hour(value)
            counts[moment] = counts.get(moment, 0) + int(count)
        return sorted(counts.items())


def filepaths(terminal: str, stream: str, start: date, end: date) -> set[str]:
    """The stored paths of the stream's pictures of the days in the range."""
    query = select(Image.filepath).where(*_days_of(terminal, stream, start, end))
    with read_scope() as session:
        return set(session.execute(query).scalars())


@dataclass(frozen=True)
class DayRecordRow:
    """A day record as ``gaps`` reads it."""

    day: date
    status: str
    listed: int
    stored: int
    failed: int


def archive_days(
    terminal: str, stream: str, start: date, end: date
) -> list[DayRecordRow]:
    """The stream's day records in the range, oldest first."""
    query = (
        select(
            ArchiveDay.day,
            ArchiveDay.status,
            ArchiveDay.listed,
            ArchiveDay.stored,
            ArchiveDay.failed,
        )
        .where(
            ArchiveDay.terminal == terminal,
            ArchiveDay.camera_id == stream,
            ArchiveDay.day >= start,
            ArchiveDay.day <= end,
        )
        .order_by(ArchiveDay.day)
    )
    with read_scope() as session:
        return [DayRecordRow(*row) for row in session.execute(query)]


def daily_totals(zone: str) -> list[tuple[date, str, str, int, int, int]]:
    """(day, terminal, stream, pictures, thumbnails, bytes) per day in ``zone``, oldest first.

    The terminals' own zone reads ``local_day`` through its index; another zone's
    day is computed by the database from the timestamp (on SQLite, which has no
    time-zone data, from the zone's offsets over the archive's time span).
    """
    with read_scope() as session:
        if zone == LOCAL_DAY_TIMEZONE:
            day: Any = Image.local_day
        else:
            day = _day_in_zone(session, zone).label("day")
        streams = (Image.terminal, Image.camera_id)
        totals = (
            select(day, *streams, func.count(), func.sum(Image.file_size))
            .group_by(*streams, day)
            .order_by(day, *streams)
        )
        # Thumbnails from their own small partial index: the main one stays enough.
        thumbnails = (
            select(day, *streams, func.count()).where(THUMBNAIL).group_by(*streams, day)
        )
        thumbs = {
            (_as_date(d), t, s): int(n) for d, t, s, n in session.execute(thumbnails)
        }
        rows = []
        for row_day, terminal, stream, n, size in session.execute(totals):
            key = (_as_date(row_day), terminal, stream)
            rows.append((*key, int(n), thumbs.get(key, 0), int(size or 0)))
        return rows


def _day_in_zone(session: Session, zone: str) -> ColumnElement[Any]:
    if _dialect(session) == "postgresql":
        return cast(func.timezone(zone, Image.timestamp), Date)
    span: Any = session.execute(
        select(func.min(Image.timestamp), func.max(Image.timestamp))
    ).one()
    if span[0] is None:
        return func.date(Image.timestamp)
    periods = offset_periods(ZoneInfo(zone), _utc(span[0]), _utc(span[1]))
    shifted = [
        func.date(Image.timestamp, f"{minutes:+d} minutes") for _, minutes in periods
    ]
    if len(periods) == 1:
        return shifted[0]
    return case(
        *[
            (Image.timestamp < until, day)
            for (until, _), day in zip(periods[:-1], shifted[:-1])
        ],
        else_=shifted[-1],
    )


def offset_periods(
    zone: ZoneInfo, first: datetime, last: datetime
) -> list[tuple[datetime, int]]:
    """The zone's UTC offsets (minutes) from ``first`` to ``last``: (until when, offset).

    Each offset holds until the instant paired with it (the last one to ``last``
    and beyond); found by stepping a day at a time and halving to the minute.
    """
    periods: list[tuple[datetime, int]] = []
    moment = first
    offset = _offset_minutes(zone, moment)
    while moment < last:
        step = min(moment + timedelta(days=1), last)
        if _offset_minutes(zone, step) != offset:
            low, high = moment, step
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if _offset_minutes(zone, middle) == offset:
                    low = middle
                else:
                    high = middle
            change = high.replace(second=0, microsecond=0)
            if _offset_minutes(zone, change) == offset:
                change += timedelta(minutes=1)
            periods.append((change, offset))
            offset = _offset_minutes(zone, change)
            step = change
        moment = step
    periods.append((last, offset))
    return periods


def _offset_minutes(zone: ZoneInfo, moment: datetime) -> int:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return int(offset.total_seconds() // 60)


def _as_date(value: Any) -> date:
    """A day the database computed: a date, or text on SQLite."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


# --- dialect-specific pieces ----------------------------------------------------------


def _epoch_seconds(session: Session, column: Any) -> ColumnElement[int]:
    """Whole seconds since the epoch: SQLite keeps text, PostgreSQL timestamptz."""
    if _dialect(session) == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    if sqlite3.sqlite_version_info >= (3, 38):
        return cast(func.unixepoch(column), BigInteger)  # a third cheaper than strftime
    return cast(func.strftime("%s", column), BigInteger)


def _seconds_between(session: Session, earlier: Any, later: Any) -> ColumnElement[Any]:
    if _dialect(session) == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * literal_column("86400.0")


def _utc_hour(session: Session) -> ColumnElement[Any]:
    if _dialect(session) == "postgresql":
        return func.to_char(
            func.timezone("UTC", Image.timestamp), "YYYY-MM-DD HH24"
        ).label("hour")
    return func.substr(Image.timestamp, 1, 13).label("hour")


def _parse_hour(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%d %H").replace(tzinfo=timezone.utc)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _utc(value: Any) -> datetime:
    """A value read through a window or aggregate, which skips the column type: aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a timestamp, got {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _known(day: date | None) -> date:
    """A day read for a range of days: never NULL (the range's condition excludes it)."""
    if day is None:
        raise ValueError("a picture without its local_day")
    return day


def _slices(days: Sequence[date]) -> list[list[date]]:
    ordered = sorted(set(days))
    return [ordered[i : i + _IN_LIST] for i in range(0, len(ordered), _IN_LIST)]
