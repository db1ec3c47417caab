"""A download into another folder (``save_dir``) never poses as the archive's.

Its rows name the pictures' full paths, it records no day, and a later download of
the same day into the downloader's own archive fetches every picture there and
takes the rows over (one row per picture: the identity index). ``gaps`` on the
archive is then exact. Headless Chromium reads the replica's page, the pictures
come from its CDN, the database is a real SQLite file or PostgreSQL schema.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from modules.database import days, queries
from modules.downloader import DrayDogDownloader
from modules.replica import ReplicaServer
from modules.service.gaps import find_gaps
from tests.discovery.conftest import TIMEOUT, browser_paths
from tests.downloader.conftest import (
    DAY,
    STREAM,
    TERMINAL,
    DownloaderFactory,
    day_times,
    files_under,
    rows_under,
)


def _full_size_requests(replica: ReplicaServer) -> int:
    return sum(
        1
        for r in replica.request_log
        if r.path.startswith("/cdn/") and r.path.endswith(f"-{STREAM}.jpeg")
    )


def _browser_downloader(make: DownloaderFactory) -> DrayDogDownloader:
    chromium, chromedriver = browser_paths()
    return make(timeout=TIMEOUT, chromium_path=chromium, chromedriver_path=chromedriver)


@pytest.mark.browser
def test_a_scratch_download_then_the_archive_download_of_the_same_day(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
) -> None:
    pictures = len(day_times())
    archive, scratch = tmp_path / "images", tmp_path / "scratch"
    downloader = _browser_downloader(make_downloader)

    first = downloader.download_date(DAY, STREAM, save_dir=scratch)
    assert first.downloaded == pictures and first.ok
    assert days.get_day(TERMINAL, STREAM, DAY) is None  # not the archive's day
    # The seed contract: the pictures have rows, by full path, not as archive keys.
    assert len(rows_under(scratch)) == pictures
    assert all(Path(row.filepath).is_absolute() for row in queries.list_images())

    replica.reset_counters()
    main = downloader.download_date(DAY, STREAM)
    assert main.recorded is None
    assert (main.downloaded, main.already_present) == (pictures, 0)
    assert _full_size_requests(replica) == pictures
    assert len([f for f in files_under(archive) if f.suffix == ".jpg"]) == pictures
    # One row per picture: the archive's, which took the scratch rows over.
    assert (main.db_inserted, main.db_duplicates, main.db_failed) == (pictures, 0, 0)
    rows = queries.list_images()
    assert len(rows) == pictures and len(rows_under(archive)) == pictures
    assert not any(Path(row.filepath).is_absolute() for row in rows)  # keys
    record = days.get_day(TERMINAL, STREAM, DAY)
    assert record is not None and record.status == days.COMPLETE

    gaps = find_gaps(
        start=DAY, end=DAY, terminal=TERMINAL, stream=STREAM, archive=archive
    )
    assert not gaps.lacking, gaps
    assert gaps.files_without_rows == [] and gaps.rows_without_files == []

    # Another scratch copy afterwards leaves the archive's rows and record alone.
    again = downloader.download_date(DAY, STREAM, save_dir=tmp_path / "scratch2")
    assert again.downloaded == pictures and again.db_duplicates == pictures
    assert len(rows_under(archive)) == pictures
    record = days.get_day(TERMINAL, STREAM, DAY)
    assert record is not None and record.status == days.COMPLETE


def test_the_archive_itself_given_as_save_dir_is_the_archive(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modules.downloader.discovery import DiscoveryResult

    times = day_times()[:4]
    downloader = make_downloader()
    found = DiscoveryResult(DAY, STREAM, [t.isoformat() for t in times], reads=1)
    monkeypatch.setattr(downloader, "discover", lambda day, stream: found)
    report = downloader.download_date(DAY, STREAM, save_dir=tmp_path / "images")
    assert report.ok and len(rows_under(tmp_path / "images")) == 4
    assert not any(Path(r.filepath).is_absolute() for r in queries.list_images())
    record = days.get_day(TERMINAL, STREAM, DAY)
    assert record is not None and record.status == days.COMPLETE


def test_download_images_direct_into_another_folder_stores_full_paths(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
) -> None:
    times = day_times(date(2025, 9, 7))[:3]
    other = tmp_path / "elsewhere"
    report = make_downloader().download_images_direct(STREAM, times, save_dir=other)
    assert report.ok and report.db_inserted == 3
    stored = sorted(row.filepath for row in queries.list_images())
    assert stored == sorted(str(path) for path in files_under(other))
