"""``draydog reindex``, ``draydog stats`` and ``draydog replica`` (and ``python -m modules.replica``)."""

from __future__ import annotations

import re
import selectors
import signal
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from modules.database import models, queries
from modules.site.urls import build_image_url
from modules.replica import Faults, ReplicaServer, Schedule
from modules.replica.jpeg import picture_bytes
from tests.cli.conftest import (
    TERMINAL,
    UNREACHABLE_DB,
    RunMain,
    assert_clean_exit,
    cli_env,
    day_times,
    delete_rows,
    expected_paths,
    part_files,
    read_images,
    row_paths,
    run_cli,
    site_options,
    sqlite_file_url,
    start_cli,
    write_timestamps,
)

DAY = date(2025, 9, 6)
REINDEX_LINE = re.compile(
    r"(?P<scanned>\d+) pictures scanned, (?P<missing>\d+) without a row, "
    r"(?P<inserted>\d+) inserted, (?P<duplicates>\d+) already there, (?P<failed>\d+) failed"
)
URL_LINE = re.compile(
    r"serving on (?P<url>http://127\.0\.0\.1:\d+) \(CDN (?P<cdn>\S+)\)"
)


def _download(
    replica: ReplicaServer,
    folder: Path,
    db: str,
    times: list[datetime],
    stream: str = "in_gate",
) -> None:
    """Fill ``folder/archive`` and ``db`` through ``draydog download --no-browser``."""
    result = run_cli(
        "download",
        "--date",
        times[0].date().isoformat(),
        "--stream",
        stream,
        "--no-browser",
        "--timestamps-file",
        str(write_timestamps(folder / f"{stream}-times.txt", times)),
        "--dir",
        "archive",
        "--db",
        db,
        *site_options(replica),
        cwd=folder,
    )
    assert_clean_exit(result, 0)


def _reindex_counts(stdout: str) -> dict[str, int]:
    match = REINDEX_LINE.search(stdout)
    assert match is not None, stdout
    return {key: int(value) for key, value in match.groupdict().items()}


# --- reindex --------------------------------------------------------------------------


def test_reindex_puts_back_exactly_the_deleted_rows(
    replica: ReplicaServer, tmp_path: Path, db_url: str
) -> None:
    replica.faults = Faults(missing_full_rate=0.3)
    times = day_times(DAY)[:18]
    _download(replica, tmp_path, db_url, times)
    before = {row.filepath: row for row in read_images(db_url)}
    assert len(before) == len(times)
    assert any(row.is_thumbnail for row in before.values())
    deleted = sorted(before)[::3]
    delete_rows(db_url, deleted)
    assert len(row_paths(db_url, tmp_path / "archive")) == len(times) - len(deleted)

    result = run_cli(
        "reindex",
        "--dir",
        "archive",
        "--db",
        db_url,
        "--cdn-url",
        replica.cdn_url,
        cwd=tmp_path,
    )
    assert_clean_exit(result, 0)
    assert _reindex_counts(result.stdout) == {
        "scanned": len(times),
        "missing": len(deleted),
        "inserted": len(deleted),
        "duplicates": 0,
        "failed": 0,
    }
    after = {row.filepath: row for row in read_images(db_url)}
    assert sorted(after) == sorted(before)
    for path in deleted:
        old, new = before[path], after[path]
        assert (new.camera_id, new.terminal, new.timestamp) == (
            old.camera_id,
            old.terminal,
            old.timestamp,
        )
        assert (new.file_size, new.sha256, new.is_thumbnail, new.source_url) == (
            old.file_size,
            old.sha256,
            old.is_thumbnail,
            old.source_url,
        )
    for path in set(before) - set(deleted):
        assert after[path].id == before[path].id, "a row that was there was rewritten"

    again = run_cli("reindex", "--dir", "archive", "--db", db_url, cwd=tmp_path)
    assert_clean_exit(again, 0)
    assert "0 without a row, 0 inserted" in again.stdout
    assert _reindex_counts(again.stdout)["scanned"] == len(times)
    assert len(row_paths(db_url, tmp_path / "archive")) == len(times)


