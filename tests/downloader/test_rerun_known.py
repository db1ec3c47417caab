"""Reruns don't re-read what is known (issue 10).

A picture whose file is present and whose row has the same size is not hashed
again; a present file without a row, or of another size, is. A past day recorded
``complete`` or ``empty`` opens no browser and sends no request unless forced.
Pictures come from the replica CDN; discovery is replaced at its seam.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from modules.cli import _one_line, _print_summary
from modules.database import days, models, queries
from modules.database.models import Image
from modules.downloader import DrayDogDownloader, fetch, selenium_client
from modules.downloader.discovery import DiscoveryResult
from modules.downloader.report import DownloadReport
from modules.replica import ReplicaServer
from modules.storage import Storage
from tests.downloader.conftest import (
    DAY,
    STREAM,
    day_times,
    expected_bytes,
)


class Hashes:
    """Counts the stored pictures hashed by the downloader (read back through its
    storage, ``Storage.sha256``), by full path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[Path] = []
        real = Storage.sha256

        def counting(storage: Storage, key: str) -> str:
            self.paths.append(Path(storage.location(key)))
            return real(storage, key)

        monkeypatch.setattr(Storage, "sha256", counting)


class NoBrowser:
    """A stand-in for the browser that fails the test if one is started."""

    starts = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).starts += 1
        raise AssertionError("a browser was started")


def listed(count: int | None = None, *, reads: int = 1) -> DiscoveryResult:
    times = day_times()[:count] if count is not None else []
    return DiscoveryResult(DAY, STREAM, [t.isoformat() for t in times], reads=reads)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Hashes:
    return Hashes(monkeypatch)


@pytest.fixture
def no_browser(monkeypatch: pytest.MonkeyPatch) -> type[NoBrowser]:
    NoBrowser.starts = 0
    monkeypatch.setattr(selenium_client, "BrowserDiscovery", NoBrowser)
    return NoBrowser


def rows_by_instant() -> dict[datetime, Image]:
    """This test's rows (its own database) by capture instant, whatever their keys."""
    return {row.timestamp: row for row in queries.list_images(limit=10_000)}


def test_a_rerun_hashes_no_file_whose_row_has_its_size(
    replica: ReplicaServer, downloader: DrayDogDownloader, hashes: Hashes
) -> None:
    walls = day_times()[:10]
    first = downloader.download_images_direct(STREAM, walls)
    assert first.downloaded == 10 and first.ok
    assert hashes.paths == []  # hashed as the bodies came in, not read back
    rows = rows_by_instant()
    assert len(rows) == 10
    replica.reset_counters()

    again = downloader.download_images_direct(STREAM, walls)
    assert (again.already_present, again.downloaded, again.ok) == (10, 0, True)
    assert hashes.paths == [] and replica.total_requests == 0
    # The rows still carry the hashes of the bytes the CDN served.
    for path in sorted(again.files):
        assert Path(path).stat().st_size == len(expected_bytes(walls[0]))
    for instant, row in rows_by_instant().items():
        assert row.sha256 == rows[instant].sha256 is not None


def test_a_present_file_without_a_row_or_of_another_size_is_hashed(
    replica: ReplicaServer, downloader: DrayDogDownloader, hashes: Hashes
) -> None:
    walls = day_times()[:6]
    paths = [
        Path(p) for p in sorted(downloader.download_images_direct(STREAM, walls).files)
    ]
    instants = sorted(rows_by_instant())
    assert len(paths) == len(instants) == 6
    # One row lost (its file stays), one file changed in size behind the archive's back.
    with models.session_scope() as session:
        session.execute(delete(Image).where(Image.timestamp == instants[1]))
    paths[4].write_bytes(paths[4].read_bytes() + b"\0\0")
    replica.reset_counters()

    report = downloader.download_images_direct(STREAM, walls)
    assert report.already_present == 6 and report.db_inserted == 1
    assert sorted(hashes.paths) == sorted([paths[1], paths[4]])
    assert replica.total_requests == 0
    restored = rows_by_instant()[instants[1]]
    assert restored.file_size == len(expected_bytes(walls[1]))
    assert restored.sha256 == fetch.sha256_of(paths[1])


def test_without_a_database_present_files_are_hashed(
    replica: ReplicaServer, make_downloader: Any, hashes: Hashes, sqlite_db: str
) -> None:
    downloader = make_downloader(persist=False)
    walls = day_times()[:3]
    downloader.download_images_direct(STREAM, walls)
    report = downloader.download_images_direct(STREAM, walls)
    assert report.already_present == 3 and len(hashes.paths) == 3


