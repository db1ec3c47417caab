"""find_gaps on archives with known holes and on a complete one (SQLite and PostgreSQL).

The archives are written directly (files, rows, day records): the subject here is
what the database counts and how the folder is compared with it. The end-to-end
test at the bottom builds its archive with the real downloader on the replica.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from modules.database import coverage, models, queries
from modules.downloader import DrayDogDownloader
from modules.downloader.discovery import DiscoveryResult
from modules.replica import Faults, ReplicaServer
from modules.service.gaps import (
    NothingArchived,
    ShortDay,
    StreamDay,
    ThumbnailDay,
    find_gaps,
)
from tests.cli.conftest import delete_rows
from tests.downloader.conftest import (  # noqa: F401 - fixtures used below
    DAY,
    day_times,
    make_downloader,
    replica,
    replica_server,
    sqlite_db,
)
from tests.service.archive_builder import (
    STREAM,
    TERMINAL,
    Archive,
    day,
    instant,
    outage_hours,
    record,
    wall_times,
)

TODAY = day(8)


@pytest.fixture
def archive(database: str, tmp_path: Path) -> Archive:
    return Archive(tmp_path / "images")


def build_holey(archive: Archive) -> dict[str, object]:
    """Days 1-6: each with one kind of hole; what each hole should be reported as."""
    # Day 1: complete.
    archive.store(wall_times(day(1)))
    record(day(1), "complete", 144, 144)
    # Day 2: never archived (no rows, no record).
    # Day 3: four consecutive pictures failed (a 50-minute hole that is the archive's).
    lost = wall_times(day(3))[60:64]
    archive.store(t for t in wall_times(day(3)) if t not in lost)
    record(day(3), "partial", 144, 140, failed=4)
    # Day 4: the camera was off from 10:00 to 12:00; three pictures only as thumbnails.
    off = outage_hours(day(4), 10, 12)
    shown = [t for t in wall_times(day(4)) if t not in off]
    archive.store(shown, thumbnails=shown[:3])
    record(day(4), "complete", len(shown), len(shown), thumbnails=3)
    # Day 5: complete, but one file is gone and one file has no row.
    archive.store(wall_times(day(5))[:-1])
    orphan = archive.store(wall_times(day(5))[-1:], rows=False)[0]
    record(day(5), "complete", 144, 144)
    gone = archive.paths[wall_times(day(5))[7]]
    gone.unlink()
    # Day 6: confirmed empty by the site.
    record(day(6), "empty", 0, 0)
    return {"orphan": orphan, "gone": gone}


def test_an_archive_with_known_holes(archive: Archive) -> None:
    holes = build_holey(archive)
    report = find_gaps(start=day(1), end=day(6), archive=archive.root, today=TODAY)

    assert report.never_archived == [StreamDay(TERMINAL, STREAM, day(2))]
    assert report.short_days == [
        ShortDay(TERMINAL, STREAM, day(3), "partial", 144, 140, 4, 140)
    ]
    assert report.failed_pictures == 4
    assert report.thumbnails == [ThumbnailDay(TERMINAL, STREAM, day(4), 3)]
    assert report.rows_without_files == [str(holes["gone"])]
    assert report.files_without_rows == [str(holes["orphan"])]
    assert report.unverified == []
    # Only the camera's own hole: not day 3's (the archive's), not around day 2.
    assert [(o.last_before, o.first_after) for o in report.outages] == [
        (
            instant(datetime(2025, 9, 4, 9, 50, 7)),
            instant(datetime(2025, 9, 4, 12, 0, 7)),
        )
    ]
    outage = report.outages[0]
    assert outage.usual == timedelta(minutes=10)
    assert outage.length == timedelta(hours=2, minutes=10)
    assert report.lacking

    data = report.as_json()
    assert data["lacking"] is True and data["failed_pictures"] == 4
    assert data["never_archived"] == [
        {"terminal": TERMINAL, "stream": STREAM, "day": "2025-09-02"}
    ]
    assert data["outages"][0]["seconds"] == 2 * 3600 + 600
    assert data["outages"][0]["last_before"] == "2025-09-04T16:50:07+00:00"


def test_a_complete_archive_lacks_nothing(archive: Archive) -> None:
    for n in (1, 2, 3):
        archive.store(wall_times(day(n)), thumbnails=wall_times(day(n))[:1])
        record(day(n), "complete", 144, 144, thumbnails=1)
    report = find_gaps(archive=archive.root, today=day(4))
    assert report.streams[0].start == day(1) and report.streams[0].end == day(3)
    assert report.streams[0].pictures == 432
    assert not report.lacking
    assert report.never_archived == [] and report.short_days == []
    assert report.outages == []
    assert report.rows_without_files == report.files_without_rows == []
    # Thumbnails are listed, and lack nothing the site offers.
    assert [t.thumbnails for t in report.thumbnails] == [1, 1, 1]


def test_rows_by_key_match_the_files_wherever_the_archive_is_mounted(
    database: str, tmp_path: Path
) -> None:
    models.configure(archive_root=tmp_path / "images")
    built = Archive(tmp_path / "images")
    built.store(wall_times(day(1))[:10])
    record(day(1), "complete", 10, 10)
    moved = tmp_path / "mnt" / "copy"
    moved.parent.mkdir()
    built.root.rename(moved)
    report = find_gaps(archive=moved, today=day(2))
    assert report.rows_without_files == report.files_without_rows == []
    assert not report.lacking
    gone = sorted(moved.rglob("*.jpg"))[0]
    gone.unlink()
    again = find_gaps(archive=moved, today=day(2))
    assert again.rows_without_files == [str(gone.resolve())]


def test_a_hole_across_a_confirmed_empty_day_is_the_cameras(archive: Archive) -> None:
    archive.store(wall_times(day(1)))
    record(day(1), "complete", 144, 144)
    record(day(2), "empty", 0, 0)
    archive.store(wall_times(day(3)))
    record(day(3), "complete", 144, 144)
    report = find_gaps(today=day(4))
    assert not report.lacking
    assert [(o.last_before, o.first_after) for o in report.outages] == [
        (instant(wall_times(day(1))[-1]), instant(wall_times(day(3))[0]))
    ]


def test_today_is_not_short_while_it_is_not_over(archive: Archive) -> None:
    archive.store(wall_times(day(1))[:50])
    record(day(1), "partial", 50, 50)
    assert not find_gaps(start=day(1), end=day(1), today=day(1)).lacking
    # The day is over and was never read again: the site may list more.
    later = find_gaps(start=day(1), end=day(1), today=day(2))
    assert [d.day for d in later.short_days] == [day(1)]
    assert later.lacking


def test_days_with_pictures_and_no_record_are_unverified_not_lacking(
    archive: Archive,
) -> None:
    archive.store(wall_times(day(1)))
    report = find_gaps(today=day(2))
    assert report.unverified == [StreamDay(TERMINAL, STREAM, day(1))]
    assert not report.lacking


def test_filters_defaults_and_bad_ranges(archive: Archive) -> None:
    archive.store(wall_times(day(2)))
    archive.store(wall_times(day(3)), stream="out_gate")
    record(day(2), "complete", 144, 144)
    report = find_gaps(today=day(4))
    # Each stream from its own first day to yesterday at the terminal.
    assert [(s.stream, s.start, s.end) for s in report.streams] == [
        (STREAM, day(2), day(3)),
        ("out_gate", day(3), day(3)),
    ]
    assert report.never_archived == [StreamDay(TERMINAL, STREAM, day(3))]
    only = find_gaps(stream="out_gate", today=day(4))
    assert [s.stream for s in only.streams] == ["out_gate"]
    # A stream the database does not know, with a start: every day is missing.
    unknown = find_gaps(
        terminal="wbct", stream="in_gate", start=day(1), end=day(2), today=day(4)
    )
    assert [d.day for d in unknown.never_archived] == [day(1), day(2)]
    with pytest.raises(NothingArchived):
        find_gaps(terminal="wbct", today=day(4))
    with pytest.raises(ValueError, match="reversed range"):
        find_gaps(start=day(3), end=day(2), today=day(4))


def test_outages_are_found_on_many_days_with_a_jittery_camera(archive: Archive) -> None:
    """60 days; capture times wander by up to 3 minutes; two outages on days 17 and 45."""
    walls = []
    for n in range(1, 61):
        for i, wall in enumerate(wall_times(day(n))):
            walls.append(wall + timedelta(seconds=(i * 37) % 180))
    off = outage_hours(day(17), 3, 4) | {
        w for w in walls if w.date() == day(45) and 13 <= w.hour < 15
    }
    off = {w for w in walls if any(abs((w - o).total_seconds()) < 200 for o in off)}
    archive.store(w for w in walls if w not in off)
    report = find_gaps(start=day(1), end=day(60), today=day(61))
    assert [o.last_before.astimezone(timezone.utc).date() for o in report.outages] == [
        day(17),
        day(45),
    ]
    assert all(o.length > timedelta(minutes=50) for o in report.outages)


def test_the_days_are_counted_by_the_database(archive: Archive) -> None:
    archive.store(wall_times(day(1)), thumbnails=wall_times(day(1))[:2])
    [covered] = coverage.day_coverage(
        TERMINAL, STREAM, day(1), day(1), slice_seconds=900
    )
    assert (covered.pictures, covered.thumbnails) == (144, 2)
    assert covered.first == instant(wall_times(day(1))[0])
    assert covered.last == instant(wall_times(day(1))[-1])
    assert covered.filled_slices == 96  # every 15-minute slice of the day


# --- end to end: an archive made by the downloader on the replica ------------------------


def listed(on: date, count: int) -> DiscoveryResult:
    return DiscoveryResult(on, STREAM, [t.isoformat() for t in day_times(on)[:count]])


def test_gaps_of_an_archive_the_downloader_made(
    replica: ReplicaServer,  # noqa: F811 - the fixture imported above
    make_downloader: object,  # noqa: F811
    sqlite_db: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    downloader: DrayDogDownloader = make_downloader()  # type: ignore[operator]
    first, second, third = DAY, DAY + timedelta(days=1), DAY + timedelta(days=3)
    lost = day_times(second)[5]
    thumb = day_times(third)[2]
    replica.faults = Faults(
        missing=frozenset({lost.isoformat()}),
        missing_full=frozenset({thumb.isoformat()}),
    )
    for on in (first, second, third):
        monkeypatch.setattr(downloader, "discover", lambda d, s, on=on: listed(on, 12))
        downloader.download_date(on, STREAM)

    root = tmp_path / "images"
    report = find_gaps(start=first, end=third, archive=root, today=third + timedelta(1))
    assert [d.day for d in report.never_archived] == [DAY + timedelta(days=2)]
    assert [(d.day, d.listed, d.stored, d.failed) for d in report.short_days] == [
        (second, 12, 11, 1)
    ]
    assert [(t.day, t.thumbnails) for t in report.thumbnails] == [(third, 1)]
    assert report.rows_without_files == report.files_without_rows == []
    assert report.lacking

    # A file deleted by hand, a row deleted by hand: both show.
    rows = sorted(queries.list_images(), key=lambda image: image.timestamp)
    file_gone = queries.image_location(rows[0], root)
    file_gone.unlink()
    delete_rows(sqlite_db, [rows[1].filepath])
    again = find_gaps(start=first, end=third, archive=root, today=third + timedelta(1))
    assert again.rows_without_files == [str(file_gone)]
    assert again.files_without_rows == [str(queries.image_location(rows[1], root))]


def test_the_rhythm_is_measured_on_the_days_with_pictures_when_the_sample_misses_them(
    archive: Archive,
) -> None:
    """200 days in the range, pictures on three of them: none of the evenly spread sample."""
    held = [day(3), day(4), day(5)]
    for on in held:
        archive.store(
            t for t in wall_times(on) if on != day(4) or not 10 <= t.hour < 12
        )
        record(on, "complete", 144, 144)
    report = find_gaps(start=day(1), end=day(200), today=day(201))
    assert [o.last_before for o in report.outages] == [
        instant(datetime(2025, 9, 4, 9, 50, 7))
    ]
    assert report.outages[0].usual == timedelta(minutes=10)
