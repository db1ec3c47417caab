"""``download_images_direct``: a day's pictures, concurrently, into the archive and the database."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy.exc import OperationalError

from modules.database import models, queries
from modules.database.models import DownloadRun
from modules.downloader import (
    DownloadReport,
    DrayDogDownloader,
    InvalidName,
    PictureOutcome,
)
from modules.downloader.archive import picture_path
from modules.downloader.fetch import HOST_TAG, PART_SUFFIX
from modules.downloader.reindex import reindex_archive
from modules.site.urls import get_zone, wall_clock_to_utc
from modules.replica import Faults, ReplicaServer
from tests.downloader.conftest import (
    DAY,
    STREAM,
    TERMINAL,
    UNREACHABLE_DB,
    DownloaderFactory,
    day_times,
    expected_bytes,
    files_under,
    rows_under,
    times_over_days,
    url_of,
)


def run_row(run_id: int | None) -> DownloadRun:
    assert run_id is not None
    with models.session_scope() as session:
        run = session.get(DownloadRun, run_id)
        assert run is not None
        return run


def path_of(root: Path, wall: datetime, thumbnail: bool = False) -> Path:
    return picture_path(root, TERMINAL, STREAM, wall, thumbnail)


def assert_run_matches(report: DownloadReport, status: str) -> None:
    run = run_row(report.run_id)
    assert run.status == status
    assert run.terminal == TERMINAL and run.camera_id == STREAM
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert (
        run.requested,
        run.downloaded,
        run.already_present,
        run.failed,
        run.bytes,
        run.db_inserted,
        run.db_duplicates,
        run.db_failed,
    ) == (
        report.requested,
        report.downloaded,
        report.already_present,
        len(report.failed),
        report.bytes,
        report.db_inserted,
        report.db_duplicates,
        report.db_failed,
    )


# --- persistence (SQLite and PostgreSQL) --------------------------------------------


def test_a_batch_lands_in_the_layout_the_database_and_a_run_row(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
) -> None:
    walls = day_times(DAY)[:20]
    root = tmp_path / "images"
    downloader = make_downloader()

    report = downloader.download_images_direct(STREAM, [w.isoformat() for w in walls])

    expected = [path_of(root, w) for w in walls]
    assert sorted(report.files) == sorted(str(p) for p in expected)
    assert str(expected[0]) == str(
        root
        / "apm"
        / "in_gate"
        / "2025-09-06"
        / f"in_gate_{walls[0]:%Y%m%dT%H%M%S}.jpg"
    )
    assert files_under(root) == sorted(expected)  # nothing else, no .part
    for wall, path in zip(walls, expected):
        assert path.read_bytes() == expected_bytes(wall)
        assert replica.requests_for(url_of(replica, wall)) == 1
    assert (report.requested, report.downloaded, report.already_present) == (20, 20, 0)
    assert report.thumbnails == 0 and report.failed == []
    assert report.bytes == sum(len(expected_bytes(w)) for w in walls)
    assert (report.db_inserted, report.db_duplicates, report.db_failed) == (20, 0, 0)
    assert report.seconds > 0 and report.ok and report.error is None

    rows = {row.filepath: row for row in rows_under(root)}
    assert len(rows) == 20
    for wall, path in zip(walls, expected):
        row = rows[str(path.resolve())]
        body = expected_bytes(wall)
        assert row.camera_id == STREAM and row.terminal == TERMINAL
        assert row.timestamp == wall_clock_to_utc(wall)
        assert row.file_size == len(body)
        assert row.sha256 == hashlib.sha256(body).hexdigest()
        assert row.source_url == url_of(replica, wall)
        assert row.is_thumbnail is False
        assert row.run_id == report.run_id
    assert_run_matches(report, "ok")


def test_duplicates_in_the_input_and_a_rerun(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
) -> None:
    walls = day_times(DAY)[30:40]
    zone = get_zone("America/Los_Angeles")
    mixed: list[str | datetime] = [w.isoformat() for w in walls]
    mixed += walls[:5]
    mixed += [w.replace(tzinfo=zone).astimezone(timezone.utc) for w in walls[3:8]]
    mixed += [walls[0].isoformat(), walls[0].isoformat() + ".000"]
    downloader = make_downloader()

    first = downloader.download_images_direct(STREAM, mixed)

    assert first.requested == 10 and first.downloaded == 10
    assert len(first.files) == len(set(first.files)) == 10
    for wall in walls:
        assert replica.requests_for(url_of(replica, wall)) == 1
    assert (first.db_inserted, first.db_duplicates) == (10, 0)

    second = downloader.download_images_direct(STREAM, mixed)

    assert (second.downloaded, second.already_present) == (0, 10)
    assert (second.db_inserted, second.db_duplicates, second.db_failed) == (0, 10, 0)
    assert sorted(second.files) == sorted(first.files)
    assert replica.total_requests == 10  # nothing fetched again
    assert len(rows_under(tmp_path / "images")) == 10
    assert_run_matches(second, "ok")
    assert second.run_id != first.run_id


def test_files_already_present_get_their_rows(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
) -> None:
    walls = day_times(DAY)[50:60]
    offline = make_downloader(persist=False)
    silent = offline.download_images_direct(STREAM, walls)
    assert silent.downloaded == 10 and silent.run_id is None
    assert (silent.db_inserted, silent.db_duplicates, silent.db_failed) == (0, 0, 0)
    assert rows_under(tmp_path / "images") == []
    assert queries.recent_runs() == []
    replica.reset_counters()

    report = make_downloader().download_images_direct(STREAM, walls)

    assert (report.downloaded, report.already_present) == (0, 10)
    assert report.db_inserted == 10 and report.bytes == 0
    assert replica.total_requests == 0
    rows = rows_under(tmp_path / "images")
    assert len(rows) == 10
    assert all(row.sha256 and row.file_size == 60_000 for row in rows)
    assert_run_matches(report, "ok")


def test_thumbnail_fallback_then_the_full_size_beside_it(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
) -> None:
    walls = day_times(DAY)[:12]
    missing = [walls[2], walls[5], walls[9]]
    replica.faults = Faults(missing_full=frozenset(w.isoformat() for w in missing))
    root = tmp_path / "images"
    downloader = make_downloader()

    first = downloader.download_images_direct(STREAM, walls)

    assert first.downloaded == 12 and first.thumbnails == 3 and first.failed == []
    thumbs = [path_of(root, w, thumbnail=True) for w in missing]
    assert sorted(p.name for p in thumbs) == sorted(
        p.name for p in map(Path, first.files) if p.name.endswith("_thumb.jpg")
    )
    for wall, thumb in zip(missing, thumbs):
        assert thumb.read_bytes() == expected_bytes(wall, thumbnail=True)
        assert not path_of(root, wall).exists()
        assert replica.requests_for(url_of(replica, wall)) == 1
        assert replica.requests_for(url_of(replica, wall, thumbnail=True)) == 1
    assert replica.requests_for(url_of(replica, walls[0], thumbnail=True)) == 0
    assert first.bytes == 9 * 60_000 + sum(
        len(expected_bytes(w, thumbnail=True)) for w in missing
    )
    rows = {row.filepath: row for row in rows_under(root)}
    for wall, thumb in zip(missing, thumbs):
        row = rows[str(thumb.resolve())]
        assert row.is_thumbnail is True
        assert row.source_url == url_of(replica, wall, thumbnail=True)
        assert row.timestamp == wall_clock_to_utc(wall)
    assert sum(row.is_thumbnail for row in rows.values()) == 3
    assert_run_matches(first, "ok")

    # The full-size pictures appear: a later run fetches them, beside the thumbnails.
    replica.faults = Faults()
    second = downloader.download_images_direct(STREAM, walls)

    assert (second.downloaded, second.already_present, second.thumbnails) == (3, 9, 0)
    for wall, thumb in zip(missing, thumbs):
        assert path_of(root, wall).read_bytes() == expected_bytes(wall)
        assert thumb.exists()
        assert str(path_of(root, wall)) in second.files
        assert str(thumb) not in second.files
    assert (second.db_inserted, second.db_duplicates) == (3, 9)
    rows = {row.filepath: row for row in rows_under(root)}
    assert len(rows) == 15
    assert sum(row.is_thumbnail for row in rows.values()) == 3


def test_the_database_failing_for_the_batch_keeps_files_and_a_rerun_recovers(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    walls = day_times(DAY)[60:75]
    downloader = make_downloader(batch_size=4)
    calls = Counter[int]()

    def connection_lost(session: Any, chunk: list[dict[str, Any]]) -> Any:
        calls[len(chunk)] += 1
        raise OperationalError(
            "INSERT", {}, Exception("server closed the connection unexpectedly")
        )

    with patch.object(queries, "_insert_chunk", connection_lost):
        report = downloader.download_images_direct(STREAM, walls)

    assert report.downloaded == 15 and len(report.files) == 15
    assert all(Path(f).is_file() for f in report.files)
    assert (report.db_inserted, report.db_failed) == (0, 15)
    assert downloader.db_failures == 15
    assert not report.ok
    assert calls == Counter({4: 3 * 3, 3: 3})  # each chunk tried 3 times
    assert "retry 1/2" in caplog.text
    assert_run_matches(report, "db_failed")
    assert rows_under(tmp_path / "images") == []

    again = downloader.download_images_direct(STREAM, walls)
    assert (again.already_present, again.db_inserted, again.db_failed) == (15, 15, 0)
    assert len(rows_under(tmp_path / "images")) == 15
    assert_run_matches(again, "ok")


def test_the_database_down_for_the_batch_then_reindex_recovers_one_row_per_file(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    walls = day_times(DAY)[80:95]
    root = tmp_path / "images"
    models.configure(UNREACHABLE_DB, retry_attempts=2, retry_delay=0.01)
    downloader = make_downloader()

    report = downloader.download_images_direct(STREAM, walls)

    assert report.downloaded == 15 and report.db_failed == 15
    assert report.run_id is None
    assert downloader.db_failures == 15
    assert "could not record the start of the run" in caplog.text
    files = [p for p in files_under(root)]
    assert len(files) == 15 and all(p.suffix == ".jpg" for p in files)

    models.configure(database, retry_attempts=3, retry_delay=0.01)
    recovered = reindex_archive(root, cdn_url=replica.cdn_url)

    assert (recovered.scanned, recovered.missing, recovered.inserted) == (15, 15, 15)
    rows = rows_under(root)
    assert sorted(row.filepath for row in rows) == sorted(
        str(p.resolve()) for p in files
    )
    by_path = {row.filepath: row for row in rows}
    for wall in walls:
        row = by_path[str(path_of(root, wall).resolve())]
        assert row.timestamp == wall_clock_to_utc(wall)
        assert row.sha256 == hashlib.sha256(expected_bytes(wall)).hexdigest()
        assert row.source_url == url_of(replica, wall)
    assert reindex_archive(root).inserted == 0
    assert len(rows_under(root)) == 15


def test_two_downloaders_on_overlapping_times_into_one_folder(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
) -> None:
    replica.faults = Faults(latency=0.005)
    walls = times_over_days(300)
    root = tmp_path / "images"
    first, second = make_downloader(), make_downloader()
    reports: dict[str, DownloadReport] = {}
    errors: list[BaseException] = []

    def run(name: str, downloader: DrayDogDownloader, part: list[datetime]) -> None:
        try:
            reports[name] = downloader.download_images_direct(STREAM, part)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("a", first, walls[:200])),
        threading.Thread(target=run, args=("b", second, walls[100:])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []

    files = files_under(root)
    assert files == sorted(path_of(root, w) for w in walls)  # one each, no .part
    for wall in walls[::7]:
        assert path_of(root, wall).read_bytes() == expected_bytes(wall)
    rows = rows_under(root)
    assert len(rows) == 300
    assert len({row.filepath for row in rows}) == 300
    a, b = reports["a"], reports["b"]
    assert a.failed == [] and b.failed == []
    assert a.downloaded + a.already_present == 200
    assert b.downloaded + b.already_present == 200
    assert a.db_inserted + b.db_inserted == 300
    assert a.db_inserted + a.db_duplicates == 200
    assert b.db_inserted + b.db_duplicates == 200


# --- concurrency, progress, chunks ----------------------------------------------------


def test_eight_workers_fetch_each_picture_once(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replica.faults = Faults(latency=0.02)
    walls = times_over_days(300)
    root = tmp_path / "images"
    renamed: Counter[str] = Counter()
    real_replace = os.replace

    def counting_replace(src: Any, dst: Any) -> None:
        renamed[str(dst)] += 1
        real_replace(src, dst)

    monkeypatch.setattr("modules.downloader.fetch.os.replace", counting_replace)
    downloader = make_downloader(max_workers=8)

    report = downloader.download_images_direct(STREAM, walls)

    assert report.downloaded == 300 and report.failed == []
    assert all(replica.requests_for(url_of(replica, w)) == 1 for w in walls)
    assert replica.total_requests == 300
    assert len(renamed) == 300 and set(renamed.values()) == {1}
    assert files_under(root) == sorted(path_of(root, w) for w in walls)
    rows = rows_under(root)
    assert len(rows) == len({row.filepath for row in rows}) == 300
    assert queries.count_images() == 300
    # Each worker waits 20 ms per answer, so requests arriving within 16 ms of one
    # another came from different workers: there were 8 at a time, never more.
    arrivals = [record.monotonic for record in replica.request_log]
    most = max(
        sum(1 for later in arrivals[i:] if later - first < 0.016)
        for i, first in enumerate(arrivals)
    )
    assert 6 <= most <= 8


def test_progress_is_called_once_per_picture(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    walls = day_times(DAY)[:10]
    downloader = make_downloader(persist=False)
    downloader.download_images_direct(STREAM, walls[:3])
    absent = walls[-1] + timedelta(seconds=1)
    calls: list[tuple[PictureOutcome, int, int]] = []

    downloader.download_images_direct(
        STREAM,
        walls + [absent],
        progress=lambda outcome, done, total: calls.append((outcome, done, total)),
    )

    assert [done for _, done, _ in calls] == list(range(1, 12))
    assert {total for _, _, total in calls} == {11}
    statuses = Counter(outcome.status for outcome, _, _ in calls)
    assert statuses == Counter({"downloaded": 7, "present": 3, "failed": 1})
    assert sorted(outcome.wall_time for outcome, _, _ in calls) == sorted(
        walls + [absent]
    )
    failed = [outcome for outcome, _, _ in calls if outcome.status == "failed"]
    assert failed[0].path is None and "404" in str(failed[0].reason)


def test_batch_size_chunks_give_the_same_rows(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
) -> None:
    walls = day_times(DAY)[:20]
    chunked_root, whole_root = tmp_path / "chunked", tmp_path / "whole"
    real_insert = queries.insert_images
    with patch.object(queries, "insert_images", wraps=real_insert) as spy:
        chunked = make_downloader(batch_size=7, download_dir=chunked_root)
        report = chunked.download_images_direct(STREAM, walls)
    sizes = [len(list(call.args[0])) for call in spy.call_args_list]
    assert sizes == [7, 7, 6]
    assert all(call.kwargs["chunk_size"] == 7 for call in spy.call_args_list)
    assert report.db_inserted == 20
    make_downloader(download_dir=whole_root).download_images_direct(STREAM, walls)

    def essence(root: Path) -> set[tuple[Any, ...]]:
        return {
            (
                Path(row.filepath).relative_to(root.resolve()),
                row.camera_id,
                row.terminal,
                row.timestamp,
                row.file_size,
                row.sha256,
                row.source_url,
                row.is_thumbnail,
            )
            for row in rows_under(root)
        }

    assert len(essence(chunked_root)) == 20
    assert essence(chunked_root) == essence(whole_root)


# --- inputs -----------------------------------------------------------------------------


def test_missing_full_rate_falls_back_for_the_picked_pictures(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
) -> None:
    faults = Faults(missing_full_rate=0.3, seed=7)
    replica.faults = faults
    walls = day_times(DAY)[:40]
    picked = [w for w in walls if faults.is_missing(TERMINAL, STREAM, w, False)]
    assert 3 <= len(picked) <= 25

    report = make_downloader().download_images_direct(STREAM, walls)

    assert report.downloaded == 40 and report.thumbnails == len(picked)
    thumbs = sorted(f for f in report.files if f.endswith("_thumb.jpg"))
    root = tmp_path / "images"
    assert thumbs == sorted(str(path_of(root, w, thumbnail=True)) for w in picked)
    rows = rows_under(root)
    assert sum(row.is_thumbnail for row in rows) == len(picked)


def test_pictures_missing_entirely_are_listed_as_failed(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
) -> None:
    walls = day_times(DAY)[:20]
    replica.faults = Faults(missing=frozenset(w.isoformat() for w in walls[:2]))
    never_taken = walls[3] + timedelta(seconds=1)

    report = make_downloader().download_images_direct(STREAM, walls + [never_taken])

    assert report.requested == 21 and report.downloaded == 18
    assert sorted(report.failed) == sorted(
        (w.isoformat(), "404: no picture, no thumbnail")
        for w in walls[:2] + [never_taken]
    )
    for wall in walls[:2] + [never_taken]:
        assert replica.requests_for(url_of(replica, wall)) == 1
        assert replica.requests_for(url_of(replica, wall, thumbnail=True)) == 1
    assert len(files_under(tmp_path / "images")) == 18
    assert len(rows_under(tmp_path / "images")) == 18
    assert not report.ok
    assert_run_matches(report, "partial")


def test_fetch_errors_are_reasons_in_the_failed_list(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    walls = day_times(DAY)[:4]
    downloader = make_downloader(persist=False, max_retries=1)
    replica.faults = Faults(error_rate=1.0)
    report = downloader.download_images_direct(STREAM, walls[:2])
    assert [reason for _, reason in report.failed] == ["HTTP 503", "HTTP 503"]
    replica.faults = Faults(
        missing_full=frozenset({walls[2].isoformat()}), html_rate=1.0
    )
    report = downloader.download_images_direct(STREAM, walls[2:3])
    assert len(report.failed) == 1
    assert report.failed[0][1].startswith("thumbnail: not a JPEG")
    assert files_under(tmp_path / "images") == []


def test_an_unexpected_error_fails_one_picture_only(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walls = day_times(DAY)[:5]
    downloader = make_downloader(persist=False)
    real_obtain = downloader._obtain

    def broken(
        url: str,
        destination: Any,
        wall: datetime,
        is_thumbnail: bool,
        utc: datetime,
        known: Any = None,
    ) -> Any:
        if wall == walls[2]:
            raise RuntimeError("bug")
        return real_obtain(url, destination, wall, is_thumbnail, utc, known)

    monkeypatch.setattr(downloader, "_obtain", broken)
    report = downloader.download_images_direct(STREAM, walls)
    assert report.downloaded == 4
    assert report.failed == [(walls[2].isoformat(), "RuntimeError: bug")]


def test_max_images_takes_the_earliest(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    walls = day_times(DAY)[:20]
    downloader = make_downloader(persist=False)
    report = downloader.download_images_direct(
        STREAM, list(reversed(walls)), max_images=5
    )
    assert report.requested == 5 and report.downloaded == 5
    root = tmp_path / "images"
    assert files_under(root) == sorted(path_of(root, w) for w in walls[:5])
    assert replica.total_requests == 5
    nothing = downloader.download_images_direct(STREAM, walls, max_images=0)
    assert nothing.requested == 0 and nothing.files == [] and nothing.ok
    with pytest.raises(ValueError, match="max_images"):
        downloader.download_images_direct(STREAM, walls, max_images=-1)


def test_save_dir_replaces_the_download_dir(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    walls = day_times(DAY)[:3]
    downloader = make_downloader(persist=False)
    elsewhere = tmp_path / "elsewhere"
    report = downloader.download_images_direct(STREAM, walls, save_dir=str(elsewhere))
    assert files_under(elsewhere) == sorted(path_of(elsewhere, w) for w in walls)
    assert sorted(report.files) == sorted(str(path_of(elsewhere, w)) for w in walls)
    assert not (tmp_path / "images").exists()


def test_strings_naive_and_aware_timestamps_mean_the_same_pictures(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    walls = day_times(DAY)[100:106] + day_times(DAY.replace(day=7))[:2]
    zone = get_zone("America/Los_Angeles")
    forms: dict[str, list[str | datetime]] = {
        "strings": [w.isoformat() for w in walls],
        "naive": list(walls),
        "utc": [w.replace(tzinfo=zone).astimezone(timezone.utc) for w in walls],
        "tokyo": [
            w.replace(tzinfo=zone).astimezone(get_zone("Asia/Tokyo")) for w in walls
        ],
    }
    found: dict[str, list[tuple[Path, bytes]]] = {}
    for name, stamps in forms.items():
        root = tmp_path / name
        report = make_downloader(
            persist=False, download_dir=root
        ).download_images_direct(STREAM, stamps)
        assert report.downloaded == 8 and report.failed == []
        found[name] = [(p.relative_to(root), p.read_bytes()) for p in files_under(root)]
    assert found["strings"] == found["naive"] == found["utc"] == found["tokyo"]
    assert {p.parent.name for p, _ in found["strings"]} == {"2025-09-06", "2025-09-07"}


def test_a_bad_timestamp_writes_nothing(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
) -> None:
    walls = day_times(DAY)[:5]
    downloader = make_downloader()
    bad_inputs: list[list[Any]] = [
        [w.isoformat() for w in walls] + ["garbage"],
        [*walls, "2025-09-06T25:00:00"],
        [*walls, ""],
    ]
    for stamps in bad_inputs:
        with pytest.raises(ValueError):
            downloader.download_images_direct(STREAM, stamps)
    with pytest.raises(TypeError):
        not_a_time: list[Any] = [*walls, 1757200054]
        downloader.download_images_direct(STREAM, not_a_time)
    with pytest.raises(InvalidName):
        downloader.download_images_direct("../x", walls)
    assert replica.total_requests == 0
    assert not (tmp_path / "images").exists()
    assert queries.count_images() == 0
    assert queries.recent_runs() == []


def test_stale_parts_of_dead_processes_are_cleared_first(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    walls = day_times(DAY)[:2]
    folder = path_of(tmp_path / "images", walls[0]).parent
    folder.mkdir(parents=True)
    dead = (
        folder
        / f".{path_of(folder, walls[0]).name}.{HOST_TAG}-999999999-0123abcd{PART_SUFFIX}"
    )
    dead.write_bytes(b"half")
    make_downloader(persist=False).download_images_direct(STREAM, walls)
    assert not dead.exists()
    assert files_under(tmp_path / "images") == sorted(
        path_of(tmp_path / "images", w) for w in walls
    )


def test_a_progress_callback_that_raises_stops_the_batch_without_leftovers(
    replica: ReplicaServer, make_downloader: DownloaderFactory, tmp_path: Path
) -> None:
    replica.faults = Faults(latency=0.01)
    walls = day_times(DAY)[:60]
    downloader = make_downloader(persist=False, max_workers=4)

    def stop(outcome: PictureOutcome, done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        downloader.download_images_direct(STREAM, walls, progress=stop)
    requests_at_raise = replica.total_requests
    files = files_under(tmp_path / "images")
    assert not any(p.name.endswith(PART_SUFFIX) for p in files)
    assert (
        3 <= len(files) <= 3 + 2 * 4
    )  # the in-flight ones finish, the rest never start
    assert requests_at_raise < 60
    time.sleep(0.1)  # nothing goes on in the background once the call has raised
    assert replica.total_requests == requests_at_raise
    assert files_under(tmp_path / "images") == files


def test_finishing_the_run_may_fail_without_failing_the_batch(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    with patch.object(queries, "finish_run", side_effect=RuntimeError("gone")):
        report = make_downloader().download_images_direct(STREAM, day_times(DAY)[:2])
    assert report.downloaded == 2 and report.db_inserted == 2
    assert "could not record the end of run" in caplog.text
    assert run_row(report.run_id).status == "running"


def test_at_most_twice_max_workers_pictures_are_in_flight(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory stays flat: pictures are handed to the pool as others finish, not all at once."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from modules.downloader import selenium_client

    events: list[str] = []

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            events.append("submit")
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(selenium_client, "ThreadPoolExecutor", CountingPool)
    walls = times_over_days(100)
    report = make_downloader(persist=False, max_workers=3).download_images_direct(
        STREAM, walls, progress=lambda outcome, done, total: events.append("done")
    )
    assert report.downloaded == 100
    assert events.count("submit") == events.count("done") == 100
    outstanding, most = 0, 0
    for event in events:
        outstanding += 1 if event == "submit" else -1
        most = max(most, outstanding)
    assert most == 2 * 3


def test_an_interrupted_batch_closes_its_run_and_records_its_files(
    replica: ReplicaServer, make_downloader: DownloaderFactory, database: str
) -> None:
    walls = day_times(DAY)[:40]
    downloader = make_downloader(max_workers=2)

    def interrupt(outcome: PictureOutcome, done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        downloader.download_images_direct(STREAM, walls, progress=interrupt)

    (run,) = queries.recent_runs()
    assert (run.status, run.downloaded) == ("interrupted", 5)
    assert run.finished_at is not None
    recorded = {
        queries.image_location(image, downloader.download_dir)
        for image in queries.list_images()
    }
    assert len(recorded) == 5
    assert all(Path(path).is_file() for path in recorded)
