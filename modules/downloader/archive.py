"""Where a picture lives on disk, and walking an archive folder back into records.

Layout: ``<root>/<terminal>/<stream>/<YYYY-MM-DD>/<stream>_<YYYYMMDDTHHMMSS>[_thumb].jpg``
by the picture's own wall-clock time, with no ``:`` so it is valid on every OS.
The names carry everything a database row needs, which is what makes ``reindex`` work.

A wall-clock time of the repeated autumn hour names two instants, so there the stamp
carries the UTC offset of its occurrence (``in_gate_20251102T010500-0800.jpg``) and
the two pictures never share a file. A name without an offset in that hour (written
before offsets were) is read as the first occurrence, as it was recorded then.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from modules.database.keys import ArchiveRoot, is_key
from modules.storage import InvalidKey, LocalStorage, Storage
from modules.storage.base import validate_key
from modules.storage.base import HOST_TAG, PART_SUFFIX
from modules.site.urls import (
    DEFAULT_TIMEZONE,
    is_repeated_wall_time,
    utc_to_wall_clock,
    validate_name,
    wall_clock_to_utc,
)

logger = logging.getLogger(__name__)

STAMP_FORMAT = "%Y%m%dT%H%M%S"
THUMB_MARK = "_thumb"
STALE_PART_SECONDS = 3600
_FILE_RE = re.compile(
    r"(?P<stream>[a-z0-9_-]+)_(?P<stamp>\d{8}T\d{6})"
    r"(?:(?P<sign>[+-])(?P<hours>\d{2})(?P<minutes>\d{2}))?(?P<thumb>_thumb)?\.jpg"
)
_PART_OWNER_RE = re.compile(r"\.(?P<host>[^.]+)-(?P<pid>\d+)-[0-9a-f]{8}\.part$")


def file_name(
    stream: str,
    wall_time: datetime,
    thumbnail: bool = False,
    *,
    source_timezone: str = DEFAULT_TIMEZONE,
) -> str:
    """``<stream>_<YYYYMMDDTHHMMSS>[±HHMM][_thumb].jpg`` for a picture's time.

    ``wall_time`` is naive wall-clock time at the terminal (``fold=1`` for the second
    occurrence of a repeated hour) or an aware instant. Only a repeated-hour time gets
    the offset, so every other name stays as archives already have it.
    """
    mark = THUMB_MARK if thumbnail else ""
    wall = utc_to_wall_clock(wall_time, source_timezone)
    stamp = wall.strftime(STAMP_FORMAT)
    if is_repeated_wall_time(wall.replace(fold=0), source_timezone):
        stamp += _offset_text(wall_clock_to_utc(wall, source_timezone), wall)
    return f"{validate_name(stream, 'stream')}_{stamp}{mark}.jpg"


def _offset_text(instant: datetime, wall: datetime) -> str:
    """``-0700`` for the UTC offset that takes ``instant`` to naive ``wall``."""
    minutes = round((wall - instant.replace(tzinfo=None)).total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def day_folder(root: Path, terminal: str, stream: str, wall_time: datetime) -> Path:
    """The folder of one terminal, stream and (wall-clock) day (naive wall time)."""
    validate_name(terminal, "terminal")
    validate_name(stream, "stream")
    return root / terminal / stream / wall_time.date().isoformat()


def day_prefix(terminal: str, stream: str, day: date) -> str:
    """The key prefix of one terminal, stream and day: ``<terminal>/<stream>/<YYYY-MM-DD>/``."""
    validate_name(terminal, "terminal")
    validate_name(stream, "stream")
    return f"{terminal}/{stream}/{day.isoformat()}/"


def picture_key(
    terminal: str,
    stream: str,
    wall_time: datetime,
    thumbnail: bool = False,
    *,
    source_timezone: str = DEFAULT_TIMEZONE,
) -> str:
    """A picture's key: its path relative to the archive root (see picture_path)."""
    wall = utc_to_wall_clock(wall_time, source_timezone)
    return day_prefix(terminal, stream, wall.date()) + file_name(
        stream, wall, thumbnail, source_timezone=source_timezone
    )


