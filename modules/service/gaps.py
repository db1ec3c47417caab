"""What the archive lacks and what the cameras lack, per stream and day (``draydog gaps``).

The archive lacks a day it never archived, a day with fewer pictures stored than
the site listed (``archive_days``), pictures that failed, and it disagrees with
itself where rows have no file or files no row. Pictures kept only as thumbnails
are listed but lack nothing the site offers (it served no full-size picture).
Camera outages are holes in a stream's rhythm on days the archive holds whole.

All counting is done by the database per day (see :mod:`modules.database.coverage`);
only the rows-and-files check lists the archive (a folder or a bucket, through its
Storage), and only the day folders of the range.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from modules.database import coverage, days, models
from modules.database.coverage import DayCoverage, DayRecordRow
from modules.downloader.archive import day_picture_keys, key_of_stored, stored_days
from modules.site.urls import DEFAULT_TIMEZONE, terminal_today
from modules.storage import LocalStorage, Storage
from modules.service.outages import (
    DEFAULT_FACTOR,
    Outage,
    Rhythm,
    find_outages,
    measure_rhythm,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamDay:
    """One terminal, stream and day."""

    terminal: str
    stream: str
    day: date


@dataclass(frozen=True)
class ShortDay:
    """A day whose record says the archive does not hold all the site listed."""

    terminal: str
    stream: str
    day: date
    status: str
    listed: int
    stored: int
    failed: int
    rows: int
    """Rows in the database for the day."""


@dataclass(frozen=True)
class ThumbnailDay:
    """A day with pictures kept only as thumbnails."""

    terminal: str
    stream: str
    day: date
    thumbnails: int


@dataclass(frozen=True)
class StreamRange:
    """The days looked at for one stream, and what the database holds of them."""

    terminal: str
    stream: str
    start: date
    end: date
    days_with_pictures: int
    pictures: int


@dataclass
class GapReport:
    """Everything ``gaps`` found; :attr:`lacking` decides the exit status."""

    streams: list[StreamRange] = field(default_factory=list)
    never_archived: list[StreamDay] = field(default_factory=list)
    short_days: list[ShortDay] = field(default_factory=list)
    thumbnails: list[ThumbnailDay] = field(default_factory=list)
    unverified: list[StreamDay] = field(default_factory=list)
    """Days with pictures but no record of what the site listed (``--no-browser``
    downloads, or archived before such records were kept)."""
    rows_without_files: list[str] = field(default_factory=list)
    files_without_rows: list[str] = field(default_factory=list)
    files_checked: bool = False
    outages: list[Outage] = field(default_factory=list)

    @property
    def failed_pictures(self) -> int:
        return sum(day.failed for day in self.short_days)

    @property
    def lacking(self) -> bool:
        """The archive lacks something the site offers, or its rows and files disagree."""
        return bool(
            self.never_archived
            or self.short_days
            or self.rows_without_files
            or self.files_without_rows
        )

    def add(self, other: GapReport) -> None:
        """Append ``other``'s findings (another stream's) to these."""
        for item in fields(self):
            mine = getattr(self, item.name)
            if isinstance(mine, list):
                mine.extend(getattr(other, item.name))

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready values (ISO dates and times, seconds)."""
        data = {
            name: [_plain(item) for item in getattr(self, name)]
            for name in (
                "streams",
                "never_archived",
                "short_days",
                "thumbnails",
                "unverified",
                "rows_without_files",
                "files_without_rows",
            )
        }
        data["outages"] = [
            {
                "terminal": outage.terminal,
                "stream": outage.stream,
                "last_before": outage.last_before.isoformat(),
                "first_after": outage.first_after.isoformat(),
                "seconds": outage.length.total_seconds(),
                "usual_seconds": outage.usual.total_seconds(),
            }
            for outage in self.outages
        ]
        return {
            "lacking": self.lacking,
            "failed_pictures": self.failed_pictures,
            "files_checked": self.files_checked,
            **data,
        }


def _plain(item: Any) -> Any:
    if isinstance(item, str):
        return item
    return {
        key: value.isoformat() if isinstance(value, date) else value
        for key, value in asdict(item).items()
    }


class NothingArchived(LookupError):
    """The selection has no pictures, no day records and no folder to look at."""


def find_gaps(
    *,
    start: date | None = None,
    end: date | None = None,
    terminal: str | None = None,
    stream: str | None = None,
    archive: Path | Storage | None = None,
    today: date | None = None,
    outage_factor: float = DEFAULT_FACTOR,
    source_timezone: str = DEFAULT_TIMEZONE,
) -> GapReport:
    """Look for gaps from ``start`` to ``end`` (inclusive) in every selected stream.

    By default each stream is looked at from its first day in the database (or the
    folder) to yesterday at the terminal, the last day that is over. ``archive``,
    the archive (a folder, or any Storage: a bucket), adds the rows-and-files check. ``today`` is the terminal's
    (a day not over yet is not short for pictures still to come).
    """
    today = today or terminal_today(source_timezone)
    last = end if end is not None else today - timedelta(days=1)
    if start is not None and start > last:
        raise ValueError(f"reversed range: {start} is after {last}")
    first_days = coverage.known_streams(terminal, stream)
    storage = _storage(archive)
    if storage is not None:
        for key, first in _folder_streams(storage, terminal, stream).items():
            first_days[key] = min(first, first_days.get(key, first))
    if terminal is not None and stream is not None and start is not None:
        first_days.setdefault((terminal, stream), start)
    if not first_days:
        raise NothingArchived("nothing archived for this selection")
    checked = storage is not None

    def check(item: tuple[tuple[str, str], date]) -> GapReport:
        (t, s), first = item
        part = GapReport(files_checked=checked)
        _check_stream(part, t, s, start or first, last, today, storage, outage_factor)
        return part

    streams = sorted(first_days.items())
    report = GapReport(files_checked=checked)
    readers = _readers(len(streams))
    if readers == 1:  # in this thread: an in-memory database is this thread's
        parts = list(map(check, streams))
    else:
        with ThreadPoolExecutor(readers) as pool:
            parts = list(pool.map(check, streams))
    for part in parts:
        report.add(part)
    return report


