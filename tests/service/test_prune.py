"""prune: a dry run touches nothing, a real run removes files and rows together, a rerun
finds nothing, and a crash half-way leaves nothing ``gaps`` reports after a rerun."""

from __future__ import annotations

from pathlib import Path

import pytest

from modules.database import days, models, queries, retention
from modules.service import prune as prune_module
from modules.service.gaps import find_gaps
from modules.service.prune import cutoff_day, plan_prune, prune
from tests.service.archive_builder import (
    PICTURE,
    STREAM,
    TERMINAL,
    Archive,
    day,
    record,
    wall_times,
)

CUTOFF = day(3)  # days 1 and 2 go, days 3 and 4 stay


@pytest.fixture
def archive(database: str, tmp_path: Path) -> Archive:
    """Days 1-4 complete (two thumbnails a day), plus a file without a row on day 1."""
    built = Archive(tmp_path / "images")
    for n in range(1, 5):
        walls = wall_times(day(n))
        built.store(walls[:-1], thumbnails=walls[:2])
        record(day(n), "complete", 144, 144, thumbnails=2)
        built.store(walls[-1:], rows=n != 1)
    return built


def pictures(root: Path) -> set[Path]:
    return {path.resolve() for path in root.rglob("*.jpg")}


def rows() -> set[Path]:
    return {Path(image.filepath) for image in queries.iter_images()}


def test_the_cutoff_is_counted_in_days_at_the_terminal() -> None:
    assert cutoff_day(30, today=day(31)) == day(1)
    assert cutoff_day(0, today=day(5)) == day(5)
    with pytest.raises(ValueError, match="must not be negative"):
        cutoff_day(-1, today=day(5))
    with pytest.raises(ValueError, match="before year 1"):
        cutoff_day(10**6, today=day(5))


def test_a_dry_run_shows_what_would_go_and_touches_nothing(archive: Archive) -> None:
    files_before, rows_before = pictures(archive.root), rows()
    plan = plan_prune(CUTOFF, archive=archive.root)
    assert [(d.day, d.pictures) for d in plan.days] == [(day(1), 143), (day(2), 144)]
    assert plan.pictures == 287 and plan.bytes == 287 * len(PICTURE)
    assert [Path(p).name for p in plan.files_without_rows] == [
        "in_gate_20250901T235007.jpg"
    ]
    assert plan.day_records == 2
    thumbs = plan_prune(CUTOFF, thumbnails_only=True, archive=archive.root)
    assert (thumbs.pictures, thumbs.files_without_rows, thumbs.day_records) == (
        4,
        [],
        0,
    )
    assert pictures(archive.root) == files_before and rows() == rows_before
    assert days.get_day(TERMINAL, STREAM, day(1)) is not None


def test_a_real_run_removes_files_rows_and_records_and_a_rerun_finds_nothing(
    archive: Archive,
) -> None:
    kept_files = {p for p in pictures(archive.root) if p.parent.name >= "2025-09-03"}
    report = prune(CUTOFF, archive=archive.root)
    assert (report.files_removed, report.files_already_gone) == (288, 0)
    assert (report.rows_removed, report.day_records_removed) == (287, 2)
    assert report.failed == []
    assert pictures(archive.root) == kept_files
    assert rows() == kept_files
    assert not (archive.root / TERMINAL / STREAM / "2025-09-01").exists()
    assert days.days_with_status(TERMINAL, STREAM, day(1), day(4)) == {day(3), day(4)}

    again = prune(CUTOFF, archive=archive.root)
    assert (again.files_removed, again.rows_removed, again.day_records_removed) == (
        0,
        0,
        0,
    )
    assert plan_prune(CUTOFF, archive=archive.root).empty
    gaps = find_gaps(archive=archive.root, today=day(5))
    assert [(s.start, s.end) for s in gaps.streams] == [(day(3), day(4))]
    assert not gaps.lacking


def test_thumbnails_only_keeps_the_full_size_pictures_and_the_day_records(
    archive: Archive,
) -> None:
    report = prune(CUTOFF, thumbnails_only=True, archive=archive.root)
    assert (report.files_removed, report.rows_removed, report.day_records_removed) == (
        4,
        4,
        0,
    )
    assert not any(
        p.name.endswith("_thumb.jpg") and p.parent.name < "2025-09-03"
        for p in pictures(archive.root)
    )
    assert sum(p.name.endswith("_thumb.jpg") for p in pictures(archive.root)) == 4
    assert len(rows()) == 4 * 143 + 3 - 4
    assert days.get_day(TERMINAL, STREAM, day(1)) is not None
    assert prune(CUTOFF, thumbnails_only=True, archive=archive.root).rows_removed == 0


def test_a_crash_half_way_leaves_nothing_a_rerun_does_not_mend(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after a page's files are deleted, before its rows are."""
    monkeypatch.setattr(prune_module, "PAGE", 100)
    real_delete = retention.delete_images
    calls = 0

    def dies_on_the_second_page(ids: list[int]) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise SystemExit("killed")
        return real_delete(ids)

    before = find_gaps(start=day(1), end=day(4), archive=archive.root, today=day(5))
    monkeypatch.setattr(retention, "delete_images", dies_on_the_second_page)
    with pytest.raises(SystemExit):
        prune(CUTOFF, archive=archive.root)
    # Half-way: rows whose files are gone (gaps sees them), nothing worse.
    half = find_gaps(start=day(1), end=day(4), archive=archive.root, today=day(5))
    assert len(half.rows_without_files) == 100
    assert half.files_without_rows == before.files_without_rows  # the fixture's orphan

    monkeypatch.setattr(retention, "delete_images", real_delete)
    report = prune(CUTOFF, archive=archive.root)
    assert report.files_already_gone == 100
    after = find_gaps(archive=archive.root, today=day(5))
    assert after.rows_without_files == [] and after.files_without_rows == []
    assert not after.lacking
    assert {p.parent.name for p in pictures(archive.root)} == {
        "2025-09-03",
        "2025-09-04",
    }


def test_a_file_that_cannot_be_removed_keeps_its_row(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = archive.paths[wall_times(day(2))[5]]
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == stuck:
            raise PermissionError(13, "Permission denied")
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    report = prune(CUTOFF, archive=archive.root)
    assert report.failed == [(str(stuck), "Permission denied")]
    assert rows() & {stuck} == {stuck} and stuck.exists()
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert prune(CUTOFF, archive=archive.root).rows_removed == 1


def test_rows_stored_by_key_are_pruned_wherever_the_archive_is_now(
    database: str, tmp_path: Path
) -> None:
    models.configure(archive_root=tmp_path / "images")
    built = Archive(tmp_path / "images")
    for n in (1, 3):
        built.store(wall_times(day(n))[:3])
    assert all(
        not Path(image.filepath).is_absolute() for image in queries.iter_images()
    )
    moved = tmp_path / "moved"
    built.root.rename(moved)

    # Without the root a key names no file: nothing goes, and it says why.
    blind = prune(CUTOFF)
    assert (blind.files_removed, blind.rows_removed) == (0, 0)
    assert len(blind.failed) == 3 and "archive root is needed" in blind.failed[0][1]
    assert plan_prune(CUTOFF, archive=moved).files_without_rows == []

    report = prune(CUTOFF, archive=moved)
    assert (report.files_removed, report.rows_removed, report.failed) == (3, 3, [])
    assert {p.parent.name for p in pictures(moved)} == {day(3).isoformat()}
    assert queries.count_images() == 3
