"""``DrayDogDownloader.download_image`` against the replica CDN over real HTTP."""

from __future__ import annotations

import builtins
import errno
import hashlib
import logging
import time
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any
from unittest.mock import patch

import pytest
import requests
from urllib3.response import HTTPResponse

from modules.database import queries
from modules.downloader import DrayDogDownloader, InvalidImageURL, InvalidName
from modules.downloader import fetch as fetch_module
from modules.downloader import selenium_client
from modules.downloader.discovery import DiscoveryResult
from modules.site.urls import wall_clock_to_utc
from modules.replica import Faults, ReplicaServer
from tests.downloader.conftest import (
    DAY,
    STREAM,
    TERMINAL,
    DownloaderFactory,
    day_times,
    expected_bytes,
    files_under,
    url_of,
)

WALL = day_times(DAY)[100]


def _only_picture(folder: Path) -> list[str]:
    return sorted(p.name for p in files_under(folder))


def test_success_saves_the_verified_picture_and_its_row(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    url = url_of(replica, WALL)
    save_dir = tmp_path / "one"

    saved = downloader.download_image(url, save_dir, STREAM)

    assert saved is not None
    path = Path(saved)
    assert path == (save_dir / f"in_gate_{WALL:%Y%m%dT%H%M%S}.jpg").resolve()
    body = expected_bytes(WALL)
    assert path.read_bytes() == body
    assert _only_picture(save_dir) == [path.name]
    assert replica.requests_for(url) == 1
    row = queries.get_image_by_path(saved)
    assert row is not None
    assert row.camera_id == STREAM
    assert row.terminal == TERMINAL
    assert row.timestamp == wall_clock_to_utc(WALL)
    assert row.file_size == len(body)
    assert row.sha256 == hashlib.sha256(body).hexdigest()
    assert row.source_url == url
    assert row.is_thumbnail is False
    assert downloader.db_failures == 0


def test_stream_name_unknown_takes_the_urls_and_thumbnails_are_named_thumb(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    wall = day_times(DAY, "out_gate")[7]
    url = url_of(replica, wall, stream="out_gate", thumbnail=True)
    saved = downloader.download_image(url, tmp_path)
    assert saved is not None
    assert Path(saved).name == f"out_gate_{wall:%Y%m%dT%H%M%S}_thumb.jpg"
    assert Path(saved).read_bytes() == expected_bytes(
        wall, stream="out_gate", thumbnail=True
    )
    row = queries.get_image_by_path(saved)
    assert row is not None and row.is_thumbnail is True
    assert row.camera_id == "out_gate"


def test_unix_form_urls_are_named_by_their_wall_clock_time(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    instant = wall_clock_to_utc(WALL)
    url = f"{replica.cdn_url}/apm/{WALL:%Y-%m-%d}/{instant:%H}/{int(instant.timestamp() * 1000)}-in_gate.jpeg"
    saved = downloader.download_image(url, tmp_path, STREAM)
    assert saved is not None
    assert Path(saved).name == f"in_gate_{WALL:%Y%m%dT%H%M%S}.jpg"
    assert Path(saved).read_bytes() == expected_bytes(WALL)
    row = queries.get_image_by_path(saved)
    assert row is not None and row.timestamp == instant


def test_404_returns_none_without_a_file_or_a_retry(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    url = url_of(replica, WALL + timedelta(seconds=1))
    assert downloader.download_image(url, tmp_path / "x", STREAM) is None
    assert replica.requests_for(url) == 1
    assert files_under(tmp_path / "x") == []
    assert queries.count_images() == 0


def test_500_then_success(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    replica.faults = Faults(errors_per_url=2)
    url = url_of(replica, WALL)
    saved = downloader.download_image(url, tmp_path, STREAM)
    assert saved is not None
    assert Path(saved).read_bytes() == expected_bytes(WALL)
    assert replica.requests_for(url) == 3


def test_5xx_that_lasts_gives_up_after_max_retries(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    replica.faults = Faults(error_rate=1.0)
    downloader = make_downloader(max_retries=2)
    url = url_of(replica, WALL)
    assert downloader.download_image(url, tmp_path / "x", STREAM) is None
    assert replica.requests_for(url) == 3
    assert files_under(tmp_path / "x") == []
    assert "HTTP 503" in caplog.text


def test_429_waits_for_retry_after(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    replica.faults = Faults(retry_after_rate=1.0, retry_after=1.0)
    url = url_of(replica, WALL)
    started = time.monotonic()
    saved = downloader.download_image(url, tmp_path, STREAM)
    elapsed = time.monotonic() - started
    assert saved is not None
    assert replica.requests_for(url) == 2
    first, second = [r.monotonic for r in replica.request_log]
    assert second - first >= 1.0
    assert 1.0 <= elapsed < 3.0  # retry_delay=0.01 alone would retry at once


def test_truncated_body_is_retried_and_never_kept(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    replica.faults = Faults(truncated_rate=1.0, errors_per_url=1)
    url = url_of(replica, WALL)
    saved = downloader.download_image(url, tmp_path / "x", STREAM)
    assert saved is not None
    assert Path(saved).read_bytes() == expected_bytes(WALL)
    assert replica.requests_for(url) == 2
    assert _only_picture(tmp_path / "x") == [Path(saved).name]


def test_a_body_that_stays_truncated_leaves_nothing(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    replica.faults = Faults(truncated_rate=1.0)
    url = url_of(replica, WALL)
    assert downloader.download_image(url, tmp_path / "x", STREAM) is None
    assert replica.requests_for(url) == 4
    assert files_under(tmp_path / "x") == []
    assert queries.count_images() == 0


def test_html_answered_with_200_is_rejected(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    replica.faults = Faults(html_rate=1.0)
    url = url_of(replica, WALL)
    assert downloader.download_image(url, tmp_path / "x", STREAM) is None
    assert replica.requests_for(url) == 1
    assert files_under(tmp_path / "x") == []
    assert "not a JPEG (text/html" in caplog.text


def test_oversize_is_rejected(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
) -> None:
    small = make_downloader(max_image_bytes=10_000)
    url = url_of(replica, WALL)
    assert small.download_image(url, tmp_path / "x", STREAM) is None
    assert replica.requests_for(url) == 1
    assert files_under(tmp_path / "x") == []
    # A thumbnail fits under the same cap.
    assert small.download_image(url_of(replica, WALL, thumbnail=True), tmp_path / "x")


def test_an_endless_body_is_cut_at_the_cap(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
) -> None:
    replica.faults = Faults(endless_rate=1.0)
    small = make_downloader(max_image_bytes=500_000)
    started = time.monotonic()
    assert small.download_image(url_of(replica, WALL), tmp_path / "x", STREAM) is None
    assert time.monotonic() - started < 2.0
    assert files_under(tmp_path / "x") == []


def test_connection_reset_is_retried(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    replica.faults = Faults(reset_rate=1.0, errors_per_url=2)
    url = url_of(replica, WALL)
    saved = downloader.download_image(url, tmp_path, STREAM)
    assert saved is not None
    assert Path(saved).read_bytes() == expected_bytes(WALL)
    assert replica.requests_for(url) == 3


def test_a_hang_times_out_then_fails(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
) -> None:
    replica.faults = Faults(hang_rate=1.0, hang_seconds=1.5)
    impatient = make_downloader(timeout=0.3, max_retries=1)
    url = url_of(replica, WALL)
    started = time.monotonic()
    assert impatient.download_image(url, tmp_path / "x", STREAM) is None
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 1.4
    assert replica.requests_for(url) == 2
    assert files_under(tmp_path / "x") == []


def test_a_hang_once_then_success(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
) -> None:
    replica.faults = Faults(hang_rate=1.0, hang_seconds=1.0, errors_per_url=1)
    impatient = make_downloader(timeout=0.3)
    url = url_of(replica, WALL)
    saved = impatient.download_image(url, tmp_path, STREAM)
    assert saved is not None and Path(saved).read_bytes() == expected_bytes(WALL)
    assert replica.requests_for(url) == 2


# --- refused before any request ------------------------------------------------------


def test_foreign_host_file_and_credentials_are_refused_before_any_request(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    good = url_of(replica, WALL)
    path = good.split(replica.base_url, 1)[1]
    refused = [
        replica.foreign_cdn_url + path.removeprefix("/cdn"),
        f"http://127.0.0.1:{replica.port + 1}{path}",
        f"https://127.0.0.1:{replica.port}{path}".replace("https", "ftp"),
        f"file://{tmp_path}/x.jpeg",
        f"http://user:pw@127.0.0.1:{replica.port}{path}",
        "https://cdn.draydog.com/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg",
    ]
    for url in refused:
        with pytest.raises(ValueError):
            downloader.download_image(url, tmp_path / "x", STREAM)
    assert replica.total_requests == 0
    assert not (tmp_path / "x").exists()


def test_bad_stream_names_and_other_streams_are_refused(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    url = url_of(replica, WALL)
    for bad in ("../x", "a/b", "", "IN_GATE", "in_gate-thumbnail"):
        with pytest.raises(InvalidName):
            downloader.download_image(url, tmp_path / "x", bad)
    with pytest.raises(ValueError, match="not 'out_gate'"):
        downloader.download_image(url, tmp_path / "x", "out_gate")
    with pytest.raises(InvalidImageURL):
        downloader.download_image(f"{replica.cdn_url}/robots.txt", tmp_path / "x")
    assert replica.total_requests == 0
    assert not (tmp_path / "x").exists()


# --- the disk ----------------------------------------------------------------------


def test_a_disk_write_failure_is_reported_and_leaves_no_part(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_open = builtins.open
    parts: list[Path] = []

    class FullDisk:
        def __init__(self, handle: IO[bytes]) -> None:
            self.handle = handle

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def failing_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode:
            parts.append(Path(file))
            return FullDisk(handle)
        return handle

    monkeypatch.setattr(fetch_module, "open", failing_open, raising=False)
    url = url_of(replica, WALL)
    assert downloader.download_image(url, tmp_path / "x", STREAM) is None
    assert len(parts) == 1 and parts[0].name.endswith(".part")
    assert files_under(tmp_path / "x") == []  # the .part was created, then removed
    assert "No space left on device" in caplog.text
    assert replica.requests_for(url) == 1  # a full disk is not retried
    assert queries.count_images() == 0


def test_a_failing_rename_leaves_no_part(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("modules.downloader.fetch.os.replace", refuse)
    assert downloader.download_image(url_of(replica, WALL), tmp_path / "x") is None
    assert files_under(tmp_path / "x") == []


def test_an_interrupt_during_the_body_leaves_no_part(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = iter([expected_bytes(WALL)[:1000]])

    def interrupted(self: HTTPResponse, *args: Any, **kwargs: Any) -> bytes:
        for chunk in reads:
            return chunk
        raise KeyboardInterrupt

    monkeypatch.setattr(HTTPResponse, "read1", interrupted)
    with pytest.raises(KeyboardInterrupt):
        downloader.download_image(url_of(replica, WALL), tmp_path / "x")
    assert files_under(tmp_path / "x") == []


def test_a_complete_file_in_place_is_not_fetched_again_but_gets_its_row(
    replica: ReplicaServer, downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    url = url_of(replica, WALL)
    existing = tmp_path / f"in_gate_{WALL:%Y%m%dT%H%M%S}.jpg"
    existing.write_bytes(b"\xff\xd8\xff already here")

    saved = downloader.download_image(url, tmp_path, STREAM)

    assert saved == str(existing.resolve())
    assert replica.requests_for(url) == 0
    assert existing.read_bytes() == b"\xff\xd8\xff already here"
    row = queries.get_image_by_path(saved)
    assert row is not None
    assert row.file_size == len(b"\xff\xd8\xff already here")
    assert row.sha256 == hashlib.sha256(b"\xff\xd8\xff already here").hexdigest()
    # Again: still no request, still one row (idempotent).
    assert downloader.download_image(url, tmp_path, STREAM) == saved
    assert replica.requests_for(url) == 0
    assert queries.count_images() == 1


# --- the database -------------------------------------------------------------------


def test_database_down_keeps_the_file_and_counts_the_failure(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    unreachable_db: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    downloader = make_downloader()
    url = url_of(replica, WALL)
    saved = downloader.download_image(url, tmp_path, STREAM)
    assert saved is not None
    assert Path(saved).read_bytes() == expected_bytes(WALL)
    assert downloader.db_failures == 1
    assert "failed to save" in caplog.text
    # Retried with backoff before giving up (connection refused is transient).
    assert "retry 1/2" in caplog.text and "retry 2/2" in caplog.text


def test_plan_insert_image_is_called_with_camera_id_and_filepath(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    downloader = make_downloader()
    url = url_of(replica, WALL)
    with patch("modules.database.queries.insert_image") as mock_insert:
        mock_insert.return_value = 123
        filepath = downloader.download_image(url, str(tmp_path), "in_gate")
    assert mock_insert.called
    assert mock_insert.call_count == 1
    assert mock_insert.call_args[1]["camera_id"] == "in_gate"
    assert mock_insert.call_args[1]["filepath"] == filepath
    kwargs = mock_insert.call_args.kwargs
    assert kwargs["timestamp"] == wall_clock_to_utc(WALL)
    assert kwargs["terminal"] == TERMINAL
    assert kwargs["source_url"] == url
    assert kwargs["file_size"] == len(expected_bytes(WALL))
    assert kwargs["sha256"] == hashlib.sha256(expected_bytes(WALL)).hexdigest()


def test_no_insert_when_persist_is_off_or_the_download_failed(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    quiet = make_downloader(persist=False)
    with patch("modules.database.queries.insert_image") as mock_insert:
        assert quiet.download_image(url_of(replica, WALL), tmp_path, STREAM)
        loud = make_downloader()
        missing = url_of(replica, WALL + timedelta(seconds=1))
        assert loud.download_image(missing, tmp_path, STREAM) is None
    assert not mock_insert.called


# --- the object ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"terminal": "../x"},
        {"terminal": ""},
        {"max_workers": 0},
        {"max_workers": 65},
        {"max_workers": True},
        {"batch_size": 0},
        {"max_retries": -1},
        {"timeout": 0},
        {"retry_delay": -1},
        {"max_image_bytes": 0},
        {"cdn_url": "file:///tmp"},
        {"cdn_url": "cdn.draydog.com"},
        {"app_url": "ftp://app.draydog.com"},
        {"cdn_url": "https://u:p@cdn.draydog.com"},
        {"source_timezone": "Nowhere/Atall"},
    ],
)
def test_constructor_refuses_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DrayDogDownloader(**options)


def test_defaults() -> None:
    with DrayDogDownloader() as downloader:
        assert downloader.download_dir == Path("data/images")
        assert downloader.terminal == "apm"
        assert downloader.cdn_url == "https://cdn.draydog.com"
        assert downloader.app_url == "https://app.draydog.com"
        assert downloader.max_workers == 8 and downloader.batch_size == 500
        assert downloader.fetcher.backoff.attempts == 4
        assert downloader.fetcher.backoff.base_delay == 1.0
        assert downloader.fetcher.max_bytes == 20 * 1024 * 1024
        assert downloader.persist is True
        assert downloader.source_timezone == "America/Los_Angeles"


def test_close_releases_its_own_session_only() -> None:
    own_session = DrayDogDownloader()
    with patch.object(own_session.http, "close") as closed:
        own_session.close()
    assert closed.called
    given = requests.Session()
    with patch.object(given, "close") as given_closed:
        with DrayDogDownloader(http_session=given) as downloader:
            assert downloader.http is given
    assert not given_closed.called
    given.close()


def test_a_given_session_is_used(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    session = requests.Session()
    calls: list[str] = []
    real_get = session.get

    def spy(url: str | bytes, **kwargs: Any) -> requests.Response:
        calls.append(str(url))
        return real_get(url, **kwargs)

    session.get = spy  # type: ignore[method-assign]
    downloader = make_downloader(http_session=session, persist=False)
    url = url_of(replica, WALL)
    assert downloader.download_image(url, tmp_path, STREAM)
    assert calls == [url]
    session.close()


# --- days and ranges (discovery itself is another module's) ------------------------


def test_checked_days_and_ranges(make_downloader: DownloaderFactory) -> None:
    downloader = make_downloader(persist=False)
    assert downloader.checked_range("2025-09-05", date(2025, 9, 7)) == [
        date(2025, 9, 5),
        date(2025, 9, 6),
        date(2025, 9, 7),
    ]
    with pytest.raises(ValueError, match="reversed"):
        downloader.checked_range("2025-09-07", "2025-09-05")
    future = date.today() + timedelta(days=3)
    with pytest.raises(ValueError, match="in the future"):
        downloader.checked_range("2025-09-05", future)
    with pytest.raises(ValueError):
        downloader.get_timestamps_for_date("not a day")
    with pytest.raises(InvalidName):
        downloader.get_timestamps_for_date("2025-09-06", "../x")


class FakeDiscovery:
    """Stands in for the browser (another module's): the schedule's times, or a failure."""

    made: list[FakeDiscovery] = []
    failing_days: set[date] = set()
    foreign, missing = 0, 0

    def __init__(self, app_url: str, cdn_url: str, terminal: str, **options: Any):
        self.args = (app_url, cdn_url, terminal)
        self.options = options
        self.days: list[tuple[date, str]] = []
        self.closed = False
        FakeDiscovery.made.append(self)

    def timestamps_for_date(self, day: date, stream: str) -> DiscoveryResult:
        self.days.append((day, stream))
        if day in self.failing_days:
            raise TimeoutError("History never loaded")
        stamps = [w.isoformat() for w in day_times(day, stream)[:4]]
        return DiscoveryResult(
            day=day,
            stream=stream,
            timestamps=stamps,
            foreign=self.foreign,
            missing=self.missing,
        )

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_browser(monkeypatch: pytest.MonkeyPatch) -> type[FakeDiscovery]:
    monkeypatch.setattr(FakeDiscovery, "made", [])
    monkeypatch.setattr(FakeDiscovery, "failing_days", set())
    monkeypatch.setattr(selenium_client, "BrowserDiscovery", FakeDiscovery)
    return FakeDiscovery


def test_download_date_range_goes_on_after_a_failing_day(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    fake_browser: type[FakeDiscovery],
) -> None:
    downloader = make_downloader()
    bad_day = date(2025, 9, 5)
    fake_browser.failing_days = {bad_day}
    seen: list[tuple[date, str, bool]] = []

    reports = downloader.download_date_range(
        "2025-09-04",
        "2025-09-06",
        ("in_gate", "out_gate"),
        on_day=lambda day, stream, report: seen.append((day, stream, report.ok)),
    )

    assert len(reports) == 6
    assert [(day, stream) for day, stream, _ in seen] == [
        (date(2025, 9, d), s) for d in (4, 5, 6) for s in ("in_gate", "out_gate")
    ]
    for stream in ("in_gate", "out_gate"):
        failed = reports[(bad_day, stream)]
        assert failed.error == "TimeoutError: History never loaded"
        assert failed.failed == [("2025-09-05", "History never loaded")]
        assert not failed.ok
    good = reports[(date(2025, 9, 6), "out_gate")]
    assert good.ok and good.downloaded == 4
    assert queries.count_images() == 4 * 4
    assert len(fake_browser.made) == 1  # one browser for the whole range
    with pytest.raises(InvalidName):
        downloader.download_date_range("2025-09-04", "2025-09-04", ("../x",))


def test_discovery_is_wired_to_the_downloads(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
    fake_browser: type[FakeDiscovery],
) -> None:
    downloader = make_downloader(headless=False, timeout=7, source_timezone="UTC")
    with pytest.raises(ValueError, match="in the future"):
        downloader.get_timestamps_for_date(date.today() + timedelta(days=2))
    with pytest.raises(InvalidName):
        downloader.get_timestamps_for_date("2025-09-06", "../x")
    assert fake_browser.made == []  # refused before any browser starts

    stamps = downloader.get_timestamps_for_date("2025-09-06", "out_gate")
    report = downloader.download_date(DAY, "in_gate", save_dir=tmp_path / "day")

    assert len(fake_browser.made) == 1  # one browser, reused
    browser = fake_browser.made[0]
    assert browser.args == (replica.app_url, replica.cdn_url, TERMINAL)
    assert browser.options["headless"] is False
    assert browser.options["timeout"] == 7
    assert browser.options["source_timezone"] == "UTC"
    assert browser.days == [(DAY, "out_gate"), (DAY, "in_gate")]
    assert stamps == [w.isoformat() for w in day_times(DAY, "out_gate")[:4]]
    assert report.downloaded == 4 and report.ok and report.foreign_ignored == 0
    assert len(files_under(tmp_path / "day")) == 4
    downloader.close()
    assert browser.closed


def test_download_date_reports_what_the_page_ignored_or_could_not_load(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    fake_browser: type[FakeDiscovery],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(FakeDiscovery, "foreign", 2)
    monkeypatch.setattr(FakeDiscovery, "missing", 3)
    report = make_downloader().download_date("2025-09-06")
    assert report.downloaded == 4
    assert report.foreign_ignored == 2
    assert report.failed == [("2025-09-06", "3 pictures failed to load on the page")]
    assert not report.ok


def test_close_also_closes_a_started_browser(
    make_downloader: DownloaderFactory,
) -> None:
    downloader = make_downloader(persist=False)

    class FakeBrowser:
        closed = False

        def close(self) -> None:
            FakeBrowser.closed = True

    downloader._discovery = FakeBrowser()  # type: ignore[assignment]
    downloader.close()
    assert FakeBrowser.closed and downloader._discovery is None


def test_logging_names_the_saved_id(
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=selenium_client.__name__)
    saved = downloader.download_image(url_of(replica, WALL), tmp_path, STREAM)
    row = queries.get_image_by_path(str(saved))
    assert row is not None
    assert f"with id {row.id}" in caplog.text