def test_reindex_skips_files_outside_the_layout(
    run_main: RunMain, tmp_path: Path
) -> None:
    """Only pictures of the archive layout are indexed; ``.part`` and strays are left alone."""
    root = tmp_path / "archive"
    wall = day_times(DAY)[0]
    (picture,) = expected_paths(root, [wall])
    picture.parent.mkdir(parents=True)
    picture.write_bytes(picture_bytes(TERMINAL, "in_gate", wall))
    (picture.parent / "notes.jpg").write_bytes(b"not a picture of the layout")
    (picture.parent / f".{picture.name}.host-1-0123abcd.part").write_bytes(b"x")
    db = sqlite_file_url(tmp_path / "reindex.sqlite3")
    result = run_main("reindex", "--dir", str(root), "--db", db)
    assert result.code == 0, result.err
    assert _reindex_counts(result.out)["inserted"] == 1
    (row,) = read_images(db)
    assert row.filepath == picture.relative_to(root).as_posix()  # its key
    assert row.source_url is None
    assert row.file_size == picture.stat().st_size


def test_reindex_of_an_empty_folder_inserts_nothing(
    run_main: RunMain, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    db = sqlite_file_url(tmp_path / "empty.sqlite3")
    result = run_main("reindex", "--dir", str(tmp_path / "empty"), "--db", db)
    assert result.code == 0
    assert _reindex_counts(result.out) == dict.fromkeys(
        ("scanned", "missing", "inserted", "duplicates", "failed"), 0
    )


def test_reindex_against_an_unavailable_database_fails_cleanly(
    replica: ReplicaServer, tmp_path: Path
) -> None:
    _download(
        replica, tmp_path, sqlite_file_url(tmp_path / "a.sqlite3"), day_times(DAY)[:2]
    )
    result = run_cli(
        "reindex", "--dir", "archive", "--db", UNREACHABLE_DB, cwd=tmp_path
    )
    assert_clean_exit(result, 1)
    assert "draydog: reindex failed" in result.stderr
    assert part_files(tmp_path / "archive") == []


# --- stats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone_options", "zone"),
    [([], "America/Los_Angeles"), (["--timezone", "UTC"], "UTC")],
    ids=["terminal-days", "utc-days"],
)
def test_stats_shows_days_streams_thumbnails_totals_and_runs(
    replica: ReplicaServer,
    tmp_path: Path,
    db_url: str,
    zone_options: list[str],
    zone: str,
) -> None:
    """Pictures from 16:30 to 17:30 at the terminal (PDT): one terminal day, two UTC days."""
    replica.faults = Faults(missing_full_rate=0.3)
    evening = [t for t in day_times(DAY) if "16:30" <= t.strftime("%H:%M") < "17:30"]
    outside = [t for t in day_times(DAY, "out_gate") if t.hour == 3]
    _download(replica, tmp_path, db_url, evening)
    _download(replica, tmp_path, db_url, outside, "out_gate")

    result = run_cli("stats", "--db", db_url, *zone_options, cwd=tmp_path)
    assert_clean_exit(result, 0)
    assert f"day ({zone})" in result.stdout
    images = read_images(db_url)
    pictures: Counter[tuple[str, str]] = Counter()
    thumbs: Counter[tuple[str, str]] = Counter()
    for image in images:
        key = (
            image.timestamp.astimezone(ZoneInfo(zone)).date().isoformat(),
            image.camera_id,
        )
        pictures[key] += 1
        thumbs[key] += int(image.is_thumbnail)
    in_gate_days = {day for day, stream in pictures if stream == "in_gate"}
    assert len(in_gate_days) == (1 if zone == "America/Los_Angeles" else 2)
    shown = {}
    for line in result.stdout.splitlines():
        cells = line.split()
        if len(cells) == 6 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", cells[0]):
            assert cells[1] == TERMINAL
            shown[(cells[0], cells[2])] = (int(cells[3]), int(cells[4]))
    assert shown == {key: (pictures[key], thumbs[key]) for key in pictures}
    total = len(images)
    thumbnails = sum(thumbs.values())
    size = sum(image.file_size or 0 for image in images)
    assert (
        f"Total: {total} pictures ({thumbnails} thumbnails), {size / 1e6:.1f} MB"
        in result.stdout
    )
    assert thumbnails > 0
    runs = result.stdout.split("Last runs:\n", 1)[1].splitlines()
    assert len(runs) == 2
    assert f"{TERMINAL} out_gate: ok, {len(outside)} downloaded" in runs[0]
    assert f"{TERMINAL} in_gate: ok, {len(evening)} downloaded" in runs[1]


