"""An archive in a bucket, end to end: the downloader, reruns, reindex and failed uploads
against moto's S3 server on 127.0.0.1 and the replica CDN (issue 10).

Pictures are fetched over real HTTP from the replica, verified in a local ``.part``,
uploaded with one PutObject each and recorded in SQLite; what the bucket holds is
read back with a client of its own and compared byte for byte with what the
replica serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from modules.database import models, queries
from modules.database.models import Image
from modules.downloader import DrayDogDownloader
from modules.downloader import reindex as reindex_module
from modules.downloader.archive import picture_key
from modules.downloader.reindex import reindex_archive
from modules.downloader.selenium_client import PictureOutcome
from modules.replica import Faults, ReplicaServer, Schedule
from modules.storage import LocalStorage, Storage, StorageError
from modules.storage.s3 import S3Storage, new_s3_client
from tests.downloader.conftest import (
    DAY,
    day_times,
    expected_bytes,
    times_over_days,
    url_of,
)
from tests.s3_server import MotoServer, make_bucket, point_boto3_at
from tests.storage.helpers import (
    PREFIX,
    STREAM,
    TERMINAL,
    expected_objects,
    files_below,
    objects,
)

SCHEDULE = Schedule(today=DAY.replace(day=20))


@pytest.fixture(scope="module")
def replica_server() -> Iterator[ReplicaServer]:
    with ReplicaServer(schedule=SCHEDULE, faults=Faults()) as server:
        yield server


@pytest.fixture
def replica(replica_server: ReplicaServer) -> Iterator[ReplicaServer]:
    """The module's replica, with no faults and zeroed counters for this test."""
    replica_server.faults = Faults()
    replica_server.reset_counters()
    yield replica_server
    replica_server.faults = Faults()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> str:
    """This test's SQLite database, configured as the archive's."""
    models.configure(sqlite_url, retry_attempts=3, retry_delay=0.01)
    models.init_db()
    return sqlite_url


def make_downloader(
    replica: ReplicaServer, archive: str | Storage, **options: Any
) -> DrayDogDownloader:
    return DrayDogDownloader(
        download_dir=archive,
        cdn_url=replica.cdn_url,
        app_url=replica.app_url,
        retry_delay=0.01,
        timeout=5,
        **options,
    )


def rows() -> list[Image]:
    with models.session_scope() as session:
        found = list(session.scalars(select(Image).order_by(Image.timestamp)))
        session.expunge_all()
        return found


def key_of(wall: datetime) -> str:
    return picture_key(TERMINAL, STREAM, wall)