def legacy_picture_key(
    terminal: str,
    stream: str,
    wall_time: datetime,
    thumbnail: bool = False,
    *,
    source_timezone: str = DEFAULT_TIMEZONE,
) -> str | None:
    """The key of :func:`legacy_picture_path`, or None."""
    path = legacy_picture_path(
        Path("."),
        terminal,
        stream,
        wall_time,
        thumbnail,
        source_timezone=source_timezone,
    )
    return None if path is None else path.as_posix()


def picture_path(
    root: Path,
    terminal: str,
    stream: str,
    wall_time: datetime,
    thumbnail: bool = False,
    *,
    source_timezone: str = DEFAULT_TIMEZONE,
) -> Path:
    """Where a picture is stored in an archive rooted at ``root`` (see file_name)."""
    wall = utc_to_wall_clock(wall_time, source_timezone)
    return day_folder(root, terminal, stream, wall) / file_name(
        stream, wall, thumbnail, source_timezone=source_timezone
    )


def legacy_picture_path(
    root: Path,
    terminal: str,
    stream: str,
    wall_time: datetime,
    thumbnail: bool = False,
    *,
    source_timezone: str = DEFAULT_TIMEZONE,
) -> Path | None:
    """The offset-less name a first-occurrence repeated-hour picture had before, else None.

    Such a file is that picture (it was recorded as the first occurrence), so a re-run
    finds it present instead of storing and recording it a second time.
    """
    wall = utc_to_wall_clock(wall_time, source_timezone)
    if wall.fold or not is_repeated_wall_time(wall, source_timezone):
        return None
    mark = THUMB_MARK if thumbnail else ""
    name = f"{validate_name(stream, 'stream')}_{wall.strftime(STAMP_FORMAT)}{mark}.jpg"
    return day_folder(root, terminal, stream, wall) / name


@dataclass(frozen=True)
class ArchivedPicture:
    """A picture file found in an archive, with what its path says."""

    path: Path
    terminal: str
    stream: str
    wall_time: datetime
    """Naive wall-clock time at the terminal, as the name has it."""
    is_thumbnail: bool
    utc_offset: timedelta | None = None
    """The offset a repeated-hour name carries, which says which occurrence it is."""

    def timestamp(self, source_timezone: str = DEFAULT_TIMEZONE) -> datetime:
        """The capture instant, aware UTC: by the name's offset when it has one."""
        if self.utc_offset is not None:
            return self.wall_time.replace(tzinfo=timezone(self.utc_offset)).astimezone(
                timezone.utc
            )
        return wall_clock_to_utc(self.wall_time, source_timezone)


def read_picture_path(path: Path) -> ArchivedPicture | None:
    """What an archive path says about its picture, or None if it is not a picture of the layout."""
    match = _FILE_RE.fullmatch(path.name)
    if match is None or len(path.parts) < 4:
        return None
    stream, day, terminal = (
        path.parent.parent.name,
        path.parent.name,
        path.parent.parent.parent.name,
    )
    if match["stream"] != stream:
        return None
    try:
        validate_name(terminal, "terminal")
        validate_name(stream, "stream")
        wall_time = datetime.strptime(match["stamp"], STAMP_FORMAT)
    except ValueError:
        return None
    if wall_time.date().isoformat() != day:
        return None
    offset = None
    if match["sign"] is not None:
        hours, minutes = int(match["hours"]), int(match["minutes"])
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        if match["sign"] == "-":
            offset = -offset
    return ArchivedPicture(
        path, terminal, stream, wall_time, match["thumb"] is not None, offset
    )


def walk_archive(root: Path) -> Iterator[ArchivedPicture]:
    """Every picture under ``root`` that follows the layout, in a stable order; others are skipped."""
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        for name in sorted(names):
            if not name.endswith(".jpg"):
                continue
            found = read_picture_path(Path(folder) / name)
            if found is None:
                logger.debug(
                    "skipping %s: not a picture of the archive layout",
                    Path(folder) / name,
                )
                continue
            yield found


@dataclass(frozen=True)
class DayFolder:
    """``<root>/<terminal>/<stream>/<YYYY-MM-DD>``: one stream's pictures of one day."""

    terminal: str
    stream: str
    day: date
    path: Path


