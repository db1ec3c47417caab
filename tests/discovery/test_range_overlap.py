"""A range reads the next day's page while this day's pictures download (real Chromium).

The replica logs every request with its query: a History request names its day,
so the tests read from the log when each day's page was read against when each
day's pictures were fetched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from modules.downloader.selenium_client import PictureOutcome, Stopped
from modules.replica.page import PageOptions
from modules.replica.server import ReplicaServer, RequestRecord
from tests.discovery.conftest import browser_downloader, expected

pytestmark = pytest.mark.browser

FIRST = date(2025, 9, 8)
DAYS = [FIRST + timedelta(days=n) for n in range(3)]
FAST = (0.05, 0.1)
"""The page's render delay in these tests: days read quickly."""
WAIT = 30.0
"""The bound on waiting for a request that overlapping reads make at once."""


@pytest.fixture
def fast_replica(
    widget_page: None, replica: ReplicaServer, page_options: Callable[..., Any]
) -> ReplicaServer:
    """The replica on the real widget, rendering fast, its request log empty."""
    page_options(render_delay=FAST)
    replica.reset_counters()
    return replica


def _history_read(log: list[RequestRecord], day: date) -> RequestRecord | None:
    """The first History request of ``day`` (the page's read of that day)."""
    for record in log:
        if record.path.endswith("/history") and f"date={day}" in record.query:
            return record
    return None


def _pictures(log: list[RequestRecord], day: date) -> list[RequestRecord]:
    """The full-size picture requests of ``day`` (the downloader's, not the page's)."""
    return [r for r in log if f"/{day}/" in r.path and r.path.endswith("-in_gate.jpeg")]


def _wait_for_read(replica: ReplicaServer, day: date) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if _history_read(replica.request_log, day) is not None:
            return True
        time.sleep(0.02)
    return False


def test_the_next_days_page_is_read_while_this_days_pictures_download(
    fast_replica: ReplicaServer, tmp_path: Path
) -> None:
    replica = fast_replica
    seen_next: dict[date, bool] = {}

    def progress_for(
        day: date, stream: str
    ) -> Callable[[PictureOutcome, int, int], None]:
        def progress(outcome: PictureOutcome, done: int, total: int) -> None:
            # Day N's downloads wait, at their first picture, for day N+1's page read:
            # only a range that reads ahead lets it happen.
            following = day + timedelta(days=1)
            if done == 1 and following in DAYS:
                seen_next[day] = _wait_for_read(replica, following)

        return progress

    with browser_downloader(replica, tmp_path, persist=False) as downloader:
        results = list(
            downloader.download_days(
                [(day, "in_gate") for day in DAYS], progress_for=progress_for
            )
        )
    assert [(day, stream) for day, stream, _ in results] == [
        (day, "in_gate") for day in DAYS
    ]
    for day, _, report in results:
        assert report.ok and report.downloaded == len(expected(day))
    assert seen_next == {DAYS[0]: True, DAYS[1]: True}
    log = replica.request_log
    for day, following in zip(DAYS, DAYS[1:]):
        read = _history_read(log, following)
        assert read is not None
        assert read.monotonic < _pictures(log, day)[-1].monotonic


def test_without_overlap_a_days_page_is_read_after_the_day_before_downloaded(
    fast_replica: ReplicaServer, tmp_path: Path
) -> None:
    replica = fast_replica
    with browser_downloader(replica, tmp_path, persist=False) as downloader:
        reports = downloader.download_date_range(
            DAYS[0], DAYS[-1], ["in_gate"], overlap=False
        )
    assert all(report.ok for report in reports.values())
    log = replica.request_log
    for day, following in zip(DAYS, DAYS[1:]):
        read = _history_read(log, following)
        assert read is not None
        assert read.monotonic > _pictures(log, day)[-1].monotonic


def _slow_pages_from_the_first_download(
    replica: ReplicaServer,
) -> Callable[[date, str], None]:
    """A progress_for that makes every History answer wait 30 s once the first
    day's downloads start: the second day's page is then read in the background."""

    def progress_for(day: date, stream: str) -> None:
        replica.page_options = PageOptions(render_delay=FAST, history_delay=30.0)

    return progress_for


def test_a_stop_while_the_next_page_is_read_ends_the_range(
    fast_replica: ReplicaServer, tmp_path: Path
) -> None:
    replica = fast_replica
    downloader = browser_downloader(replica, tmp_path, persist=False)

    def stop_once_the_next_read_starts() -> None:
        _wait_for_read(replica, DAYS[1])
        downloader.interrupt()

    stopper = threading.Thread(target=stop_once_the_next_read_starts)
    stopper.start()
    started = time.monotonic()
    with downloader:
        with pytest.raises(Stopped):
            for _ in downloader.download_days(
                [(day, "in_gate") for day in DAYS],
                progress_for=_slow_pages_from_the_first_download(replica),
            ):
                pass
    stopper.join()
    assert _history_read(replica.request_log, DAYS[1]) is not None
    # The page would answer after 30 s: the read was cut, not waited out.
    assert time.monotonic() - started < 25
    assert _history_read(replica.request_log, DAYS[2]) is None
    assert not list(tmp_path.rglob("*.part"))


def test_leaving_a_range_early_cuts_the_read_ahead_and_the_downloader_goes_on(
    fast_replica: ReplicaServer, tmp_path: Path
) -> None:
    replica = fast_replica
    with browser_downloader(replica, tmp_path, persist=False) as downloader:
        days = downloader.download_days(
            [(day, "in_gate") for day in DAYS],
            progress_for=_slow_pages_from_the_first_download(replica),
        )
        first_day, _, first = next(days)
        assert first_day == DAYS[0] and first.ok
        assert _wait_for_read(replica, DAYS[1])
        left = time.monotonic()
        days.close()  # the caller leaves while the next page answers in 30 s
        assert time.monotonic() - left < 25
        replica.page_options = PageOptions(render_delay=FAST)
        again = downloader.download_date(DAYS[2], "in_gate")
    assert again.ok and again.downloaded == len(expected(DAYS[2]))
