"""Several workers at once: processes sharing one archive folder and one database.

* Four ``draydog download`` processes on overlapping days and streams, on PostgreSQL
  and on one SQLite file in WAL mode: every picture once on disk, one row each, no
  ``.part`` left, statistics that add up (and match what the replica served).
* One process SIGKILLed mid-run, then the same command again: the day completes,
  no partial file, no duplicate row, nothing complete fetched twice.

Sharing a range across workers, on any number of machines, is Celery's job now:
``tests/tasks/`` starts real ``draydog worker`` processes on RabbitMQ.

The replica runs in the test process, so its request counters see every worker.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from modules.database import models, queries
from modules.downloader.archive import day_folder
from tests.reliability.workers_helpers import (
    TERMINAL,
    Worker,
    cdn_requests,
    check_archive,
    check_finished_run,
    day_times,
    dead_part_name,
    expected_pictures,
    full_url,
    image_rows,
    open_gate,
    is_thumbnail_path,
    jpgs_in,
    path_of,
    reaped,
    run_rows,
    running_replica,
    runs_overlap,
    scan_archive,
    start_draydog,
    wait_until,
    write_timestamps,
)

D1, D2, D3 = date(2025, 9, 5), date(2025, 9, 6), date(2025, 9, 7)
IN, OUT = "in_gate", "out_gate"

FOUR_WORKERS = [
    # name, stream, days: p1/p2 share in_gate D2; p3/p4 race on the very same pictures
    ("p1", IN, [D1, D2]),
    ("p2", IN, [D2, D3]),
    ("p3", OUT, [D1, D2]),
    ("p4", OUT, [D1, D2]),
]


def folder_of(root: Path, stream: str, day: date) -> Path:
    return day_folder(root, TERMINAL, stream, day_times(stream, day)[0])


def no_trouble_in(worker: Worker) -> None:
    err = worker.err()
    assert "database is locked" not in err
    assert "Traceback" not in err, worker.output()


# --- four processes, overlapping days and streams ----------------------------------


def run_four_processes(db_url: str, tmp_path: Path) -> None:
    """Four overlapping ``download --no-browser`` processes into one folder and database."""
    archive, gate = tmp_path / "archive", tmp_path / "go"
    expected: dict[Path, bytes] = {}
    covering: Counter[str] = Counter()
    workers: list[Worker] = []
    with running_replica(latency=0.05) as server:
        for name, stream, days in FOUR_WORKERS:
            walls = [wall for day in days for wall in day_times(stream, day)]
            expected.update(expected_pictures(archive, stream, walls))
            covering.update(path_of(full_url(server, stream, wall)) for wall in walls)
            timestamps = write_timestamps(tmp_path / f"{name}.txt", walls)
            args = [
                "download",
                "--no-browser",
                "--timestamps-file",
                str(timestamps),
                "--start",
                days[0].isoformat(),
                "--end",
                days[-1].isoformat(),
                "--stream",
                stream,
                "--db",
                db_url,
                "--dir",
                str(archive),
                "--cdn-url",
                server.cdn_url,
                "--workers",
                "4",
                "--batch-size",
                "25",
            ]
            workers.append(start_draydog(name, args, tmp_path / "logs", gate=gate))
        with reaped(workers):
            open_gate(workers, gate)
            codes = [worker.wait(120) for worker in workers]
        requests = cdn_requests(server)
    assert codes == [0, 0, 0, 0], "\n".join(w.output() for w in workers)
    for worker in workers:
        no_trouble_in(worker)

    # The database is opened here only now: the four processes raced to create it.
    models.configure(db_url)
    figures = check_archive(archive, expected)
    assert figures.files == len(expected) == 3 * 144 + 2 * 144

    runs = run_rows()  # one run per process, day and stream
    assert len(runs) == sum(len(days) for _, _, days in FOUR_WORKERS)
    assert Counter(run.camera_id for run in runs) == Counter(
        stream for _, stream, days in FOUR_WORKERS for _ in days
    )
    for run in runs:
        check_finished_run(run)
        assert run.requested == 144
    assert sum(run.requested for run in runs) == sum(covering.values())
    assert sum(run.db_inserted for run in runs) == figures.rows == len(expected)
    assert sum(run.db_failed for run in runs) == 0
    # What the runs say they downloaded is exactly what the replica served, and no
    # picture was fetched more often than there were processes asking for it.
    assert not any(is_thumbnail_path(path) for path in requests)
    assert sum(run.downloaded for run in runs) == sum(requests.values())
    assert set(requests) == set(covering)
    assert all(1 <= requests[path] <= covering[path] for path in covering)
    # Each process starts with its first day: those four runs must overlap in time.
    first_days = sorted(runs, key=lambda run: run.started_at)[: len(FOUR_WORKERS)]
    overlap = runs_overlap(first_days)
    assert overlap > timedelta(0), "the four processes did not run at the same time"

    fetched_twice = sum(count - 1 for count in requests.values())
    print(
        f"\nfour processes ({make_url(db_url).get_backend_name()}): {figures}; "
        f"requested {sum(r.requested for r in runs)}, downloaded "
        f"{sum(r.downloaded for r in runs)} (raced: {fetched_twice}), present "
        f"{sum(r.already_present for r in runs)}, rows inserted "
        f"{sum(r.db_inserted for r in runs)}, duplicates skipped "
        f"{sum(r.db_duplicates for r in runs)}, db failures 0, all four running "
        f"together for {overlap.total_seconds():.2f} s"
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_four_processes_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    run_four_processes(postgres_url, tmp_path)


@pytest.mark.slow
def test_four_processes_on_sqlite_wal(sqlite_url: str, tmp_path: Path) -> None:
    run_four_processes(sqlite_url, tmp_path)
    database = make_url(sqlite_url).database
    assert database is not None
    with closing(sqlite3.connect(database)) as connection:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


# --- one process SIGKILLed mid-run, then the same command again --------------------


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_completes_the_day(
    db_url: str, tmp_path: Path
) -> None:
    stream, walls = IN, day_times(IN, D2)
    archive = tmp_path / "archive"
    folder = folder_of(archive, stream, D2)
    timestamps = write_timestamps(tmp_path / "day.txt", walls)
    logs = tmp_path / "logs"
    with running_replica(latency=0.1) as server:
        args = [
            "download",
            "--no-browser",
            "--timestamps-file",
            str(timestamps),
            "--date",
            D2.isoformat(),
            "--stream",
            stream,
            "--db",
            db_url,
            "--dir",
            str(archive),
            "--cdn-url",
            server.cdn_url,
            "--workers",
            "4",
            "--batch-size",
            "10",
        ]
        doomed = start_draydog("killed", args, logs)
        with reaped([doomed]):
            models.configure(db_url)
            wait_until(
                lambda: len(jpgs_in(folder)) >= 30 and len(image_rows()) >= 10,
                60,
                "30 pictures and 10 rows",
            )
            doomed.kill()
        complete_at_kill = jpgs_in(folder)
        parts_at_kill = scan_archive(archive).parts
        assert 30 <= len(complete_at_kill) < len(walls)
        dead_part = dead_part_name(sorted(complete_at_kill)[0], doomed.pid)
        dead_part.write_bytes(b"\xff\xd8\xff half a picture")

        rerun = start_draydog("rerun", args, logs)
        with reaped([rerun]):
            code = rerun.wait(60)
        requests = cdn_requests(server)
        paths = {wall: path_of(full_url(server, stream, wall)) for wall in walls}

    assert doomed.process.returncode == -9
    assert code == 0, rerun.output()
    no_trouble_in(rerun)
    assert not dead_part.exists()
    assert not any(part.exists() for part in parts_at_kill)
    figures = check_archive(archive, expected_pictures(archive, stream, walls))

    done_before = {
        paths[wall]
        for wall in walls
        if (folder / f"{stream}_{wall:%Y%m%dT%H%M%S}.jpg").resolve() in complete_at_kill
    }
    assert all(requests[path] == 1 for path in done_before)
    assert all(1 <= requests[path] <= 2 for path in paths.values())
    refetched = sum(1 for path in paths.values() if requests[path] == 2)
    assert refetched <= 4  # at most the dead process's four fetches in flight
    assert set(requests) == set(paths.values())

    killed_run, rerun_run = run_rows()
    assert killed_run.status == "running" and killed_run.finished_at is None
    # The dead run's rows are for complete files only, and were not written again.
    rows_at_kill = [row for row in image_rows() if row.run_id == killed_run.id]
    assert len(rows_at_kill) >= 10
    base = archive.resolve()
    assert {queries.image_location(r, base) for r in rows_at_kill} <= complete_at_kill
    check_finished_run(rerun_run)
    assert rerun_run.requested == len(walls)
    assert rerun_run.already_present == len(complete_at_kill)
    assert rerun_run.downloaded == len(walls) - len(complete_at_kill)
    assert rerun_run.db_duplicates == len(rows_at_kill)
    assert rerun_run.db_inserted == len(walls) - len(rows_at_kill)
    print(
        f"\nSIGKILL mid-run ({make_url(db_url).get_backend_name()}): killed with "
        f"{len(complete_at_kill)} of {len(walls)} pictures and {len(rows_at_kill)} rows, "
        f"{len(parts_at_kill)} .part; rerun: {rerun_run.downloaded} downloaded, "
        f"{rerun_run.already_present} present, {rerun_run.db_inserted} rows inserted, "
        f"{rerun_run.db_duplicates} duplicates skipped; {figures}; complete pictures "
        f"fetched again 0, in-flight refetched {refetched}"
    )
