"""Fixtures of the downloader tests: a replica CDN on 127.0.0.1 and downloaders pointed at it.

The replica is shared by a test module (starting a server per test costs more than
the tests); every test gets it back with fresh faults, the pinned schedule and
zeroed request counters. Downloaders use tiny backoff delays and timeouts so that
retrying tests stay fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modules.database import models, queries
from modules.database.models import Image
from modules.downloader import DrayDogDownloader, build_image_url
from modules.replica import Faults, ReplicaServer, Schedule
from modules.replica.jpeg import picture_bytes

TODAY = date(2025, 9, 20)
DAY = date(2025, 9, 6)
SCHEDULE = Schedule(today=TODAY)
TERMINAL = "apm"
STREAM = "in_gate"
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/x"
"""A PostgreSQL URL on a closed port: every connection is refused at once."""

DownloaderFactory = Callable[..., DrayDogDownloader]


def day_times(day: date = DAY, stream: str = STREAM) -> list[datetime]:
    """The replica's capture times of one day (naive wall-clock times)."""
    return SCHEDULE.timestamps(TERMINAL, stream, day)


def times_over_days(
    count: int, first: date = DAY, stream: str = STREAM
) -> list[datetime]:
    """The first ``count`` capture times from ``first`` on, over as many days as needed."""
    found: list[datetime] = []
    day = first
    while len(found) < count:
        found.extend(day_times(day, stream))
        day += timedelta(days=1)
    return found[:count]


def url_of(
    server: ReplicaServer,
    wall: datetime,
    stream: str = STREAM,
    thumbnail: bool = False,
) -> str:
    """The replica URL of a picture (ISO form, as the downloader builds it)."""
    return build_image_url(server.cdn_url, TERMINAL, stream, wall, thumbnail)


def expected_bytes(
    wall: datetime,
    stream: str = STREAM,
    thumbnail: bool = False,
    size: int = Faults().picture_bytes,
) -> bytes:
    """What the replica serves for a picture."""
    return picture_bytes(TERMINAL, stream, wall, thumbnail=thumbnail, size=size)


def rows_under(root: Path) -> list[Image]:
    """The image rows whose files lie under ``root`` (the database may be shared), each
    with ``filepath`` read back as the file's full path (``queries.image_location``)."""
    base = root.resolve()
    rows = []
    for row in queries.list_images():
        full = queries.image_location(row, base)
        if full.is_relative_to(base):
            row.filepath = str(full)  # a detached copy: the row itself keeps its key
            rows.append(row)
    return rows


def files_under(root: Path) -> list[Path]:
    """Every file below ``root``, hidden ones (``.part``) included."""
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture(scope="module")
def replica_server() -> Iterator[ReplicaServer]:
    with ReplicaServer(schedule=SCHEDULE, faults=Faults()) as server:
        yield server


@pytest.fixture
def replica(replica_server: ReplicaServer) -> Iterator[ReplicaServer]:
    """The module's replica, with no faults and zeroed counters for this test."""
    replica_server.schedule = SCHEDULE
    replica_server.faults = Faults()
    replica_server.reset_counters()
    yield replica_server
    replica_server.schedule = SCHEDULE
    replica_server.faults = Faults()


@pytest.fixture
def make_downloader(
    replica: ReplicaServer, tmp_path: Path
) -> Iterator[DownloaderFactory]:
    """Builds downloaders on the replica (closed after the test); keywords override defaults."""
    made: list[DrayDogDownloader] = []

    def make(**overrides: Any) -> DrayDogDownloader:
        options: dict[str, Any] = {
            "download_dir": tmp_path / "images",
            "cdn_url": replica.cdn_url,
            "app_url": replica.app_url,
            "retry_delay": 0.01,
            "timeout": 2,
            "max_retries": 3,
        }
        options.update(overrides)
        downloader = DrayDogDownloader(**options)
        made.append(downloader)
        return downloader

    yield make
    for downloader in made:
        downloader.close()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> str:
    """A fresh SQLite database of this test, configured as the archive's.

    The suite's autouse fixture (``tests/conftest.py``) resets the engine afterwards.
    """
    models.configure(sqlite_url, retry_attempts=3, retry_delay=0.01)
    models.init_db()
    return sqlite_url


@pytest.fixture
def downloader(make_downloader: DownloaderFactory, sqlite_db: str) -> DrayDogDownloader:
    """A downloader on the replica that records into this test's SQLite database."""
    return make_downloader()


@pytest.fixture
def unreachable_db() -> str:
    """The archive configured to a database that refuses connections, retried quickly."""
    models.configure(UNREACHABLE_DB, retry_attempts=3, retry_delay=0.01)
    return UNREACHABLE_DB
