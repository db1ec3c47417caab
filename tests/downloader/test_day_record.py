"""download_date records the day's verdict in archive_days, and never fails a download for it.

Discovery is replaced at its seam (``DrayDogDownloader.discover``) by the replica's
own list of the day; the pictures come from the replica CDN.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from modules.database import days
from modules.downloader import DrayDogDownloader
from modules.downloader import selenium_client
from modules.downloader.discovery import DiscoveryResult
from modules.downloader.report import DownloadReport, day_status
from modules.replica import Faults, ReplicaServer
from tests.downloader.conftest import DAY, STREAM, day_times, rows_under


def listed(count: int | None = None, *, reads: int = 1) -> DiscoveryResult:
    times = day_times()[:count] if count is not None else []
    return DiscoveryResult(DAY, STREAM, [t.isoformat() for t in times], reads=reads)


def discover_as(
    monkeypatch: pytest.MonkeyPatch,
    downloader: DrayDogDownloader,
    result: DiscoveryResult,
) -> None:
    monkeypatch.setattr(downloader, "discover", lambda day, stream: result)


def recorded() -> days.DayRecord:
    record = days.get_day("apm", STREAM, DAY)
    assert record is not None
    return record


def test_a_whole_past_day_stored_is_complete_with_thumbnails_counted(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    times = day_times()[:12]
    replica.faults = Faults(missing_full=frozenset(t.isoformat() for t in times[:3]))
    discover_as(monkeypatch, downloader, listed(12))
    report = downloader.download_date(DAY, STREAM)
    assert report.ok and report.thumbnails == 3
    record = recorded()
    assert (record.status, record.listed, record.stored, record.failed) == (
        "complete",
        12,
        12,
        0,
    )
    assert record.thumbnails == 3
    rows = rows_under(tmp_path / "images")
    assert len(rows) == 12 and {row.local_day for row in rows} == {DAY}

    # A forced rerun finds the files present: still complete, thumbnails still counted.
    downloader.download_date(DAY, STREAM, force=True)
    again = recorded()
    assert (again.status, again.stored, again.thumbnails) == ("complete", 12, 3)


def test_failed_pictures_make_the_day_partial(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    times = day_times()[:10]
    replica.faults = Faults(missing=frozenset(t.isoformat() for t in times[:2]))
    discover_as(monkeypatch, downloader, listed(10))
    report = downloader.download_date(DAY, STREAM)
    assert len(report.failed) == 2
    record = recorded()
    assert (record.status, record.listed, record.stored, record.failed) == (
        "partial",
        10,
        8,
        2,
    )


def test_a_day_not_over_at_the_terminal_is_partial_even_when_all_is_stored(
    downloader: DrayDogDownloader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selenium_client, "terminal_today", lambda zone: DAY)
    discover_as(monkeypatch, downloader, listed(5))
    assert downloader.download_date(DAY, STREAM).ok
    record = recorded()
    assert (record.status, record.listed, record.stored) == ("partial", 5, 5)


def test_a_confirmed_empty_day_is_empty_and_an_unconfirmed_one_partial(
    downloader: DrayDogDownloader, monkeypatch: pytest.MonkeyPatch
) -> None:
    discover_as(monkeypatch, downloader, listed(reads=1))
    downloader.download_date(DAY, STREAM)
    assert recorded().status == "partial"
    discover_as(monkeypatch, downloader, listed(reads=2))
    assert downloader.download_date(DAY, STREAM).empty
    record = recorded()
    assert (record.status, record.listed, record.stored) == ("empty", 0, 0)


def test_a_page_that_fails_is_recorded_failed_and_raised_but_never_undoes_a_done_day(
    downloader: DrayDogDownloader, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(day: date, stream: str) -> DiscoveryResult:
        raise RuntimeError("the page did not load")

    monkeypatch.setattr(downloader, "discover", broken)
    with pytest.raises(RuntimeError, match="did not load"):
        downloader.download_date(DAY, STREAM)
    record = recorded()
    assert (record.status, record.failed) == ("failed", 1)
    report = downloader.download_day_safely(DAY, STREAM)
    assert report.error is not None and recorded().status == "failed"

    discover_as(monkeypatch, downloader, listed(3))
    downloader.download_date(DAY, STREAM)
    assert recorded().status == "complete"
    monkeypatch.setattr(downloader, "discover", broken)
    downloader.download_day_safely(DAY, STREAM, force=True)
    assert recorded().status == "complete"


def test_a_database_error_recording_the_day_is_counted_never_raised(
    downloader: DrayDogDownloader, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO archive_days", {}, Exception("gone"))

    monkeypatch.setattr(days, "record_day", down)
    discover_as(monkeypatch, downloader, listed(4))
    report = downloader.download_date(DAY, STREAM)
    assert report.downloaded == 4 and not report.failed
    assert report.db_failed == 1 and not report.ok
    assert downloader.db_failures == 1
    assert len(rows_under(tmp_path / "images")) == 4


def test_nothing_is_recorded_without_persistence(
    make_downloader: object, sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    downloader = make_downloader(persist=False)  # type: ignore[operator]
    discover_as(monkeypatch, downloader, listed(2))
    downloader.download_date(DAY, STREAM)
    assert days.get_day("apm", STREAM, DAY) is None


@pytest.mark.parametrize(
    ("report", "day_over", "status"),
    [
        (DownloadReport(error="PageUnreachable: refused"), True, "failed"),
        (DownloadReport(empty=True), True, "empty"),
        (DownloadReport(empty=True), False, "partial"),
        (DownloadReport(requested=2, files=["a", "b"]), True, "complete"),
        (DownloadReport(requested=2, files=["a", "b"]), False, "partial"),
        (
            DownloadReport(requested=2, files=["a"], failed=[("t", "404")]),
            True,
            "partial",
        ),
        (DownloadReport(requested=0), True, "partial"),
        (DownloadReport(requested=1, files=["a"], db_failed=1), True, "partial"),
    ],
    ids=[
        "error",
        "empty-over",
        "empty-today",
        "whole-over",
        "whole-today",
        "failures",
        "unconfirmed-empty",
        "rows-failed",
    ],
)
def test_day_status_from_a_report(
    report: DownloadReport, day_over: bool, status: str
) -> None:
    assert day_status(report, day_over=day_over) == status
