"""A History that lists full-size URLs: the day is downloaded, not failed.

The site's History lists thumbnails; should it list the full-size pictures
instead, each is fetched as the full-size picture it is, with its thumbnail URL
derived for the fallback. The browser test reads the replica's page in headless
Chromium with the replica's ``history_form="full_size"`` knob.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modules.downloader.discovery import DiscoveryResult
from modules.replica import Faults, ReplicaServer
from modules.replica.page import PageOptions
from modules.site.urls import (
    InvalidImageURL,
    full_size_url,
    picture_urls,
    thumbnail_url,
)
from tests.discovery.conftest import TIMEOUT, browser_paths
from tests.downloader.conftest import (
    DAY,
    STREAM,
    DownloaderFactory,
    day_times,
    url_of,
)

FULL = "https://cdn.draydog.com/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg"
THUMB = "https://cdn.draydog.com/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate-thumbnail.jpeg"


def test_thumbnail_url_is_the_inverse_of_full_size_url() -> None:
    assert thumbnail_url(FULL) == THUMB
    assert full_size_url(thumbnail_url(FULL)) == FULL
    assert thumbnail_url(FULL + "?v=1") == THUMB + "?v=1"
    unix = "https://cdn.draydog.com/apm/2025-09-06/23/1757225254-in_gate.jpg"
    assert thumbnail_url(unix).endswith("/1757225254-in_gate-thumbnail.jpg")
    with pytest.raises(InvalidImageURL, match="already a thumbnail"):
        thumbnail_url(THUMB)
    with pytest.raises(InvalidImageURL, match="not a JPEG"):
        thumbnail_url("https://cdn.draydog.com/apm/picture.png")


def test_picture_urls_from_either_form() -> None:
    assert picture_urls(THUMB) == (FULL, THUMB)
    assert picture_urls(FULL) == (FULL, THUMB)


def test_a_page_url_that_is_full_size_is_wanted_as_full_size(
    make_downloader: DownloaderFactory, replica: ReplicaServer
) -> None:
    downloader = make_downloader(persist=False)
    wall = day_times()[0]
    full = url_of(replica, wall)
    iso = wall.isoformat()
    found = DiscoveryResult(DAY, STREAM, [iso], thumbnails={iso: full})
    wanted = downloader._wanted_from_page(STREAM, iso, found)
    assert (wanted.full_url, wanted.thumb_url) == (
        full,
        url_of(replica, wall, thumbnail=True),
    )


@pytest.fixture
def full_size_history(replica: ReplicaServer) -> Iterator[ReplicaServer]:
    """The replica whose History lists full-size URLs, for one test."""
    replica.page_options = PageOptions(history_form="full_size", render_delay=(0, 0.05))
    yield replica
    replica.page_options = PageOptions()


@pytest.mark.browser
def test_a_history_of_full_size_urls_downloads_the_day_with_thumbnail_fallback(
    full_size_history: ReplicaServer, make_downloader: DownloaderFactory
) -> None:
    replica = full_size_history
    chromium, chromedriver = browser_paths()
    times = day_times()
    no_full = frozenset(t.isoformat() for t in times[:3])
    replica.faults = Faults(missing_full=no_full)
    downloader = make_downloader(
        persist=False,
        timeout=TIMEOUT,
        chromium_path=chromium,
        chromedriver_path=chromedriver,
    )
    report = downloader.download_date(DAY, STREAM)
    assert report.error is None and report.ok, report.failed
    assert report.requested == report.downloaded == len(times)
    assert report.thumbnails == 3
    # The three without a full-size picture were fetched as their derived thumbnails.
    for wall in times[:3]:
        assert replica.requests_for(url_of(replica, wall, thumbnail=True)) == 1
    assert replica.requests_for(url_of(replica, times[5], thumbnail=True)) == 0


def test_the_replica_refuses_an_unknown_history_form() -> None:
    with pytest.raises(ValueError, match="history_form"):
        PageOptions(history_form="sideways")