def test_a_complete_past_day_opens_no_browser_and_sends_no_request(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    monkeypatch: pytest.MonkeyPatch,
    hashes: Hashes,
    no_browser: type[NoBrowser],
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(downloader, "discover", lambda day, stream: listed(8))
        assert downloader.download_date(DAY, STREAM).ok
    assert days.get_day("apm", STREAM, DAY).status == "complete"  # type: ignore[union-attr]
    replica.reset_counters()

    # The real discover(), whose browser is the failing stand-in: never reached.
    report = downloader.download_date(DAY, STREAM)
    assert report.recorded == "complete" and report.ok
    assert (report.requested, report.already_present, report.downloaded) == (8, 8, 0)
    assert report.files == [] and report.run_id is None
    assert no_browser.starts == 0 and replica.total_requests == 0
    assert hashes.paths == []
    assert downloader.download_day_safely(DAY, STREAM).recorded == "complete"
    ranged = downloader.download_date_range(DAY, DAY, [STREAM])
    assert ranged[(DAY, STREAM)].recorded == "complete"
    assert no_browser.starts == 0 and replica.total_requests == 0
    assert "already complete (8 of 8 stored)" in _one_line(DAY, STREAM, report)


def test_forced_the_complete_day_is_read_again_without_hashing_its_files(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    monkeypatch: pytest.MonkeyPatch,
    hashes: Hashes,
) -> None:
    reads: list[date] = []

    def discover(day: date, stream: str) -> DiscoveryResult:
        reads.append(day)
        return listed(8)

    monkeypatch.setattr(downloader, "discover", discover)
    downloader.download_date(DAY, STREAM)
    replica.reset_counters()
    report = downloader.download_date(DAY, STREAM, force=True)
    assert reads == [DAY, DAY] and report.recorded is None
    assert (report.already_present, report.downloaded) == (8, 0)
    assert hashes.paths == [] and replica.total_requests == 0
    assert downloader.download_day_safely(DAY, STREAM, force=True).recorded is None
    assert len(reads) == 3


def test_an_empty_past_day_is_not_read_again(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    monkeypatch: pytest.MonkeyPatch,
    no_browser: type[NoBrowser],
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(downloader, "discover", lambda day, stream: listed(reads=2))
        downloader.download_date(DAY, STREAM)
    report = downloader.download_date(DAY, STREAM)
    assert report.recorded == "empty" and report.empty and report.ok
    assert no_browser.starts == 0 and replica.total_requests == 0
    assert "already empty" in _one_line(DAY, STREAM, report)


@pytest.mark.parametrize("status", ["partial", "failed"])
def test_a_day_not_done_is_read_again(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    monkeypatch: pytest.MonkeyPatch,
    status: str,
) -> None:
    days.record_day("apm", STREAM, DAY, status=status, listed=4, stored=2)
    reads: list[date] = []

    def discover(day: date, stream: str) -> DiscoveryResult:
        reads.append(day)
        return listed(4)

    monkeypatch.setattr(downloader, "discover", discover)
    report = downloader.download_date(DAY, STREAM)
    assert reads == [DAY] and report.recorded is None and report.downloaded == 4
    assert days.get_day("apm", STREAM, DAY).status == "complete"  # type: ignore[union-attr]


def test_today_is_read_again_even_if_recorded_complete(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(selenium_client, "terminal_today", lambda zone: DAY)
    days.record_day("apm", STREAM, DAY, status="complete", listed=3, stored=3)
    monkeypatch.setattr(downloader, "discover", lambda day, stream: listed(5))
    report = downloader.download_date(DAY, STREAM)
    assert report.recorded is None and report.downloaded == 5


def test_a_day_downloaded_elsewhere_is_read_whatever_the_record(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    days.record_day("apm", STREAM, DAY, status="complete", listed=3, stored=3)
    monkeypatch.setattr(downloader, "discover", lambda day, stream: listed(3))
    report = downloader.download_date(DAY, STREAM, save_dir=tmp_path / "other")
    assert report.recorded is None and report.downloaded == 3


def test_an_unreadable_record_means_the_day_is_read(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down(*args: object) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(days, "get_day", down)
    monkeypatch.setattr(downloader, "discover", lambda day, stream: listed(2))
    assert downloader.download_date(DAY, STREAM).downloaded == 2


def test_the_summary_names_a_recorded_day(capsys: pytest.CaptureFixture[str]) -> None:
    report = DownloadReport(requested=3, already_present=3, recorded="complete")
    assert _one_line(DAY, STREAM, report).endswith("(--refetch reads it)")
    _print_summary({(DAY, STREAM): report})
    [line] = [l for l in capsys.readouterr().out.splitlines() if str(DAY) in l]
    assert line.split()[:4] == [str(DAY), STREAM, "complete", "0"]
