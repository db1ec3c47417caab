"""Where a picture lives on disk, and walking an archive folder back into records.

Layout: ``<root>/<terminal>/<stream>/<YYYY-MM-DD>/<stream>_<YYYYMMDDTHHMMSS>[_thumb].jpg``
by the picture's own wall-clock time, with no ``:`` so it is valid on every OS.
The names carry everything a database row needs, which is what makes ``reindex`` work.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from modules.downloader.fetch import HOST_TAG, PART_SUFFIX
from modules.downloader.urls import validate_name

logger = logging.getLogger(__name__)

STAMP_FORMAT = "%Y%m%dT%H%M%S"
THUMB_MARK = "_thumb"
STALE_PART_SECONDS = 3600
_FILE_RE = re.compile(
    r"(?P<stream>[a-z0-9_-]+)_(?P<stamp>\d{8}T\d{6})(?P<thumb>_thumb)?\.jpg"
)
_PART_OWNER_RE = re.compile(r"\.(?P<host>[^.]+)-(?P<pid>\d+)-[0-9a-f]{8}\.part$")


def file_name(stream: str, wall_time: datetime, thumbnail: bool = False) -> str:
    """``<stream>_<YYYYMMDDTHHMMSS>[_thumb].jpg`` for a picture's wall-clock time."""
    mark = THUMB_MARK if thumbnail else ""
    return f"{validate_name(stream, 'stream')}_{wall_time.strftime(STAMP_FORMAT)}{mark}.jpg"


def day_folder(root: Path, terminal: str, stream: str, wall_time: datetime) -> Path:
    """The folder of one terminal, stream and (wall-clock) day."""
    validate_name(terminal, "terminal")
    validate_name(stream, "stream")
    return root / terminal / stream / wall_time.date().isoformat()


def picture_path(
    root: Path, terminal: str, stream: str, wall_time: datetime, thumbnail: bool = False
) -> Path:
    """Where a picture is stored in an archive rooted at ``root``."""
    return day_folder(root, terminal, stream, wall_time) / file_name(
        stream, wall_time, thumbnail
    )


@dataclass(frozen=True)
class ArchivedPicture:
    """A picture file found in an archive, with what its path says."""

    path: Path
    terminal: str
    stream: str
    wall_time: datetime
    is_thumbnail: bool


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
    return ArchivedPicture(
        path, terminal, stream, wall_time, match["thumb"] is not None
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
