"""A batch that is interrupted, and a CDN in front of S3 that answers 403 for a missing file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from modules.database import queries
from modules.downloader import DrayDogDownloader
from modules.downloader.report import DownloadReport
from modules.downloader.selenium_client import Stopped
from modules.replica import Faults, ReplicaServer
from tests.downloader.conftest import (
    DAY,
    STREAM,
    DownloaderFactory,
    day_times,
    expected_bytes,
    files_under,
    rows_under,
)


def test_a_403_for_a_missing_full_size_picture_falls_back_to_the_thumbnail(
    replica: ReplicaServer, make_downloader: DownloaderFactory, sqlite_db: str
) -> None:
    walls = day_times(DAY)[:10]
    missing = {walls[1], walls[6]}
    replica.faults = Faults(
        missing_full=frozenset(w.isoformat() for w in missing), missing_status=403
    )

    report = make_downloader().download_images_direct(STREAM, walls)

    assert report.ok and report.downloaded == 10 and report.thumbnails == 2
    thumbs = sorted(Path(f) for f in report.files if f.endswith("_thumb.jpg"))
    assert [p.read_bytes() for p in thumbs] == [
        expected_bytes(w, thumbnail=True) for w in sorted(missing)
    ]


def test_a_403_for_both_is_one_failure_that_says_403(
    replica: ReplicaServer, make_downloader: DownloaderFactory, sqlite_db: str
) -> None:
    wall = day_times(DAY)[3]
    replica.faults = Faults(missing=frozenset({wall.isoformat()}), missing_status=403)

    report = make_downloader().download_images_direct(STREAM, [wall])

    assert report.failed == [(wall.isoformat(), "403: no picture, no thumbnail")]


def test_an_interrupt_during_a_stalled_batch_ends_at_once_and_keeps_the_complete(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    sqlite_db: str,
    tmp_path: Path,
) -> None:
    # Half the pictures stall for a minute before any header; the other half come
    # at once. Long timeouts: only the interrupt can end the stalled ones in time.
    replica.faults = Faults(hang_rate=0.5, hang_seconds=60, seed=3)
    downloader: DrayDogDownloader = make_downloader(timeout=60, max_workers=4)
    walls = day_times(DAY)[:40]
    outcome: list[DownloadReport | BaseException] = []

    def run() -> None:
        try:
            outcome.append(downloader.download_images_direct(STREAM, walls))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    root = tmp_path / "images"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        list(root.rglob("*.jpg")) and replica.total_requests >= 8
    ):
        time.sleep(0.05)
    time.sleep(0.3)  # every worker now waits on a stalled picture
    started = time.monotonic()
    downloader.interrupt()
    thread.join(10)

    assert not thread.is_alive()
    assert time.monotonic() - started < 2.0
    assert len(outcome) == 1 and isinstance(outcome[0], Stopped)
    files = files_under(root)
    assert files and all(
        f.suffix == ".jpg" and not f.name.startswith(".") for f in files
    )
    assert len(files) < len(walls)
    rows = rows_under(root)
    assert sorted(row.filepath for row in rows) == sorted(
        str(f.resolve()) for f in files
    )
    runs = queries.recent_runs(1)
    assert runs[0].status == "interrupted"


def test_an_interrupted_downloader_starts_nothing_more(
    replica: ReplicaServer, make_downloader: DownloaderFactory, sqlite_db: str
) -> None:
    downloader = make_downloader()
    downloader.interrupt()
    with pytest.raises(Stopped):
        downloader.download_images_direct(STREAM, day_times(DAY)[:5])
    with pytest.raises(Stopped):
        downloader.download_date(DAY, STREAM)
    assert replica.total_requests == 0
