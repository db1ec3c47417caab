"""Rows that name no picture of this archive (another store's URL, a path that is
no key, a file elsewhere on disk) beside the archive's own: ``gaps`` compares only
the archive's rows with its files, and ``prune`` removes the archive's pictures,
a file elsewhere by its path, and reports, without removing, what it cannot reach."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from modules.database import queries
from modules.service.gaps import find_gaps
from modules.service.prune import prune
from tests.service.archive_builder import (
    STREAM,
    TERMINAL,
    Archive,
    day,
    instant,
    record,
    wall_times,
)


def add_foreign_rows(tmp_path: Path) -> dict[str, str]:
    """Three rows of day 1 naming pictures outside the archive, one of each kind."""
    elsewhere = tmp_path / "scratch" / "in_gate_x.jpg"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_bytes(b"\xff\xd8 scratch \xff\xd9")
    first = wall_times(day(1))[0]
    stored = {
        "url": "s3://scratch-bucket/apm/in_gate/2025-09-01/in_gate_20250901T000007.jpg",
        "dotdot": "../outside/in_gate_20250901T001007.jpg",
        "absolute": str(elsewhere),
    }
    result = queries.insert_images(
        {
            "filepath": filepath,
            "camera_id": STREAM,
            "terminal": TERMINAL,
            # Instants of their own: one row per picture.
            "timestamp": instant(first) + timedelta(seconds=n + 1),
            "file_size": 9,
        }
        for n, filepath in enumerate(stored.values())
    )
    assert not result.failed
    return stored


def test_gaps_and_prune_beside_rows_of_other_stores(
    database: str, tmp_path: Path
) -> None:
    archive = Archive(tmp_path / "images")
    for n in (1, 2):
        archive.store(wall_times(day(n)))
        record(day(n), "complete", 144, 144)
    foreign = add_foreign_rows(tmp_path)

    report = find_gaps(start=day(1), end=day(2), archive=archive.root, today=day(3))
    assert report.rows_without_files == [] and report.files_without_rows == []
    assert not report.lacking

    pruned = prune(day(2), archive=archive.root)
    assert not [
        p for p in archive.paths if p.date() == day(1) and archive.paths[p].exists()
    ]
    assert not Path(foreign["absolute"]).exists()
    assert sorted(stored for stored, _ in pruned.failed) == sorted(
        [foreign["url"], foreign["dotdot"]]
    )
    left = {image.filepath for image in queries.iter_images()}
    assert {foreign["url"], foreign["dotdot"]} <= left
    assert len(left) == 144 + 2
    again = prune(day(2), archive=archive.root)
    assert (again.files_removed, again.rows_removed) == (0, 0)