class Hashes:
    """Counts the stored objects read back to be hashed (``Storage.sha256``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keys: list[str] = []
        real = Storage.sha256

        def counting(storage: Storage, key: str) -> str:
            self.keys.append(key)
            return real(storage, key)

        monkeypatch.setattr(Storage, "sha256", counting)


# --- a day into a bucket, and the rerun -------------------------------------------------


def test_a_day_goes_into_a_bucket_byte_exact_and_a_rerun_fetches_nothing(
    replica: ReplicaServer,
    s3_bucket: str,
    sqlite_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    times = day_times(DAY)
    location = f"s3://{s3_bucket}/{PREFIX}"
    with make_downloader(replica, location) as downloader:
        assert downloader.download_dir == location
        report = downloader.download_images_direct(STREAM, times)

    assert (report.downloaded, report.failed, report.db_inserted) == (144, [], 144)
    assert objects(s3_bucket) == expected_objects(times)
    assert sorted(report.files) == sorted(f"{location}/{key_of(t)}" for t in times)
    stored = rows()
    assert [row.filepath for row in stored] == [key_of(t) for t in times]
    for row, wall in zip(stored, times):
        assert queries.image_location(row, location) == f"{location}/{key_of(wall)}"
        assert row.file_size == len(expected_bytes(wall))
    assert all(replica.requests_for(url_of(replica, t)) == 1 for t in times)

    replica.reset_counters()
    hashes = Hashes(monkeypatch)
    with make_downloader(replica, location) as downloader:
        again = downloader.download_images_direct(STREAM, times)
    assert (again.downloaded, again.already_present, again.failed) == (0, 144, [])
    assert replica.total_requests == 0, "a stored picture is never fetched again"
    assert hashes.keys == [], "nor read back: its row has its size and hash"
    assert again.db_inserted == 0 and len(rows()) == 144
    assert objects(s3_bucket) == expected_objects(times)


def test_a_rerun_fetches_only_what_the_bucket_lacks(
    replica: ReplicaServer, s3_bucket: str, sqlite_db: str
) -> None:
    times = day_times(DAY)[:12]
    storage = S3Storage(s3_bucket, PREFIX)
    with make_downloader(replica, storage) as downloader:
        downloader.download_images_direct(STREAM, times)
        storage.delete(key_of(times[4]))
        replica.reset_counters()

        again = downloader.download_images_direct(STREAM, times)

    assert (again.downloaded, again.already_present) == (1, 11)
    assert replica.total_requests == 1
    assert replica.requests_for(url_of(replica, times[4])) == 1
    assert objects(s3_bucket) == expected_objects(times)
    assert len(rows()) == 12


# --- reindex by listing ------------------------------------------------------------------


def test_reindex_of_a_bucket_whose_rows_were_deleted_restores_them(
    replica: ReplicaServer,
    s3_bucket: str,
    sqlite_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reindex_module, "DAYS_PER_QUERY", 2)  # three days: two runs
    times = times_over_days(300)
    location = f"s3://{s3_bucket}/{PREFIX}"
    with make_downloader(replica, location) as downloader:
        downloader.download_images_direct(STREAM, times)
    before = {
        row.filepath: (row.timestamp, row.file_size, row.sha256, row.local_day)
        for row in rows()
    }
    assert len(before) == 300
    storage = S3Storage(s3_bucket, PREFIX)
    storage.put("apm/in_gate/notes.txt", b"not a picture")
    storage.put("apm/in_gate/2025-09-06/notes.txt", b"not a picture either")
    gone = sorted(before)[::3]
    with models.session_scope() as session:
        session.execute(delete(Image).where(Image.filepath.in_(gone)))
    assert len(rows()) == 200

    report = reindex_archive(location, cdn_url=replica.cdn_url)

    assert (report.missing, report.inserted, report.failed) == (100, 100, [])
    after = {
        row.filepath: (row.timestamp, row.file_size, row.sha256, row.local_day)
        for row in rows()
    }
    assert after == before
    restored = {row.filepath: row.source_url for row in rows() if row.filepath in gone}
    assert restored == {
        key_of(t): url_of(replica, t) for t in times if key_of(t) in gone
    }
    again = reindex_archive(storage)
    assert (again.scanned, again.missing, again.inserted) == (300, 0, 0)


def test_reindex_of_a_missing_bucket_is_a_clear_error(s3_env: str) -> None:
    with pytest.raises(StorageError, match="no bucket"):
        reindex_archive("s3://no-such-bucket/x")


# --- uploads that fail ------------------------------------------------------------------


class FailingUpload(S3Storage):
    """A bucket whose upload of one key fails (after the body was fetched and verified)."""

    def __init__(self, bucket: str, failing: str, staging_dir: Path) -> None:
        super().__init__(bucket, PREFIX, staging_dir=staging_dir)
        self.failing = failing

    def put(self, key: str, source: Path | bytes) -> int:
        if key == self.failing:
            raise StorageError(key, "upload failed: injected")
        return super().put(key, source)


def test_an_upload_that_fails_fails_its_picture_and_writes_no_row(
    replica: ReplicaServer, s3_bucket: str, sqlite_db: str, tmp_path: Path
) -> None:
    times = day_times(DAY)[:10]
    staging = tmp_path / "staging"
    storage = FailingUpload(s3_bucket, key_of(times[3]), staging)
    with make_downloader(replica, storage) as downloader:
        report = downloader.download_images_direct(STREAM, times)

    assert report.downloaded == 9
    assert len(report.failed) == 1
    when, reason = report.failed[0]
    assert when == times[3].isoformat()
    assert "upload failed: injected" in reason and key_of(times[3]) in reason
    expected = expected_objects(times)
    del expected[f"{PREFIX}/{key_of(times[3])}"]
    assert objects(s3_bucket) == expected
    assert sorted(row.filepath for row in rows()) == sorted(
        key_of(t) for t in times if t != times[3]
    )
    assert files_below(staging) == [], "no .part left behind"
    assert not report.ok


def test_the_server_stopped_mid_run_fails_the_rest_and_leaves_nothing_half_written(
    replica: ReplicaServer,
    sqlite_db: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    server = MotoServer()
    running = True
    try:
        point_boto3_at(monkeypatch, server.endpoint, tmp_path)
        bucket = make_bucket(server.endpoint)
        staging = tmp_path / "staging"
        storage = S3Storage(
            bucket, PREFIX, client=new_s3_client(max_attempts=1), staging_dir=staging
        )
        times = day_times(DAY)[:10]
        outcomes: list[PictureOutcome] = []

        def stop_after_the_first(
            outcome: PictureOutcome, done: int, total: int
        ) -> None:
            outcomes.append(outcome)
            nonlocal running
            if done == 1:
                server.stop()
                running = False

        with make_downloader(replica, storage, max_workers=1) as downloader:
            report = downloader.download_images_direct(
                STREAM, times, progress=stop_after_the_first
            )

        downloaded = {o.key for o in outcomes if o.status == "downloaded"}
        assert 1 <= len(downloaded) <= 2  # the first, and at most one in flight
        assert report.downloaded == len(downloaded)
        assert len(report.failed) == 10 - len(downloaded)
        assert all("storage:" in reason for _, reason in report.failed)
        assert {
            row.filepath for row in rows()
        } == downloaded, "no row without its object"
        assert files_below(staging) == [], "no .part left behind"

        server.start_again()
        running = True
        kept = objects(bucket)
        assert set(kept) == {f"{PREFIX}/{key}" for key in downloaded}
        assert all(
            body == expected_objects(times)[name] for name, body in kept.items()
        ), "no half object"
    finally:
        if running:
            server.stop()


def test_a_folder_archive_is_written_by_rename_without_a_copy(
    replica: ReplicaServer,
    sqlite_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local path stays as it was: each verified ``.part`` is renamed into place."""

    def no_copy(storage: LocalStorage, key: str, source: Path | bytes) -> int:
        raise AssertionError(f"{key} copied in rather than renamed")

    monkeypatch.setattr(LocalStorage, "put", no_copy)
    times = day_times(DAY)[:10]
    root = tmp_path / "images"
    with make_downloader(replica, str(root)) as downloader:
        assert downloader.download_dir == root
        report = downloader.download_images_direct(STREAM, times)

    assert (report.downloaded, report.failed) == (10, [])
    for wall in times:
        assert (root / key_of(wall)).read_bytes() == expected_bytes(wall)
    assert sorted(files_below(root)) == sorted(str(root / key_of(t)) for t in times)
    assert [row.filepath for row in rows()] == [key_of(t) for t in times]
