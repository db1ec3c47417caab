"""download_date: discovery's own counts reach the day's report (real Chromium, the replica)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modules.database import days, models
from modules.replica.server import ReplicaServer
from tests.discovery.conftest import browser_downloader, expected

pytestmark = pytest.mark.browser

DAY = date(2025, 9, 10)


def test_foreign_images_are_counted_and_never_fetched(
    replica: ReplicaServer,
    page_options: Callable[..., None],
    tmp_path: Path,
) -> None:
    page_options(foreign_images=3, render_delay=(0.05, 0.1))
    replica.reset_counters()
    with browser_downloader(replica, tmp_path, persist=False) as downloader:
        report = downloader.download_date(DAY, "in_gate")
    assert report.foreign_ignored == 3
    assert report.downloaded == len(expected(DAY)) and report.ok
    # The browser loads the foreign thumbnails; the downloader fetches full-size
    # pictures, and only those of the day's own History.
    full_size = {
        r.path for r in replica.request_log if r.path.endswith("-in_gate.jpeg")
    }
    assert len(full_size) == len(expected(DAY))
    assert all(f"/{DAY.isoformat()}/" in path for path in full_size)


def test_fallback_page_pictures_it_could_not_load_are_a_failure_of_the_day(
    replica: ReplicaServer,
    faults: Callable[..., None],
    page_options: Callable[..., Any],
    tmp_path: Path,
) -> None:
    # The hand-written page has no Vue data: a picture whose thumbnail failed to
    # load has no URL, and the day's report says so.
    page_options(widget=False, render_delay=(0.05, 0.1))
    gone = expected(DAY)[:2]
    faults(missing=frozenset(gone))
    with browser_downloader(replica, tmp_path, persist=False) as downloader:
        report = downloader.download_date(DAY, "in_gate")
    assert report.requested == len(expected(DAY)) - 2
    assert report.failed == [(DAY.isoformat(), "2 pictures failed to load on the page")]
    assert not report.ok and not report.empty


def test_pictures_whose_files_are_gone_are_fetched_and_fail(
    widget_page: None,
    replica: ReplicaServer,
    faults: Callable[..., None],
    page_options: Callable[..., Any],
    tmp_path: Path,
) -> None:
    # On the real widget the page's data names every picture: the two whose files
    # are gone (full size and thumbnail) are asked for, and fail, by name.
    page_options(render_delay=(0.05, 0.1))
    day = DAY + timedelta(days=1)
    gone = expected(day)[:2]
    faults(missing=frozenset(gone))
    with browser_downloader(replica, tmp_path, persist=False) as downloader:
        report = downloader.download_date(day, "in_gate")
    assert report.requested == len(expected(day))
    assert report.downloaded == len(expected(day)) - 2
    assert len(report.failed) == 2
    assert all(any(stamp in entry for entry in report.failed) for stamp in gone)
    assert not report.ok


def test_thumbnails_that_fail_in_the_page_still_get_their_full_size_pictures(
    widget_page: None,
    replica: ReplicaServer,
    faults: Callable[..., None],
    page_options: Callable[..., Any],
    tmp_path: Path,
) -> None:
    page_options(render_delay=(0.05, 0.1))
    day = DAY + timedelta(days=2)
    faults(missing_thumbnail_rate=0.2, seed=3)
    no_thumbnail = [
        stamp
        for stamp in expected(day)
        if replica.faults.is_missing(
            "apm", "in_gate", datetime.fromisoformat(stamp), thumbnail=True
        )
    ]
    assert 10 <= len(no_thumbnail) < len(expected(day))  # the knob took
    with browser_downloader(replica, tmp_path, persist=False) as downloader:
        report = downloader.download_date(day, "in_gate")
    assert report.requested == report.downloaded == len(expected(day))
    assert report.thumbnails == 0 and report.failed == [] and report.ok
    names = {Path(f).name for f in report.files}
    for stamp in no_thumbnail:
        assert f"in_gate_{stamp.replace('-', '').replace(':', '')}.jpg" in names


def test_a_day_recorded_complete_is_not_read_again_in_the_browser(
    replica: ReplicaServer,
    page_options: Callable[..., None],
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    models.configure(sqlite_url)
    models.init_db()
    page_options(render_delay=(0.05, 0.1))
    with browser_downloader(replica, tmp_path, persist=False) as first:
        first.persist = True
        assert first.download_date(DAY, "in_gate").ok
    assert days.get_day("apm", "in_gate", DAY).status == "complete"  # type: ignore[union-attr]
    replica.reset_counters()
    with browser_downloader(replica, tmp_path, persist=False) as again:
        again.persist = True
        report = again.download_date(DAY, "in_gate")
        assert again._discovery is None  # no browser was started
    assert report.recorded == "complete" and report.requested == len(expected(DAY))
    assert replica.total_requests == 0
    with browser_downloader(replica, tmp_path, persist=False) as forced:
        forced.persist = True
        report = forced.download_date(DAY, "in_gate", force=True)
    assert report.recorded is None
    assert report.already_present == len(expected(DAY)) and report.downloaded == 0
