"""Fixtures of the watch tests: a replica on a clock the test moves, and watches pointed at it.

The clock starts at noon at the terminal on a day in the past (the downloader
refuses days after the real today), and the replica publishes a picture only once
the clock has passed its capture time, as the real cameras do. Browser tests skip
without Chromium or the real widget's assets, and fail instead under
DRAYDOG_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from modules.database import models, queries
from modules.downloader.browser import find_browser
from modules.downloader.discovery import BrowserUnavailable
from modules.downloader.fetch import PART_SUFFIX
from modules.replica import ReplicaServer, Schedule, widget
from modules.replica.page import PageOptions
from modules.service.config import WatchConfig
from modules.service.watch import Watch

TERMINAL = "apm"
STREAMS = ("in_gate", "out_gate")
START = datetime(2025, 9, 20, 19, 0, tzinfo=timezone.utc)
"""Noon on 2025-09-20 in Los Angeles."""
TODAY = date(2025, 9, 20)
FIRST_DAY = date(2025, 1, 1)
FAST_PAGE = PageOptions(render_delay=(0.05, 0.1), image_stagger=0.0)
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/x"

WatchFactory = Callable[..., Watch]


class MovingClock:
    """An aware UTC clock that moves only when told to."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def schedule(clock: MovingClock, **overrides: Any) -> Schedule:
    """The replica's cameras on ``clock``."""
    return Schedule(clock=clock, first_day=FIRST_DAY, **overrides)


def published(
    site: ReplicaServer, stream: str, day: date, until: datetime | None = None
) -> list[datetime]:
    """The capture times of ``day`` the replica has published (by ``until``, if given)."""
    times = site.schedule.timestamps(TERMINAL, stream, day)
    if until is None:
        return times
    cut = replace(site.schedule, clock=lambda: until)
    return cut.timestamps(TERMINAL, stream, day)


def require_browser() -> None:
    """Skip without Chromium or the widget's assets; fail under DRAYDOG_REQUIRE_BROWSER=1."""
    required = os.environ.get("DRAYDOG_REQUIRE_BROWSER") == "1"
    try:
        find_browser()
    except BrowserUnavailable as exc:
        if required:
            pytest.fail(f"DRAYDOG_REQUIRE_BROWSER=1 but {exc}")
        pytest.skip(f"no browser: {exc}")
    missing = widget.missing_assets()
    if missing:
        message = f"the real widget's assets are missing ({', '.join(missing)})"
        if required:
            pytest.fail(f"DRAYDOG_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)


@pytest.fixture
def clock() -> MovingClock:
    return MovingClock(START)


@pytest.fixture
def site(clock: MovingClock) -> Iterator[ReplicaServer]:
    """A replica whose cameras run on ``clock``."""
    require_browser()
    with ReplicaServer(schedule(clock), page_options=FAST_PAGE) as server:
        yield server


@pytest.fixture
def real_time_site() -> Iterator[ReplicaServer]:
    """A replica on the real clock, for a watch run as a process of its own (whose
    clock the test cannot move): its cameras began 30 days ago."""
    require_browser()
    first_day = date.today() - timedelta(days=30)
    with ReplicaServer(Schedule(first_day=first_day), page_options=FAST_PAGE) as server:
        yield server


@pytest.fixture
def archive_db(sqlite_url: str) -> str:
    """This test's SQLite archive, configured with quick retries."""
    models.configure(sqlite_url, retry_attempts=2, retry_delay=0.01)
    models.init_db()
    return sqlite_url


@pytest.fixture
def make_watch(
    site: ReplicaServer, clock: MovingClock, tmp_path: Path
) -> Iterator[WatchFactory]:
    """Watches on the replica and ``clock``; every one is closed after the test."""
    made: list[Watch] = []

    def make(**overrides: Any) -> Watch:
        settings: dict[str, Any] = {
            "app_url": site.app_url,
            "cdn_url": site.cdn_url,
            "dir": str(tmp_path / "images"),
            "backfill_days": 2,
            "timeout": 10.0,
            "workers": 4,
            "jitter": 0.0,
        }
        settings.update(overrides)
        watch = Watch(WatchConfig(**settings), clock=clock)
        made.append(watch)
        return watch

    yield make
    for watch in made:
        watch.close()


def assert_complete_files_have_one_row_each(root: Path, db: str) -> list[Path]:
    """After a stop: some pictures were complete, none is a ``.part`` or hidden file,
    and each has exactly one row in ``db``. The files."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert files, "no picture was complete before the signal"
    assert not [
        f for f in files if f.name.endswith(PART_SUFFIX) or f.name.startswith(".")
    ]
    models.configure(db)
    rows = [
        str(queries.image_location(r, root.resolve())) for r in queries.iter_images()
    ]
    assert sorted(rows) == [str(f.resolve()) for f in files]  # one row per file
    assert len(rows) == len(set(rows))
    return files
