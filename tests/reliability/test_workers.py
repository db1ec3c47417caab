"""Several workers at once: processes sharing one archive folder and one database.

* Four ``draydog download`` processes on overlapping days and streams, on PostgreSQL
  and on one SQLite file in WAL mode: every picture once on disk, one row each, no
  ``.part`` left, statistics that add up (and match what the replica served).
* ``draydog download --claim`` on PostgreSQL: a range split across three workers
  with each (terminal, stream, day) done by exactly one; then a worker SIGKILLed
  mid-day whose day another worker takes over once the lease ran out.
* One process SIGKILLed mid-run, then the same command again: the day completes,
  no partial file, no duplicate row, nothing complete fetched twice.
* In-process: ``download_claimed`` in threads (discovery replaced by the schedule)
  keeps its leases alive through days longer than the lease, and gives a failing
  day back until it has had its three attempts.

The replica runs in the test process, so its request counters see every worker.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import Counter
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from modules.database import claims, models, queries
from modules.downloader.archive import day_folder
from modules.downloader.claimed import download_claimed
from modules.downloader.discovery import DiscoveryResult
from modules.site.urls import DEFAULT_TIMEZONE, terminal_today
from modules.downloader.report import DownloadReport
from modules.downloader.selenium_client import DrayDogDownloader
from tests.reliability.workers_helpers import (
    TERMINAL,
    Worker,
    cdn_requests,
    check_archive,
    check_finished_run,
    claim_rows,
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
    require_browser,
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


# --- --claim across processes (the real browser) -----------------------------------


def claim_args(
    name: str,
    db_url: str,
    archive: Path,
    app_url: str,
    cdn_url: str,
    days: list[date],
    streams: list[str],
    lease: float,
    workers: int,
) -> list[str]:
    args = ["download", "--start", days[0].isoformat(), "--end", days[-1].isoformat()]
    for stream in streams:
        args += ["--stream", stream]
    return args + [
        "--claim",
        "--worker",
        name,
        "--lease-seconds",
        str(lease),
        "--db",
        db_url,
        "--dir",
        str(archive),
        "--app-url",
        app_url,
        "--cdn-url",
        cdn_url,
        "--workers",
        str(workers),
        "--batch-size",
        "10",
    ]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.postgres
def test_claim_splits_a_range_across_three_workers(
    postgres_url: str, tmp_path: Path
) -> None:
    require_browser()
    days, streams = [D1, D2, D3], [IN, OUT]
    archive, gate = tmp_path / "archive", tmp_path / "go"
    names = ["w1", "w2", "w3"]
    with running_replica(latency=0.005) as server:
        workers = [
            start_draydog(
                name,
                claim_args(
                    name,
                    postgres_url,
                    archive,
                    server.app_url,
                    server.cdn_url,
                    days,
                    streams,
                    lease=30,
                    workers=4,
                ),
                tmp_path / "logs",
                gate=gate,
            )
            for name in names
        ]
        with reaped(workers):
            open_gate(workers, gate)
            codes = [worker.wait(150) for worker in workers]
        requests = cdn_requests(server)
        full = {
            path_of(full_url(server, stream, wall))
            for day in days
            for stream in streams
            for wall in day_times(stream, day)
        }
    assert codes == [0, 0, 0], "\n".join(w.output() for w in workers)
    for worker in workers:
        no_trouble_in(worker)

    models.configure(postgres_url)
    rows = claim_rows()
    assert [(r.day, r.camera_id) for r in rows] == [
        (day, stream) for day in days for stream in sorted(streams)
    ]
    assert {r.status for r in rows} == {claims.DONE}
    assert {r.attempts for r in rows} == {1}  # claimed once, by one worker
    assert {r.terminal for r in rows} == {TERMINAL}
    by_worker = {
        name: {(r.day, r.camera_id) for r in rows if r.worker == name} for name in names
    }
    assert sum(len(done) for done in by_worker.values()) == len(rows)
    for worker in workers:  # each worker printed exactly the days the table gives it
        printed = {
            (date.fromisoformat(line.split()[0]), line.split()[1].rstrip(":"))
            for line in worker.stdout.read_text().splitlines()
            if line.startswith("2025-") and " found, " in line
        }
        assert printed == by_worker[worker.name]
    assert sum(1 for done in by_worker.values() if done) >= 2

    expected: dict[Path, bytes] = {}
    for day in days:
        for stream in streams:
            expected.update(expected_pictures(archive, stream, day_times(stream, day)))
    figures = check_archive(archive, expected)
    full_requests = {p: n for p, n in requests.items() if not is_thumbnail_path(p)}
    assert set(full_requests) == full
    assert set(full_requests.values()) == {1}  # no day fetched twice

    runs = run_rows()
    assert len(runs) == len(rows)
    for run in runs:
        check_finished_run(run)
        assert run.downloaded == run.requested == 144 and run.already_present == 0
    assert sum(run.db_inserted for run in runs) == figures.rows
    print(
        f"\n--claim, 3 workers, {len(rows)} (stream, day) claims: {figures}; "
        f"days per worker {[len(by_worker[n]) for n in names]}; "
        f"full-size requests {sum(full_requests.values())} for {len(full)} pictures"
    )


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.postgres
def test_claim_a_killed_workers_day_is_taken_over_after_its_lease(
    postgres_url: str, tmp_path: Path
) -> None:
    require_browser()
    days, stream, lease = [D1, D2, D3], IN, 3.0
    archive = tmp_path / "archive"
    first = folder_of(archive, stream, D1)
    logs = tmp_path / "logs"

    def args(name: str, server_app: str, server_cdn: str) -> list[str]:
        return claim_args(
            name,
            postgres_url,
            archive,
            server_app,
            server_cdn,
            days,
            [stream],
            lease,
            2,
        )

    with running_replica(latency=0.05) as server:
        doomed = start_draydog("a", args("a", server.app_url, server.cdn_url), logs)
        with reaped([doomed]):
            models.configure(postgres_url)

            def mid_day() -> bool:
                if len(jpgs_in(first)) < 20:
                    return False
                rows = claim_rows()
                return any(
                    r.day == D1 and r.worker == "a" and r.status == claims.RUNNING
                    for r in rows
                )

            wait_until(mid_day, 90, "worker a to be in the middle of its first day")
            doomed.kill()
            killed_utc = models.utcnow()
        complete_at_kill = jpgs_in(first)
        parts_at_kill = scan_archive(archive).parts
        (held,) = [r for r in claim_rows() if r.day == D1]
        assert (held.status, held.worker, held.attempts) == (claims.RUNNING, "a", 1)
        assert held.lease_until is not None
        lease_left = (held.lease_until - killed_utc).total_seconds()
        assert 0 < lease_left <= lease
        assert 20 <= len(complete_at_kill) < len(day_times(stream, D1))
        # A part the dead worker would have left, and one of a live process (this one).
        dead_part = dead_part_name(sorted(complete_at_kill)[0], doomed.pid)
        live_part = dead_part_name(sorted(complete_at_kill)[1], os.getpid())
        for part in (dead_part, live_part):
            part.write_bytes(b"\xff\xd8\xff half a picture")

        survivors = [
            start_draydog(name, args(name, server.app_url, server.cdn_url), logs)
            for name in ("b", "c")
        ]
        with reaped(survivors):
            codes = [worker.wait(150) for worker in survivors]
        requests = cdn_requests(server)
        first_paths = {
            path_of(full_url(server, stream, wall)) for wall in day_times(stream, D1)
        }
        done_before = {
            path_of(full_url(server, stream, wall))
            for wall in day_times(stream, D1)
            if (first / f"{stream}_{wall:%Y%m%dT%H%M%S}.jpg").resolve()
            in complete_at_kill
        }
        other_paths = {
            path_of(full_url(server, stream, wall))
            for day in (D2, D3)
            for wall in day_times(stream, day)
        }

    assert doomed.process.returncode == -9
    assert codes == [0, 0], "\n".join(w.output() for w in survivors)
    for worker in survivors:
        no_trouble_in(worker)

    rows = claim_rows()
    assert {r.status for r in rows} == {claims.DONE}
    (taken,) = [r for r in rows if r.day == D1]
    assert taken.worker in ("b", "c") and taken.attempts == 2
    assert all(r.attempts == 1 for r in rows if r.day != D1)
    taker = next(w for w in survivors if w.name == taken.worker)
    assert (
        "taking over apm in_gate 2025-09-05 from a, whose lease ran out" in taker.err()
    )

    # The stale parts: the dead worker's removed by the next run in that folder, a
    # live process's kept.
    assert not dead_part.exists()
    assert not any(part.exists() for part in parts_at_kill)
    assert live_part.exists()
    live_part.unlink()

    expected: dict[Path, bytes] = {}
    for day in days:
        expected.update(expected_pictures(archive, stream, day_times(stream, day)))
    figures = check_archive(archive, expected)

    assert all(requests[path] == 1 for path in done_before)  # complete: not again
    assert all(1 <= requests[path] <= 2 for path in first_paths)
    assert all(requests[path] == 1 for path in other_paths)
    refetched = sum(1 for path in first_paths if requests[path] == 2)
    assert refetched <= 2  # at most what was in flight in the dead worker's 2 threads

    runs = run_rows()
    unfinished = [run for run in runs if run.finished_at is None]
    assert len(unfinished) == 1 and unfinished[0].status == "running"  # a's
    finished = [run for run in runs if run.finished_at is not None]
    assert len(finished) == len(days)
    for run in finished:
        check_finished_run(run)
    (resumed,) = [run for run in finished if run.already_present]
    assert resumed.already_present == len(complete_at_kill)
    assert resumed.downloaded == len(day_times(stream, D1)) - len(complete_at_kill)
    # The day was taken over only once the dead worker's lease had run out.
    assert resumed.started_at > held.lease_until
    rows_of_dead = sum(1 for row in image_rows() if row.run_id == unfinished[0].id)
    assert sum(run.db_inserted for run in finished) + rows_of_dead == figures.rows
    print(
        f"\n--claim with worker a SIGKILLed mid-day (lease {lease:g} s): {figures}; "
        f"a had {len(complete_at_kill)} pictures complete and {rows_of_dead} rows; "
        f"{taken.worker} resumed the day "
        f"{(resumed.started_at - killed_utc).total_seconds():.2f} s after the kill "
        f"(lease left {lease_left:.2f} s); refetched (in flight at the kill) {refetched}; "
        f".part at the kill {len(parts_at_kill)} + 1 planted, removed"
    )


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


# --- download_claimed in threads, discovery replaced by the schedule ---------------


def schedule_discovery(
    monkeypatch: pytest.MonkeyPatch, per_day: int, failing: date | None = None
) -> list[date]:
    """Make discovery answer from the replica's schedule (the first ``per_day`` pictures);
    ``failing`` raises instead. Returns the days asked for, in order."""
    calls: list[date] = []
    lock = threading.Lock()

    def discover(
        self: DrayDogDownloader, day: str | date, stream_name: str = IN
    ) -> DiscoveryResult:
        when = day if isinstance(day, date) else date.fromisoformat(day)
        with lock:
            calls.append(when)
        if when == failing:
            raise RuntimeError("the camera page broke")
        walls = day_times(stream_name, when)[:per_day]
        return DiscoveryResult(when, stream_name, [wall.isoformat() for wall in walls])

    monkeypatch.setattr(DrayDogDownloader, "discover", discover)
    return calls


def test_claimed_threads_keep_their_leases_through_long_days(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    per_day, lease = 30, timedelta(seconds=0.3)
    schedule_discovery(monkeypatch, per_day)
    days = [D1, D2, D3]
    archive = tmp_path / "archive"
    results: dict[str, dict[tuple[date, str], DownloadReport]] = {}
    errors: list[BaseException] = []
    with running_replica(latency=0.04) as server:

        def work(name: str) -> None:
            try:
                with DrayDogDownloader(
                    download_dir=archive,
                    cdn_url=server.cdn_url,
                    app_url=server.app_url,
                    max_workers=2,
                    retry_delay=0.01,
                ) as downloader:
                    results[name] = download_claimed(
                        downloader, D1, D3, [IN], worker=name, lease=lease
                    )
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in ("t1", "t2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        requests = cdn_requests(server)
    assert errors == []
    done = [key for reports in results.values() for key in reports]
    assert sorted(done) == [(day, IN) for day in days]  # each day by one worker
    assert all(report.ok for reports in results.values() for report in reports.values())
    longest = max(r.seconds for reports in results.values() for r in reports.values())
    assert longest > 2 * lease.total_seconds()  # days outlived their lease...
    rows = claim_rows()
    assert {(r.status, r.attempts) for r in rows} == {(claims.DONE, 1)}  # ...kept
    assert {r.worker for r in rows} == set(results) - {
        name for name, reports in results.items() if not reports
    }
    assert set(requests.values()) == {1}
    assert len(requests) == per_day * len(days)
    expected: dict[Path, bytes] = {}
    for day in days:
        expected.update(expected_pictures(archive, IN, day_times(IN, day)[:per_day]))
    check_archive(archive, expected)


def test_claimed_a_failing_day_goes_back_until_its_third_attempt(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = schedule_discovery(monkeypatch, per_day=5, failing=D2)
    seen: list[tuple[date, str, bool]] = []
    archive = tmp_path / "archive"
    with (
        running_replica(latency=0) as server,
        DrayDogDownloader(
            download_dir=archive, cdn_url=server.cdn_url, retry_delay=0.01
        ) as downloader,
    ):
        reports = download_claimed(
            downloader,
            D1,
            D3,
            [IN],
            worker="solo",
            lease=timedelta(seconds=30),
            on_day=lambda day, stream, report: seen.append(
                (day, stream, report.error is None)
            ),
        )

    assert calls == [D1, D2, D2, D2, D3]
    assert seen == [
        (D1, IN, True),
        (D2, IN, False),
        (D2, IN, False),
        (D2, IN, False),
        (D3, IN, True),
    ]
    assert reports[(D2, IN)].error == "RuntimeError: the camera page broke"
    assert reports[(D1, IN)].ok and reports[(D3, IN)].ok
    states = {r.day: (r.status, r.attempts, r.worker) for r in claim_rows()}
    assert states == {
        D1: (claims.DONE, 1, "solo"),
        D2: (claims.FAILED, 3, "solo"),
        D3: (claims.DONE, 1, "solo"),
    }
    assert not folder_of(archive, IN, D2).exists()
    assert len(image_rows()) == 10


@pytest.mark.parametrize("bad", ["../etc", "in gate", "", "in/gate", "In_Gate"])
def test_claimed_refuses_a_bad_stream_before_writing_anything(
    database: str, tmp_path: Path, bad: str
) -> None:
    with DrayDogDownloader(download_dir=tmp_path / "archive", persist=False) as d:
        with pytest.raises(ValueError, match="invalid stream"):
            download_claimed(d, D1, D2, [IN, bad], worker="w", lease=timedelta(1))
    assert claim_rows() == []
    assert not (tmp_path / "archive").exists()


def test_claimed_a_day_is_closed_only_when_complete_and_over(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day with a failed picture goes back to the pool; the terminal's today is never
    closed (it is still filling up); a complete past day is done at once."""
    today = terminal_today(DEFAULT_TIMEZONE)
    answers = {D1: [DownloadReport(failed=[("t", "404")]), DownloadReport()]}

    def download_day(
        self: DrayDogDownloader, day: date, stream: str, **kwargs: object
    ) -> DownloadReport:
        queue = answers.get(day)
        return queue.pop(0) if queue else DownloadReport()

    monkeypatch.setattr(DrayDogDownloader, "download_day_safely", download_day)
    with DrayDogDownloader(download_dir=tmp_path, persist=False) as downloader:
        for first, last in ((D1, D2), (today, today)):
            download_claimed(
                downloader,
                first,
                last,
                [IN],
                worker="solo",
                lease=timedelta(seconds=30),
            )

    states = {r.day: (r.status, r.attempts) for r in claim_rows()}
    assert states == {
        D1: (claims.DONE, 2),
        D2: (claims.DONE, 1),
        today: (claims.FAILED, 3),
    }
