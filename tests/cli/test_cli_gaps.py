"""``draydog gaps`` and ``draydog prune``: output, JSON, the PNG, exit statuses, bad usage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image as PILImage

from modules.database import models
from modules.service import coverage_plot
from tests.cli.conftest import RunMain, assert_clean_exit, run_cli, sqlite_file_url
from tests.service.archive_builder import Archive, day, outage_hours, record, wall_times

RANGE = ["--start", "2025-09-01", "--end", "2025-09-03"]


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = sqlite_file_url(tmp_path / "archive.sqlite3")
    models.configure(url)
    models.init_db()
    return url


def build(tmp_path: Path, *, complete: bool) -> Path:
    """Days 1-3 complete, or with day 2 never archived, a thumbnail and an outage on day 3."""
    archive = Archive(tmp_path / "images")
    archive.store(wall_times(day(1)))
    record(day(1), "complete", 144, 144)
    if complete:
        archive.store(wall_times(day(2)))
        record(day(2), "complete", 144, 144)
    off = outage_hours(day(3), 10, 12)
    shown = [t for t in wall_times(day(3)) if t not in off]
    archive.store(shown, thumbnails=shown[:1])
    record(day(3), "complete", len(shown), len(shown), thumbnails=1)
    return archive.root


def test_gaps_lists_what_is_missing_and_exits_1(
    run_main: RunMain, db: str, tmp_path: Path
) -> None:
    root = build(tmp_path, complete=False)
    result = run_main("gaps", "--db", db, "--dir", str(root), *RANGE)
    assert result.code == 1, result.err
    out = result.out
    assert "Days never archived: 1\n  apm in_gate 2025-09-02" in out
    assert "Days short of what the site listed: 0" in out
    assert (
        "Days with pictures kept only as thumbnails: 1\n  apm in_gate 2025-09-03: 1"
        in out
    )
    assert "Rows whose file is gone: 0" in out and "Files without a row: 0" in out
    assert (
        "Camera outages (times at the terminal, America/Los_Angeles): 1\n"
        "  apm in_gate 2025-09-03 09:50:07 -> 2025-09-03 12:00:07 (2h10m, usually 10m)"
    ) in out
    assert "Result: the archive lacks" in out


def test_gaps_of_a_complete_archive_exits_0_with_json(
    run_main: RunMain, db: str, tmp_path: Path
) -> None:
    root = build(tmp_path, complete=True)
    result = run_main("gaps", "--db", db, "--dir", str(root), *RANGE, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["lacking"] is False and data["files_checked"] is True
    assert data["never_archived"] == [] and data["short_days"] == []
    assert [s["pictures"] for s in data["streams"]] == [144 + 144 + 132]
    assert len(data["outages"]) == 1 and data["outages"][0]["usual_seconds"] == 600


def test_gaps_draws_a_day_by_hour_png(
    run_main: RunMain, db: str, tmp_path: Path
) -> None:
    build(tmp_path, complete=False)
    chart = tmp_path / "coverage.png"
    result = run_main("gaps", "--db", db, *RANGE, "--plot", str(chart))
    assert result.code == 1
    assert "Rows and files: not compared" in result.out
    with PILImage.open(chart) as image:
        assert image.format == "PNG" and image.size[0] > 300


def test_the_hour_grid_behind_the_chart(db: str, tmp_path: Path) -> None:
    from modules.service.gaps import StreamRange

    build(tmp_path, complete=False)
    grid = coverage_plot.hour_grid(
        StreamRange("apm", "in_gate", day(1), day(3), 2, 276)
    )
    assert [grid[hour][0] for hour in range(24)] == [6] * 24
    assert [grid[hour][1] for hour in range(24)] == [0] * 24
    assert [grid[hour][2] for hour in (9, 10, 11, 12)] == [6, 0, 0, 6]


def test_without_matplotlib_plot_is_bad_usage_and_creates_nothing(
    run_main: RunMain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    target = tmp_path / "never.sqlite3"
    result = run_main(
        "gaps", "--db", sqlite_file_url(target), "--plot", str(tmp_path / "x.png")
    )
    assert result.code == 2
    assert "--plot needs matplotlib: pip install 'draydog-archiver[plot]'" in result.err
    assert not target.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gaps", "--start", "2025-13-01"], "--start"),
        (["gaps", "--end", "yesterday"], "--end"),
        (["gaps", "--stream", "In Gate"], "stream"),
        (["gaps", "--dir", "no/such/folder"], "no archive folder"),
        (["gaps", "--start", "2025-09-03", "--end", "2025-09-01"], "reversed range"),
        (["prune", "--older-than", "-1"], "must not be negative"),
        (["prune"], "--older-than"),
    ],
)
def test_bad_usage_exits_2_and_creates_no_database(
    tmp_path: Path, args: list[str], message: str
) -> None:
    target = tmp_path / "case.sqlite3"
    result = run_cli(*args, "--db", sqlite_file_url(target), cwd=tmp_path)
    assert_clean_exit(result, 2)
    assert message in result.stderr
    assert not target.exists(), "the command touched the database"


def test_gaps_on_an_empty_database_says_nothing_is_archived(
    run_main: RunMain, db: str
) -> None:
    result = run_main("gaps", "--db", db)
    assert result.code == 1
    assert "nothing archived for this selection" in result.err


def test_prune_dry_run_real_run_and_rerun(
    run_main: RunMain, db: str, tmp_path: Path
) -> None:
    """Pictures of September 2025 are far older than 30 days: all of them go."""
    root = build(tmp_path, complete=True)
    files = sorted(root.rglob("*.jpg"))
    assert len(files) == 420

    dry = run_main("prune", "--older-than", "30", "--dir", str(root), "--db", db)
    assert dry.code == 0, dry.err
    assert "420 with rows" in dry.out and "3 day records" in dry.out
    assert "Nothing removed: run again with --yes" in dry.out
    assert sorted(root.rglob("*.jpg")) == files

    real = run_main(
        "prune", "--older-than", "30", "--dir", str(root), "--db", db, "--yes"
    )
    assert real.code == 0, real.err
    assert "420 files (0 already gone), 420 rows, 3 day records, 0 failed" in real.out
    assert list(root.rglob("*.jpg")) == []

    rerun = run_main(
        "prune", "--older-than", "30", "--dir", str(root), "--db", db, "--yes"
    )
    assert rerun.code == 0
    assert "0 files (0 already gone), 0 rows, 0 day records, 0 failed" in rerun.out


def test_prune_keeps_days_newer_than_the_cutoff(
    run_main: RunMain, db: str, tmp_path: Path
) -> None:
    root = build(tmp_path, complete=True)
    result = run_main(
        "prune", "--older-than", "100000", "--dir", str(root), "--db", db, "--yes"
    )
    assert result.code == 0
    assert "0 files" in result.out and len(list(root.rglob("*.jpg"))) == 420
