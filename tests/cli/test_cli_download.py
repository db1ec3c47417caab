"""``draydog download`` as a subprocess against the replica: browser discovery, ranges,
environment configuration, failures, an unavailable database and ``--no-browser``.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from datetime import date, datetime
from pathlib import Path

import pytest

from modules.replica import Faults, ReplicaServer
from tests.cli.conftest import (
    TERMINAL,
    UNREACHABLE_DB,
    RunMain,
    assert_clean_exit,
    cli_command,
    cli_env,
    day_times,
    expected_paths,
    parse_summary,
    part_files,
    picture_url,
    pictures_under,
    read_runs,
    row_paths,
    run_cli,
    site_options,
    sqlite_file_url,
    write_timestamps,
)

DAY = date(2025, 9, 6)
TQDM_MARKS = ("pic/s", "it/s", "%|")


def _assert_archive_matches_database(root: Path, db: str, expected: set[Path]) -> None:
    """Exactly the expected pictures on disk, one row each, no partial file."""
    assert pictures_under(root) == expected
    rows = row_paths(db, root)
    assert len(rows) == len(set(rows)), "duplicate rows"
    assert set(rows) == expected
    assert part_files(root) == []


def _day_line(day: date, stream: str, count: int) -> str:
    return f"{day} {stream}: {count} found, {count} downloaded (0 thumbnails), 0 already present, 0 failed, {count} rows inserted, 0 rows failed"


# --- through the browser ------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.usefixtures("require_browser")
def test_download_one_day_with_url_options(
    replica: ReplicaServer, tmp_path: Path
) -> None:
    db = sqlite_file_url(tmp_path / "archive.sqlite3")
    times = day_times(DAY)
    result = run_cli(
        "download",
        "--date",
        DAY.isoformat(),
        "--stream",
        "in_gate",
        "--dir",
        "archive",
        "--db",
        db,
        *site_options(replica),
        cwd=tmp_path,
    )
    assert_clean_exit(result, 0)
    summary = parse_summary(result.stdout)
    assert list(summary) == [(DAY.isoformat(), "in_gate")]
    row = summary[(DAY.isoformat(), "in_gate")]
    assert row["found"] == row["new"] == row["rows+"] == str(len(times))
    assert row["failed"] == row["db fail"] == row["present"] == "0"
    _assert_archive_matches_database(
        tmp_path / "archive", db, expected_paths(tmp_path / "archive", times)
    )
    # The day was found on the camera page, and every picture fetched exactly once.
    assert replica.requests_for(f"/terminal_cameras/{TERMINAL}") >= 1
    assert all(replica.requests_for(picture_url(replica, t)) == 1 for t in times)
    # Not a terminal: one plain line for the day, no progress bar.
    assert _day_line(DAY, "in_gate", len(times)) in result.stdout
    for mark in TQDM_MARKS:
        assert mark not in result.stderr + result.stdout
    assert "\r" not in result.stderr + result.stdout
    runs = read_runs(db)
    assert [(r.camera_id, r.status, r.downloaded) for r in runs] == [
        ("in_gate", "ok", len(times))
    ]


@pytest.mark.browser
@pytest.mark.usefixtures("require_browser")
def test_download_takes_the_site_from_the_environment(
    replica: ReplicaServer, tmp_path: Path
) -> None:
    day = date(2025, 9, 5)
    db = sqlite_file_url(tmp_path / "env.sqlite3")
    result = run_cli(
        "download",
        "--date",
        day.isoformat(),
        "--stream",
        "out_gate",
        "--dir",
        "archive",
        "--db",
        db,
        cwd=tmp_path,
        env={"DRAYDOG_APP_URL": replica.app_url, "DRAYDOG_CDN_URL": replica.cdn_url},
    )
    assert_clean_exit(result, 0)
    times = day_times(day, "out_gate")
    assert parse_summary(result.stdout)[(day.isoformat(), "out_gate")]["new"] == str(
        len(times)
    )
    _assert_archive_matches_database(
        tmp_path / "archive",
        db,
        expected_paths(tmp_path / "archive", times, "out_gate"),
    )
    assert replica.requests_for(f"/terminal_cameras/{TERMINAL}") >= 1


@pytest.mark.browser
@pytest.mark.usefixtures("require_browser")
def test_download_a_range_of_two_streams(
    replica: ReplicaServer, tmp_path: Path
) -> None:
    first, last = date(2025, 9, 7), date(2025, 9, 8)
    streams = ("in_gate", "out_gate")
    db = sqlite_file_url(tmp_path / "range.sqlite3")
    result = run_cli(
        "download",
        "--start",
        first.isoformat(),
        "--end",
        last.isoformat(),
        "--stream",
        streams[0],
        "--stream",
        streams[1],
        "--dir",
        "archive",
        "--db",
        db,
        "--workers",
        "4",
        *site_options(replica),
        cwd=tmp_path,
    )
    assert_clean_exit(result, 0)
    days = (first, last)
    summary = parse_summary(result.stdout)
    assert list(summary) == [(d.isoformat(), s) for d in days for s in streams]
    expected: set[Path] = set()
    for day in days:
        for stream in streams:
            times = day_times(day, stream)
            assert summary[(day.isoformat(), stream)]["new"] == str(len(times))
            assert _day_line(day, stream, len(times)) in result.stdout
            wanted = expected_paths(tmp_path / "archive", times, stream)
            folder = tmp_path / "archive" / TERMINAL / stream / day.isoformat()
            assert pictures_under(folder) == wanted
            expected |= wanted
    _assert_archive_matches_database(tmp_path / "archive", db, expected)
    # The plain lines come in order, one per day and stream.
    lines = [
        line for line in result.stdout.splitlines() if ": " in line and "found" in line
    ]
    assert [line.split(":")[0] for line in lines] == [
        f"{d} {s}" for d in days for s in streams
    ]


@pytest.mark.browser
@pytest.mark.usefixtures("require_browser")
def test_a_day_the_page_does_not_offer_fails_and_the_range_goes_on(
    replica: ReplicaServer, tmp_path: Path
) -> None:
    """The replica's today is the 20th: the 21st is disabled in its date picker."""
    good, bad = date(2025, 9, 20), date(2025, 9, 21)
    db = sqlite_file_url(tmp_path / "range.sqlite3")
    result = run_cli(
        "download",
        "--start",
        good.isoformat(),
        "--end",
        bad.isoformat(),
        "--dir",
        "archive",
        "--db",
        db,
        *site_options(replica),
        cwd=tmp_path,
    )
    assert_clean_exit(result, 1)
    summary = parse_summary(result.stdout)
    times = day_times(good)
    assert summary[(good.isoformat(), "in_gate")]["new"] == str(len(times))
    assert summary[(bad.isoformat(), "in_gate")]["failed"] == "day"
    assert f"{bad} in_gate: FAILED DayNotAvailable" in result.stdout
    _assert_archive_matches_database(
        tmp_path / "archive", db, expected_paths(tmp_path / "archive", times)
    )