def _readers(streams: int) -> int:
    """Threads that look at streams at once: the database works on one stream's
    queries while Python sorts out another's (a 20-stream archive's gaps take two
    thirds of the time on two cores). One for an in-memory SQLite database, whose
    every connection is a database of its own."""
    if not models.allows_concurrent_readers():
        return 1
    return max(1, min(streams, (os.cpu_count() or 1) + 1, 4))


def _storage(archive: Path | Storage | None) -> Storage | None:
    if archive is None or isinstance(archive, Storage):
        return archive
    return LocalStorage(archive)


def _check_stream(
    report: GapReport,
    terminal: str,
    stream: str,
    start: date,
    end: date,
    today: date,
    archive: Storage | None,
    outage_factor: float,
) -> None:
    if start > end:
        return
    held, rhythm = _coverage_and_rhythm(terminal, stream, start, end, outage_factor)
    by_day = {day.day: day for day in held}
    records = {
        row.day: row for row in coverage.archive_days(terminal, stream, start, end)
    }
    report.streams.append(
        StreamRange(
            terminal, stream, start, end, len(held), sum(d.pictures for d in held)
        )
    )
    lacking: set[date] = set()
    for day in _days(start, end):
        record, have = records.get(day), by_day.get(day)
        if record is None:
            if have is None:
                report.never_archived.append(StreamDay(terminal, stream, day))
                lacking.add(day)
            else:
                report.unverified.append(StreamDay(terminal, stream, day))
        elif _is_short(record, today):
            rows = have.pictures if have is not None else 0
            report.short_days.append(
                ShortDay(
                    terminal,
                    stream,
                    day,
                    record.status,
                    record.listed,
                    record.stored,
                    record.failed,
                    rows,
                )
            )
            lacking.add(day)
        if have is not None and have.thumbnails:
            report.thumbnails.append(
                ThumbnailDay(terminal, stream, day, have.thumbnails)
            )
    empty = {day for day, record in records.items() if record.status == days.EMPTY}
    if rhythm is not None:
        report.outages.extend(
            find_outages(
                terminal,
                stream,
                held,
                rhythm,
                not_the_cameras=lacking,
                empty_days=empty,
            )
        )
    if archive is not None:
        _compare_rows_and_files(report, archive, terminal, stream, start, end)


def _coverage_and_rhythm(
    terminal: str, stream: str, start: date, end: date, factor: float
) -> tuple[list[DayCoverage], Rhythm | None]:
    """The days' counts, with the time slices of the stream's rhythm in the same pass.

    The rhythm is measured first on days spread over the range; when those days
    hold too few pictures, on the days found to have pictures, counted again.
    """
    rhythm = measure_rhythm(terminal, stream, list(_days(start, end)), factor)
    width = rhythm.slice_seconds if rhythm is not None else None
    held = coverage.day_coverage(terminal, stream, start, end, slice_seconds=width)
    if rhythm is None and held:
        rhythm = measure_rhythm(terminal, stream, [d.day for d in held], factor)
        if rhythm is not None:
            held = coverage.day_coverage(
                terminal, stream, start, end, slice_seconds=rhythm.slice_seconds
            )
    return held, rhythm


def _is_short(record: DayRecordRow, today: date) -> bool:
    """Whether a day's record says pictures the site listed are missing."""
    if record.status in days.DONE:
        return False
    if record.status == days.FAILED or record.failed or record.stored < record.listed:
        return True
    # Partial with all listed stored: short once the day is over (never re-read after).
    return bool(record.day < today)


def _days(start: date, end: date) -> Iterator[date]:
    for n in range((end - start).days + 1):
        yield start + timedelta(days=n)


def _folder_streams(
    archive: Storage, terminal: str | None, stream: str | None
) -> dict[tuple[str, str], date]:
    """The (terminal, stream) folders of the archive, each with its first day folder."""
    found: dict[tuple[str, str], date] = {}
    for folder in stored_days(archive, terminal, stream):
        key = (folder.terminal, folder.stream)
        found[key] = min(folder.day, found.get(key, folder.day))
    return found


def _compare_rows_and_files(
    report: GapReport,
    archive: Storage,
    terminal: str,
    stream: str,
    start: date,
    end: date,
) -> None:
    """Rows and files compared by key, so the archive may be mounted anywhere; listed
    by location (full paths, or ``s3://`` URLs)."""
    files: set[str] = set()
    for folder in stored_days(archive, terminal, stream):
        if start <= folder.day <= end:
            files.update(day_picture_keys(archive, folder))
    rows = {
        key
        for stored in coverage.filepaths(terminal, stream, start, end)
        if (key := key_of_stored(archive, stored)) is not None
    }
    report.rows_without_files.extend(_located(archive, sorted(rows - files)))
    report.files_without_rows.extend(_located(archive, sorted(files - rows)))


def _located(archive: Storage, keys: list[str]) -> list[str]:
    """The keys' locations; a folder's by its real path (symlinks resolved), as before."""
    if isinstance(archive, LocalStorage):
        full = archive.root.resolve()
        return [str(full / key) for key in keys]
    return [archive.location(key) for key in keys]
