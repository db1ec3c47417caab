"""``draydog gaps`` by terminal and stream, its exit status for rows and files alone, and
``draydog prune --thumbnails-only`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modules.database import days, queries
from tests.cli.conftest import RunMain
from tests.cli.test_cli_gaps import RANGE, db  # noqa: F401 (db: a fixture)
from tests.service.archive_builder import STREAM, TERMINAL, Archive, day, record
from tests.service.archive_builder import wall_times


@pytest.fixture
def archive(db: str, tmp_path: Path) -> Archive:
    """in_gate: days 1-3 complete, two thumbnails a day. out_gate: day 2 never
    archived, day 3 with 3 pictures that failed."""
    built = Archive(tmp_path / "images")
    for n in (1, 2, 3):
        walls = wall_times(day(n))
        built.store(walls, thumbnails=walls[:2])
        record(day(n), "complete", 144, 144, thumbnails=2)
    built.store(wall_times(day(1)), stream="out_gate")
    record(day(1), "complete", 144, 144, stream="out_gate")
    built.store(wall_times(day(3))[3:], stream="out_gate")
    record(day(3), "partial", 144, 141, failed=3, stream="out_gate")
    return built


def test_gaps_of_one_stream_looks_at_that_stream_alone(
    run_main: RunMain, db: str, archive: Archive
) -> None:
    where = ["--db", db, "--dir", str(archive.root), *RANGE]
    whole = run_main("gaps", *where, "--stream", STREAM, "--terminal", TERMINAL)
    assert whole.code == 0, whole.err
    assert "apm  in_gate  2025-09-01  2025-09-03" in whole.out
    assert "out_gate" not in whole.out
    assert "Result: nothing the site offers is missing" in whole.out

    holey = run_main("gaps", *where, "--stream", "out_gate", "--json")
    assert holey.code == 1, holey.err
    data = json.loads(holey.out)
    assert [s["stream"] for s in data["streams"]] == ["out_gate"]
    assert data["never_archived"] == [
        {"terminal": TERMINAL, "stream": "out_gate", "day": "2025-09-02"}
    ]
    assert data["failed_pictures"] == 3
    assert [(d["day"], d["failed"]) for d in data["short_days"]] == [("2025-09-03", 3)]

    both = run_main("gaps", *where)
    assert both.code == 1
    assert "Pictures that failed: 3" in both.out
    assert (
        "Days short of what the site listed: 1\n"
        "  apm out_gate 2025-09-03 partial: 144 listed, 141 stored, 3 failed, 141 rows"
    ) in both.out

    elsewhere = run_main("gaps", "--db", db, "--terminal", "wbct")
    assert elsewhere.code == 1
    assert "nothing archived for this selection" in elsewhere.err


def test_rows_and_files_that_disagree_alone_make_the_exit_status_1(
    run_main: RunMain, db: str, archive: Archive
) -> None:
    where = ["--db", db, "--dir", str(archive.root), *RANGE, "--stream", STREAM]
    assert run_main("gaps", *where).code == 0
    gone = archive.paths[wall_times(day(2))[40]]
    gone.unlink()
    result = run_main("gaps", *where)
    assert result.code == 1
    assert f"Rows whose file is gone: 1\n  {gone}" in result.out
    assert "Days never archived: 0" in result.out
    # Without the folder nothing is compared, and nothing else is missing.
    blind = run_main("gaps", "--db", db, *RANGE, "--stream", STREAM)
    assert blind.code == 0 and "Rows and files: not compared" in blind.out


def test_prune_thumbnails_only_from_the_command_line(
    run_main: RunMain, db: str, archive: Archive
) -> None:
    where = ["--older-than", "30", "--dir", str(archive.root), "--db", db]
    before = sorted(archive.root.rglob("*.jpg"))

    dry = run_main("prune", *where, "--thumbnails-only")
    assert dry.code == 0, dry.err
    assert "Would remove the thumbnails of the days before" in dry.out
    assert ": 6 with rows" in dry.out and "0 day records" in dry.out
    assert sorted(archive.root.rglob("*.jpg")) == before

    real = run_main("prune", *where, "--thumbnails-only", "--yes")
    assert real.code == 0, real.err
    assert "6 files (0 already gone), 6 rows, 0 day records, 0 failed" in real.out
    after = sorted(archive.root.rglob("*.jpg"))
    assert len(after) == len(before) - 6
    assert not [p for p in after if p.name.endswith("_thumb.jpg")]
    assert not any(image.is_thumbnail for image in queries.iter_images())
    assert queries.count_images() == len(after)
    record_kept = days.get_day(TERMINAL, STREAM, day(1))
    assert record_kept is not None and record_kept.status == days.COMPLETE

    rerun = run_main("prune", *where, "--thumbnails-only", "--yes")
    assert "0 files (0 already gone), 0 rows, 0 day records, 0 failed" in rerun.out
