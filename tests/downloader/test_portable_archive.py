"""An archive independent of where it is mounted: moved and reindexed it gains no row;
two workers writing it through two mount points store one row per picture."""

from __future__ import annotations

import shutil
from pathlib import Path

from modules.database import queries
from modules.downloader.reindex import reindex_archive
from tests.downloader.conftest import (
    DAY,
    STREAM,
    DownloaderFactory,
    day_times,
    expected_bytes,
)


def keys_and_ids() -> dict[str, int]:
    return {image.filepath: image.id for image in queries.list_images()}


def test_an_archive_moved_and_reindexed_gains_no_row(
    make_downloader: DownloaderFactory, database: str, tmp_path: Path
) -> None:
    walls = day_times(DAY)[:6]
    first = tmp_path / "first"
    report = make_downloader(download_dir=first).download_images_direct(
        STREAM, [w.isoformat() for w in walls]
    )
    assert report.db_inserted == 6
    before = keys_and_ids()
    assert all(not Path(key).is_absolute() for key in before)

    moved = tmp_path / "disk2" / "restored"
    moved.parent.mkdir()
    shutil.move(first, moved)
    again = reindex_archive(moved)
    assert (again.scanned, again.missing, again.inserted) == (6, 0, 0)
    assert keys_and_ids() == before
    # The read side finds the files where the archive is now.
    for image in queries.list_images():
        assert queries.image_location(image, moved).is_file()
    # A rerun of the downloader in the new place writes no row either.
    rerun = make_downloader(download_dir=moved).download_images_direct(
        STREAM, [w.isoformat() for w in walls]
    )
    assert (rerun.already_present, rerun.db_inserted, rerun.db_duplicates) == (6, 0, 6)
    assert keys_and_ids() == before


def test_two_workers_through_two_mount_points_store_one_row_per_picture(
    make_downloader: DownloaderFactory, database: str, tmp_path: Path
) -> None:
    shared = tmp_path / "nfs" / "archive"
    shared.mkdir(parents=True)
    mount_a, mount_b = tmp_path / "mnt_a", tmp_path / "mnt_b"
    mount_a.symlink_to(shared)
    mount_b.symlink_to(shared)
    walls = day_times(DAY)[:8]
    worker_a = make_downloader(download_dir=mount_a)
    worker_b = make_downloader(download_dir=mount_b)
    a = worker_a.download_images_direct(STREAM, [w.isoformat() for w in walls[:5]])
    b = worker_b.download_images_direct(STREAM, [w.isoformat() for w in walls[3:]])
    assert (a.db_inserted, b.db_inserted, b.db_duplicates) == (5, 3, 2)
    images = queries.list_images()
    assert len(images) == len({image.filepath for image in images}) == 8
    for image, wall in zip(images, walls):
        assert queries.image_location(image, mount_b).read_bytes() == expected_bytes(
            wall
        )
    assert reindex_archive(mount_a).inserted == reindex_archive(shared).inserted == 0
    assert queries.count_images() == 8
