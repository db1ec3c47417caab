"""A History whose items cannot be fetched is an error, never a silent empty day.

Items on another host than the CDN, or in a URL form the grammar does not know,
name no picture the downloader fetches. A History of nothing else is a page
failure; a History with some of them lists them as failures of the day. Headless
Chromium reads the replica's real-widget page with its ``history_form`` and
``unknown_images`` knobs; the day's record goes to a real SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from modules.database import days, models
from modules.downloader import DrayDogDownloader
from modules.downloader.discovery import DiscoveryResult, UnusableHistory
from modules.replica.server import ReplicaServer
from tests.discovery.conftest import browser_downloader, expected

DAY = date(2025, 9, 11)


@pytest.fixture
def archive_db(sqlite_url: str) -> str:
    models.configure(sqlite_url)
    models.init_db()
    return sqlite_url


@pytest.mark.browser
@pytest.mark.parametrize(
    ("form", "example"),
    [("foreign", "http://localhost:"), ("unknown", "/in_gate-20250911T")],
)
def test_a_history_of_nothing_usable_is_a_page_failure(
    widget_page: None,
    replica: ReplicaServer,
    page_options: Callable[..., None],
    archive_db: str,
    tmp_path: Path,
    form: str,
    example: str,
) -> None:
    page_options(history_form=form, render_delay=(0, 0.05))
    pictures = len(expected(DAY))
    with browser_downloader(replica, tmp_path, persist=True) as downloader:
        with pytest.raises(UnusableHistory) as raised:
            downloader.download_date(DAY, "in_gate")
        report = downloader.download_day_safely(DAY, "in_gate")
    message = str(raised.value)
    assert f"none of the History's {pictures} pictures can be fetched" in message
    assert example in message
    assert report.error is not None and not report.ok and not report.empty
    record = days.get_day("apm", "in_gate", DAY)
    assert record is not None and record.status == days.FAILED
    assert not list(tmp_path.rglob("*.jpg"))


@pytest.mark.browser
def test_unusable_items_beside_usable_ones_are_failures_of_the_day(
    widget_page: None,
    replica: ReplicaServer,
    page_options: Callable[..., None],
    archive_db: str,
    tmp_path: Path,
) -> None:
    # Two unknown-form items and two foreign mirrors of listed pictures.
    page_options(unknown_images=2, foreign_images=2, render_delay=(0, 0.05))
    with browser_downloader(replica, tmp_path, persist=True) as downloader:
        report = downloader.download_date(DAY, "in_gate")
    assert report.downloaded == len(expected(DAY))
    assert len(report.failed) == 2 and not report.ok
    for when, reason in report.failed:
        assert when == DAY.isoformat()
        assert reason.startswith("History item not a apm/in_gate picture URL")
        assert "/in_gate-20250911T" in reason
    assert report.foreign_ignored == 2  # mirrors: counted, not failures
    record = days.get_day("apm", "in_gate", DAY)
    assert record is not None and record.status == days.PARTIAL


def test_a_result_with_only_ignored_items_is_refused_by_the_downloader(
    replica: ReplicaServer, tmp_path: Path
) -> None:
    """Whatever discovery hands over: items seen, none usable, is no day of nothing."""
    found = DiscoveryResult(DAY, "in_gate", [], foreign=3, reads=2)
    downloader = DrayDogDownloader(
        download_dir=tmp_path, cdn_url=replica.cdn_url, persist=False
    )
    with downloader:
        with pytest.raises(UnusableHistory, match="3 on another host"):
            downloader._download_found(found, "in_gate", None, None)