def test_stats_of_an_empty_database(run_main: RunMain, tmp_path: Path) -> None:
    result = run_main("stats", "--db", sqlite_file_url(tmp_path / "new.sqlite3"))
    assert result.code == 0
    assert "Total: 0 pictures (0 thumbnails), 0.0 MB" in result.out
    assert "Last runs" not in result.out


def test_stats_without_a_database_exits_1(tmp_path: Path) -> None:
    result = run_cli("stats", "--db", UNREACHABLE_DB, cwd=tmp_path)
    assert_clean_exit(result, 1)
    assert result.stderr.startswith("draydog: cannot read the database")
    assert result.stdout == ""


# --- replica ----------------------------------------------------------------------------


def _first_line(process: subprocess.Popen[str], timeout: float = 30) -> str:
    """The first line the process prints on stdout, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            pytest.fail(f"no output within {timeout} s")
    return process.stdout.readline()


def _serve_and_stop(
    process: subprocess.Popen[str], schedule: Schedule, stop: signal.Signals
) -> None:
    try:
        line = _first_line(process)
        match = URL_LINE.search(line)
        assert match is not None, line
        assert match["cdn"] == match["url"] + "/cdn"
        day = schedule.today_date() - timedelta(days=1)
        wall = schedule.timestamps(TERMINAL, "in_gate", day)[0]
        picture = requests.get(
            build_image_url(match["cdn"], TERMINAL, "in_gate", wall), timeout=10
        )
        assert picture.status_code == 200
        assert picture.headers["Content-Type"] == "image/jpeg"
        assert picture.content == picture_bytes(TERMINAL, "in_gate", wall)
        page = requests.get(
            f"{match['url']}/terminal_cameras/{TERMINAL}?streamName=in_gate", timeout=10
        )
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
        assert requests.get(match["cdn"] + "/nothing", timeout=10).status_code == 404
    finally:
        process.send_signal(stop)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    _, err = process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_draydog_replica_serves_until_terminated(tmp_path: Path) -> None:
    process = start_cli("replica", "--port", "0", cwd=tmp_path)
    _serve_and_stop(process, Schedule(), signal.SIGTERM)


def test_python_m_modules_replica_with_a_pinned_day_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modules.replica",
            "--port",
            "0",
            "--today",
            "2025-09-20",
            "--log-level",
            "WARNING",
        ],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _serve_and_stop(process, Schedule(today=date(2025, 9, 20)), signal.SIGINT)


def test_stats_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    """`draydog stats | head -1`: no traceback, no "failed" line, when the reader goes."""
    db = sqlite_file_url(tmp_path / "many-days.sqlite3")
    models.configure(db)
    first = datetime(2020, 1, 1, 12, tzinfo=ZoneInfo("UTC"))
    queries.insert_images(
        {
            "filepath": f"/a/{n}.jpg",
            "camera_id": "in_gate",
            "timestamp": first + timedelta(days=n),
        }
        for n in range(3000)
    )
    process = start_cli("stats", "--db", db, cwd=tmp_path)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("day (")
    process.stdout.close()
    errors = process.stderr.read()
    assert process.wait(60) == 1
    assert errors == ""