# --- failures -----------------------------------------------------------------------------


def test_missing_pictures_exit_1_and_are_listed(
    replica: ReplicaServer, tmp_path: Path
) -> None:
    replica.faults = Faults(missing_rate=0.25)
    times = day_times(DAY)[:24]
    missing = {
        t for t in times if replica.faults.is_missing(TERMINAL, "in_gate", t, False)
    }
    assert 0 < len(missing) < len(times), "the seed should pick some pictures"
    db = sqlite_file_url(tmp_path / "faults.sqlite3")
    result = run_cli(
        "download",
        "--date",
        DAY.isoformat(),
        "--no-browser",
        "--timestamps-file",
        str(write_timestamps(tmp_path / "times.txt", times)),
        "--dir",
        "archive",
        "--db",
        db,
        *site_options(replica),
        cwd=tmp_path,
    )
    assert_clean_exit(result, 1)
    row = parse_summary(result.stdout)[(DAY.isoformat(), "in_gate")]
    assert row["found"] == str(len(times))
    assert row["failed"] == str(len(missing))
    assert row["new"] == row["rows+"] == str(len(times) - len(missing))
    assert "404: no picture, no thumbnail" in result.stdout
    listed = [
        line
        for line in result.stdout.splitlines()
        if "no picture, no thumbnail" in line
    ]
    assert len(listed) == min(5, len(missing))
    assert {line.split()[2].rstrip(":") for line in listed} <= {
        t.isoformat() for t in missing
    }
    _assert_archive_matches_database(
        tmp_path / "archive",
        db,
        expected_paths(tmp_path / "archive", [t for t in times if t not in missing]),
    )
    assert [r.status for r in read_runs(db)] == ["partial"]


def test_unavailable_database_keeps_the_files_and_reindex_recovers(
    replica: ReplicaServer, tmp_path: Path
) -> None:
    times = day_times(DAY)[:10]
    result = run_cli(
        "download",
        "--date",
        DAY.isoformat(),
        "--no-browser",
        "--timestamps-file",
        str(write_timestamps(tmp_path / "times.txt", times)),
        "--dir",
        "archive",
        "--db",
        UNREACHABLE_DB,
        *site_options(replica),
        cwd=tmp_path,
    )
    assert_clean_exit(result, 1)
    expected = expected_paths(tmp_path / "archive", times)
    assert pictures_under(tmp_path / "archive") == expected
    assert part_files(tmp_path / "archive") == []
    row = parse_summary(result.stdout)[(DAY.isoformat(), "in_gate")]
    assert row["new"] == row["db fail"] == str(len(times))
    assert row["rows+"] == row["failed"] == "0"
    assert "draydog reindex" in result.stdout
    assert "Connection refused" in result.stderr

    db = sqlite_file_url(tmp_path / "recovered.sqlite3")
    recovered = run_cli(
        "reindex",
        "--dir",
        "archive",
        "--db",
        db,
        "--cdn-url",
        replica.cdn_url,
        cwd=tmp_path,
    )
    assert_clean_exit(recovered, 0)
    assert f"{len(times)} inserted" in recovered.stdout
    _assert_archive_matches_database(tmp_path / "archive", db, expected)


