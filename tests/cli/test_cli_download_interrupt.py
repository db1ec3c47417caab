"""``draydog download`` stopped by SIGINT or SIGTERM while the CDN stalls: the process
cuts its fetches and exits at once (not after every stalled request and its retries,
past a service manager's grace period), with the rows of the complete files written,
no ``.part`` left and an exit status that says which signal stopped it."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import date
from pathlib import Path

import pytest

from modules.replica import Faults, ReplicaServer
from tests.cli.conftest import (
    TERMINAL,
    day_times,
    part_files,
    pictures_under,
    read_runs,
    row_paths,
    site_options,
    sqlite_file_url,
    start_cli,
    write_timestamps,
)

DAY = date(2025, 9, 19)
STOP_WITHIN = 8.0
"""Seconds from the signal to the process's exit."""
WORKERS = 4
STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _stop_while_stalled(
    replica: ReplicaServer,
    process: subprocess.Popen[str],
    root: Path,
    stop: signal.Signals,
) -> tuple[float, str, str]:
    """Once every worker waits on a stalled picture and some are complete, send
    ``stop``; the seconds to the exit, stdout and stderr."""
    faults = replica.faults
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            stalled = [
                r
                for r in replica.request_log
                if r.path.startswith("/cdn/") and faults.hangs(r.path, 1)
            ]
            if len(stalled) >= WORKERS and pictures_under(root):
                break
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        started = time.monotonic()
        process.send_signal(stop)
        out, err = process.communicate(timeout=20)
        return time.monotonic() - started, out, err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _assert_stopped_cleanly(
    took: float,
    code: int | None,
    err: str,
    stop: signal.Signals,
    root: Path,
    db: str,
) -> None:
    assert code == STATUS[stop], err
    assert took < STOP_WITHIN, f"took {took:.1f} s\n{err}"
    assert "Traceback" not in err
    assert f"draydog: interrupted by {stop.name}" in err
    assert part_files(root) == []
    files = pictures_under(root)
    assert files, "no picture was complete before the signal"
    rows = row_paths(db, root)
    assert sorted(rows) == sorted(files)  # one row per complete file, no other
    assert [run.status for run in read_runs(db)] == ["interrupted"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_while_the_cdn_stalls_stops_the_download_at_once(
    replica: ReplicaServer, tmp_path: Path, stop: signal.Signals
) -> None:
    # A quarter of the pictures wait a minute before any header; a request times
    # out after 30 s and is retried: waiting them out would take minutes.
    replica.faults = Faults(hang_rate=0.25, hang_seconds=60, seed=11)
    times = day_times(DAY)[:48]
    root = tmp_path / "archive"
    db = sqlite_file_url(tmp_path / "archive.sqlite3")
    process = start_cli(
        "download",
        "--date",
        DAY.isoformat(),
        "--no-browser",
        "--timestamps-file",
        str(write_timestamps(tmp_path / "times.txt", times)),
        "--terminal",
        TERMINAL,
        "--workers",
        str(WORKERS),
        "--timeout",
        "30",
        "--dir",
        str(root),
        "--db",
        db,
        *site_options(replica),
        cwd=tmp_path,
    )
    took, _, err = _stop_while_stalled(replica, process, root, stop)
    _assert_stopped_cleanly(took, process.returncode, err, stop, root, db)


@pytest.mark.browser
def test_sigterm_while_a_day_read_in_the_browser_downloads_stops_at_once(
    replica: ReplicaServer, tmp_path: Path, require_browser: None
) -> None:
    """The usual path: the day's page read in Chromium, then its pictures."""
    replica.faults = Faults(hang_rate=0.25, hang_seconds=60, seed=11)
    root = tmp_path / "archive"
    db = sqlite_file_url(tmp_path / "archive.sqlite3")
    process = start_cli(
        "download",
        "--date",
        DAY.isoformat(),
        "--workers",
        str(WORKERS),
        "--timeout",
        "30",
        "--dir",
        str(root),
        "--db",
        db,
        *site_options(replica),
        cwd=tmp_path,
    )
    took, _, err = _stop_while_stalled(replica, process, root, signal.SIGTERM)
    _assert_stopped_cleanly(took, process.returncode, err, signal.SIGTERM, root, db)
