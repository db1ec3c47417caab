"""Archives with known contents, written directly (files under the layout, rows, day records).

For the tests of ``gaps`` and ``prune`` whose subject is the SQL and the folder
walk, not the download: a picture every 10 minutes at :07 past, 144 a day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from modules.database import days, queries
from modules.downloader.archive import picture_path

TERMINAL = "apm"
STREAM = "in_gate"
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
D1 = date(2025, 9, 1)
PICTURE = b"\xff\xd8 picture \xff\xd9"


def day(n: int) -> date:
    """``D1 + n - 1``: day(1) is D1."""
    return D1 + timedelta(days=n - 1)


def wall_times(on: date) -> list[datetime]:
    """The 144 wall-clock capture times of a day (naive, at the terminal)."""
    start = datetime(on.year, on.month, on.day, 0, 0, 7)
    return [start + timedelta(minutes=10 * i) for i in range(144)]


def instant(wall: datetime) -> datetime:
    return wall.replace(tzinfo=LOS_ANGELES).astimezone(timezone.utc)


@dataclass
class Archive:
    """A folder and the rows written for it."""

    root: Path
    paths: dict[datetime, Path] = field(default_factory=dict)

    def store(
        self,
        walls: Iterable[datetime],
        *,
        stream: str = STREAM,
        thumbnails: Sequence[datetime] = (),
        rows: bool = True,
    ) -> list[Path]:
        """Write the pictures' files and (unless ``rows`` is False) their rows."""
        written, records = [], []
        for wall in walls:
            thumb = wall in thumbnails
            path = picture_path(self.root, TERMINAL, stream, wall, thumb).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(PICTURE)
            self.paths[wall] = path
            written.append(path)
            records.append(
                {
                    "filepath": str(path),
                    "camera_id": stream,
                    "terminal": TERMINAL,
                    "timestamp": instant(wall),
                    "file_size": path.stat().st_size,
                    "is_thumbnail": thumb,
                }
            )
        if rows:
            result = queries.insert_images(records)
            assert not result.failed
        return written


def record(
    on: date,
    status: str,
    listed: int,
    stored: int,
    *,
    failed: int = 0,
    thumbnails: int = 0,
    stream: str = STREAM,
) -> None:
    days.record_day(
        TERMINAL,
        stream,
        on,
        status=status,
        listed=listed,
        stored=stored,
        failed=failed,
        thumbnails=thumbnails,
    )


def outage_hours(on: date, first_hour: int, last_hour: int) -> set[datetime]:
    """The day's capture times from ``first_hour``:00 to before ``last_hour``:00."""
    return {t for t in wall_times(on) if first_hour <= t.hour < last_hour}