# --- without the browser --------------------------------------------------------------------


def test_no_browser_downloads_the_listed_times_and_reruns_cleanly(
    replica: ReplicaServer, tmp_path: Path, db_url: str
) -> None:
    """``--no-browser --timestamps-file``, on SQLite and PostgreSQL; a rerun fetches nothing."""
    replica.faults = Faults(missing_full_rate=0.3)
    times = day_times(DAY)[:20]
    thumbs = frozenset(
        t for t in times if replica.faults.is_missing(TERMINAL, "in_gate", t, False)
    )
    assert thumbs, "the seed should make some pictures thumbnails only"
    command = [
        "download",
        "--date",
        DAY.isoformat(),
        "--no-browser",
        "--timestamps-file",
        str(write_timestamps(tmp_path / "times.txt", times)),
        "--dir",
        "archive",
        "--db",
        db_url,
        *site_options(replica),
    ]
    first = run_cli(*command, cwd=tmp_path)
    assert_clean_exit(first, 0)
    row = parse_summary(first.stdout)[(DAY.isoformat(), "in_gate")]
    assert row["found"] == row["new"] == row["rows+"] == str(len(times))
    assert row["thumbs"] == str(len(thumbs))
    expected = expected_paths(tmp_path / "archive", times, thumbnails=thumbs)
    _assert_archive_matches_database(tmp_path / "archive", db_url, expected)
    assert replica.requests_for(f"/terminal_cameras/{TERMINAL}") == 0

    again = run_cli(*command, cwd=tmp_path)
    assert_clean_exit(again, 0)
    row = parse_summary(again.stdout)[(DAY.isoformat(), "in_gate")]
    assert row["present"] == str(len(times))
    assert row["new"] == row["rows+"] == "0"
    # Nothing complete is fetched again; only the missing full-size pictures are
    # asked for once more (they may have appeared since), and answered 404 again.
    for t in times:
        kept = picture_url(replica, t, thumb=t in thumbs)
        assert replica.requests_for(kept) == 1, f"{kept} fetched again"
        if t in thumbs:
            assert replica.requests_for(picture_url(replica, t)) == 2
    _assert_archive_matches_database(tmp_path / "archive", db_url, expected)


def test_quiet_prints_only_the_summary_and_verbose_logs(
    replica: ReplicaServer, tmp_path: Path
) -> None:
    times = day_times(DAY)[:3]
    command = [
        "download",
        "--date",
        DAY.isoformat(),
        "--no-browser",
        "--timestamps-file",
        str(write_timestamps(tmp_path / "times.txt", times)),
        "--dir",
        "archive",
        "--db",
        sqlite_file_url(tmp_path / "q.sqlite3"),
        *site_options(replica),
    ]
    quiet = run_cli("-q", *command, cwd=tmp_path)
    assert_clean_exit(quiet, 0)
    assert quiet.stderr == ""
    assert quiet.stdout.splitlines()[0].split()[:2] == ["day", "stream"]
    assert len(quiet.stdout.splitlines()) == 2
    verbose = run_cli("-v", *command, cwd=tmp_path)
    assert_clean_exit(verbose, 0)
    assert "INFO modules.downloader" in verbose.stderr


def test_a_terminal_gets_a_progress_bar(replica: ReplicaServer, tmp_path: Path) -> None:
    """With stderr on a terminal, a tqdm bar counts the pictures up to the end."""
    times = day_times(DAY)[:12]
    controller, terminal = pty.openpty()
    # 40 rows of 120 columns: tqdm draws nothing on a terminal of width 0.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        cli_command(
            "download",
            "--date",
            DAY.isoformat(),
            "--no-browser",
            "--timestamps-file",
            str(write_timestamps(tmp_path / "times.txt", times)),
            "--dir",
            "archive",
            "--db",
            sqlite_file_url(tmp_path / "tty.sqlite3"),
            *site_options(replica),
        ),
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the other end is closed
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    bar = seen.decode(errors="replace")
    assert "in_gate" in bar and "pic" in bar
    assert f"{len(times)}/{len(times)}" in bar and "100%" in bar
    assert parse_summary(out)[(DAY.isoformat(), "in_gate")]["new"] == str(len(times))


def test_download_in_process(
    run_main: RunMain, replica: ReplicaServer, tmp_path: Path
) -> None:
    times: list[datetime] = day_times(DAY)[:5]
    db = sqlite_file_url(tmp_path / "inproc.sqlite3")
    result = run_main(
        "download",
        "--date",
        DAY.isoformat(),
        "--no-browser",
        "--timestamps-file",
        str(write_timestamps(tmp_path / "times.txt", times)),
        "--dir",
        str(tmp_path / "archive"),
        "--db",
        db,
        "--workers",
        "2",
        "--batch-size",
        "2",
        *site_options(replica),
    )
    assert result.code == 0, result.err
    assert parse_summary(result.out)[(DAY.isoformat(), "in_gate")]["rows+"] == "5"
    _assert_archive_matches_database(
        tmp_path / "archive", db, expected_paths(tmp_path / "archive", times)
    )