@dataclass(frozen=True)
class StoredDay:
    """One stream's day in a storage: its key prefix ``<terminal>/<stream>/<YYYY-MM-DD>/``."""

    terminal: str
    stream: str
    day: date

    @property
    def prefix(self) -> str:
        return day_prefix(self.terminal, self.stream, self.day)


def stored_days(
    storage: Storage, terminal: str | None = None, stream: str | None = None
) -> Iterator[StoredDay]:
    """The storage's day folders (of one terminal or stream, if given), in order, by
    listing folders only (on S3: a delimited listing, never every object)."""
    for terminal_name in storage.folders(""):
        if terminal is not None and terminal_name != terminal:
            continue
        for stream_name in storage.folders(f"{terminal_name}/"):
            if stream is not None and stream_name != stream:
                continue
            for name in storage.folders(f"{terminal_name}/{stream_name}/"):
                try:
                    day = date.fromisoformat(name)
                    validate_name(terminal_name, "terminal")
                    validate_name(stream_name, "stream")
                except ValueError:
                    continue
                yield StoredDay(terminal_name, stream_name, day)


def day_picture_keys(storage: Storage, day: StoredDay) -> list[str]:
    """The keys of a stored day's pictures that follow the layout, in key order."""
    keys = []
    for key in storage.keys(day.prefix):
        if not key.endswith(".jpg") or read_picture_path(Path(key)) is None:
            logger.debug("skipping %s: not a picture of the archive layout", key)
            continue
        keys.append(key)
    return keys


def stored_totals(storage: Storage) -> dict[tuple[str, str], tuple[int, int]]:
    """The pictures of the layout a storage holds, (count, bytes) per (terminal, stream),
    by listing it with sizes (on S3 a thousand objects a request)."""
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for terminal in storage.folders(""):
        for stream in storage.folders(f"{terminal}/"):
            count = size = 0
            for key, object_size in storage.list(f"{terminal}/{stream}/"):
                if key.endswith(".jpg") and read_picture_path(Path(key)) is not None:
                    count += 1
                    size += object_size
            if count:
                totals[(terminal, stream)] = (count, size)
    return totals


def key_of_stored(storage: Storage, stored: str) -> str | None:
    """The key a row's stored ``filepath`` names in ``storage``: itself when it is a
    key, the path relative to a folder's root when it is an absolute path under it
    (written before keys were); None for anything else: an absolute path outside
    the archive, another store's URL (``s3://...``), a path that is no key."""
    if isinstance(storage, LocalStorage):
        key = ArchiveRoot.of(storage.root).key_of_stored(stored)
    else:
        key = None if os.path.isabs(stored) else stored
    if key is None or not is_key(key):
        return None
    try:
        return validate_key(key)
    except InvalidKey:
        return None


def day_folders(
    root: Path, terminal: str | None = None, stream: str | None = None
) -> Iterator[DayFolder]:
    """The archive's day folders (of one terminal or stream, if given), in order.

    Lets ``gaps`` and ``prune`` visit only the days they look at, not the whole tree.
    """
    for terminal_dir in _subfolders(root):
        if terminal is not None and terminal_dir.name != terminal:
            continue
        for stream_dir in _subfolders(terminal_dir):
            if stream is not None and stream_dir.name != stream:
                continue
            for folder in _subfolders(stream_dir):
                try:
                    day = date.fromisoformat(folder.name)
                except ValueError:
                    continue
                yield DayFolder(terminal_dir.name, stream_dir.name, day, folder)


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(entry for entry in folder.iterdir() if entry.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def remove_stale_parts(folder: Path, max_age: float = STALE_PART_SECONDS) -> int:
    """Delete ``.part`` files a dead process left (killed before its cleanup could run).

    A part of this host whose process is gone is removed at once; any other only
    once it is older than ``max_age`` (it may belong to a live worker on another machine).
    """
    if not folder.is_dir():
        return 0
    removed = 0
    now = time.time()
    for part in folder.glob(f".*{PART_SUFFIX}"):
        owner = _PART_OWNER_RE.search(part.name)
        dead_here = (
            owner is not None
            and owner["host"] == HOST_TAG
            and not _alive(int(owner["pid"]))
        )
        try:
            old = now - part.stat().st_mtime > max_age
            if dead_here or old:
                part.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        logger.info("removed %d stale .part file(s) in %s", removed, folder)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
