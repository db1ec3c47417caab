"""``reindex_archive``: the database catches up with the disk after it was down."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import delete

from modules.database.keys import key_for
from modules.database import models, queries
from modules.database.models import Image
from modules.downloader.fetch import sha256_of
from modules.downloader.archive import picture_path
from modules.downloader.reindex import reindex_archive
from modules.site.urls import build_image_url, wall_clock_to_utc
from tests.downloader.conftest import (
    DAY,
    STREAM,
    TERMINAL,
    day_times,
    expected_bytes,
    rows_under,
)

CDN = "https://cdn.draydog.com"


def write_archive(root: Path, walls: list[datetime]) -> list[Path]:
    """Pictures laid out as the downloader stores them, without any database row."""
    paths = []
    for index, wall in enumerate(walls):
        thumbnail = index % 5 == 4
        path = picture_path(root, TERMINAL, STREAM, wall, thumbnail)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(expected_bytes(wall, thumbnail=thumbnail))
        paths.append(path)
    return paths


def delete_rows(root: Path, paths: list[Path]) -> None:
    keys = [key_for(path, root) for path in paths]
    with models.session_scope() as session:
        session.execute(delete(Image).where(Image.filepath.in_(keys)))


def test_reindex_inserts_exactly_the_missing_rows(
    database: str, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    walls = day_times(DAY)[:20]
    paths = write_archive(root, walls)

    first = reindex_archive(root, cdn_url=CDN, batch_size=6)

    assert (first.scanned, first.missing, first.inserted, first.duplicates) == (
        20,
        20,
        20,
        0,
    )
    assert first.failed == []
    rows = {row.filepath: row for row in rows_under(root)}
    assert sorted(rows) == sorted(str(p.resolve()) for p in paths)
    for index, (wall, path) in enumerate(zip(walls, paths)):
        row = rows[str(path.resolve())]
        thumbnail = index % 5 == 4
        body = expected_bytes(wall, thumbnail=thumbnail)
        assert row.camera_id == STREAM and row.terminal == TERMINAL
        assert row.timestamp == wall_clock_to_utc(wall)
        assert row.file_size == len(body)
        assert row.sha256 == hashlib.sha256(body).hexdigest()
        assert row.is_thumbnail is thumbnail
        assert row.source_url == build_image_url(CDN, TERMINAL, STREAM, wall, thumbnail)
    ids_before = {path: row.id for path, row in rows.items()}

    delete_rows(root, paths[3:8])
    second = reindex_archive(root, cdn_url=CDN)

    assert (second.scanned, second.missing, second.inserted) == (20, 5, 5)
    rows = {row.filepath: row for row in rows_under(root)}
    assert len(rows) == 20
    kept = [str(p.resolve()) for p in paths[:3] + paths[8:]]
    assert all(rows[path].id == ids_before[path] for path in kept)

    third = reindex_archive(root)
    assert (third.scanned, third.missing, third.inserted) == (20, 0, 0)
    assert len(rows_under(root)) == 20


def test_reindex_without_cdn_url_leaves_source_url_empty(
    sqlite_db: str, tmp_path: Path
) -> None:
    write_archive(tmp_path / "a", day_times(DAY)[:2])
    assert reindex_archive(tmp_path / "a").inserted == 2
    assert [row.source_url for row in rows_under(tmp_path / "a")] == [None, None]


def test_reindex_in_another_time_zone(sqlite_db: str, tmp_path: Path) -> None:
    wall = day_times(DAY)[0]
    write_archive(tmp_path / "a", [wall])
    reindex_archive(tmp_path / "a", source_timezone="UTC")
    (row,) = rows_under(tmp_path / "a")
    assert row.timestamp == wall_clock_to_utc(wall, "UTC")


def test_foreign_and_unreadable_files_are_skipped(
    sqlite_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "archive"
    paths = write_archive(root, day_times(DAY)[:6])
    (root / "notes.txt").write_text("hello")
    (root / "apm" / "in_gate" / "2025-09-06" / "holiday.jpg").write_bytes(b"x")
    (
        root / "apm" / "in_gate" / "2025-09-06" / ".x.jpg.host-1-0123abcd.part"
    ).write_bytes(b"x")
    stray = root / "apm" / "in_gate" / "2025-09-07" / paths[0].name
    stray.parent.mkdir()
    stray.write_bytes(b"x")  # a name whose day is not its folder's
    unreadable = paths[2]
    real_sha = sha256_of

    def refuse(path: Path) -> str:
        if path == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return real_sha(path)

    monkeypatch.setattr("modules.downloader.reindex.sha256_of", refuse)

    report = reindex_archive(root)

    assert report.scanned == 6
    assert report.inserted == 5
    assert report.failed == [
        (str(unreadable.resolve()), "cannot read: Permission denied")
    ]
    assert sorted(row.filepath for row in rows_under(root)) == sorted(
        str(p.resolve()) for p in paths if p != unreadable
    )
    monkeypatch.setattr("modules.downloader.reindex.sha256_of", real_sha)
    again = reindex_archive(root)
    assert (again.missing, again.inserted, again.failed) == (1, 1, [])


def test_reindex_reports_a_database_that_is_down(
    unreachable_db: str, tmp_path: Path
) -> None:
    write_archive(tmp_path / "a", day_times(DAY)[:2])
    with pytest.raises(Exception):
        reindex_archive(tmp_path / "a")


def test_reindex_of_an_empty_or_missing_folder(sqlite_db: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    report = reindex_archive(empty)
    assert (report.scanned, report.inserted, report.failed) == (0, 0, [])
    with pytest.raises(ValueError, match="not an archive folder"):
        reindex_archive(tmp_path / "missing")
    file = tmp_path / "file.jpg"
    file.write_bytes(b"x")
    with pytest.raises(ValueError):
        reindex_archive(file)


def test_reindex_counts_rows_written_meanwhile_as_duplicates(
    sqlite_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A downloader may write a row between the lookup and the insert: counted, not failed."""
    root = tmp_path / "a"
    paths = write_archive(root, day_times(DAY)[:3])
    monkeypatch.setattr(
        queries, "folder_keys", lambda terminal, stream, first, last: set()
    )
    assert reindex_archive(root).inserted == 3
    again = reindex_archive(root)
    assert (again.missing, again.inserted, again.duplicates) == (3, 0, 3)
    assert len(rows_under(root)) == len(paths)
    assert os.path.isdir(root)
