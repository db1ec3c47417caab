"""Real ``draydog worker`` processes on RabbitMQ, the replica and PostgreSQL.

* Four workers over a range of days and both streams: every picture once, one row
  each, no ``.part``, a summary table that adds up, the work spread over workers.
* A worker SIGKILLed (with its pool and browser) in the middle of a day: the broker
  gives the day to another worker, which completes it; nothing lost or doubled.
* A pool process SIGKILLed in the middle of a day (``task_reject_on_worker_lost``):
  the day goes back to the queue and is completed.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest

from modules.database import models
from modules.downloader.archive import day_folder
from modules.site.urls import build_image_url
from urllib.parse import urlsplit
from tests.reliability.workers_helpers import jpgs_in, reaped, run_rows, wait_until
from tests.tasks.helpers import (
    TERMINAL,
    check_archive,
    day_times,
    enqueue_args,
    expected_pictures,
    full_requests,
    kill_session,
    running_replica,
    start,
    stop,
    stop_all,
    summary_rows,
    tasks_done_by,
    tasks_received_by,
    wait_ready,
    worker_args,
)

D1, D2, D3 = date(2025, 9, 5), date(2025, 9, 6), date(2025, 9, 7)
IN, OUT = "in_gate", "out_gate"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.postgres
def test_four_workers_archive_a_range_of_both_streams(
    queue: str, postgres_url: str, tmp_path: Path
) -> None:
    days, streams = [D1, D2, D3], [IN, OUT]
    archive, logs = tmp_path / "archive", tmp_path / "logs"
    with running_replica(latency=0.02) as server:
        workers = [
            start(
                f"w{n}",
                worker_args(queue, postgres_url, archive, server, name=f"w{n}"),
                logs,
            )
            for n in range(1, 5)
        ]
        with reaped(workers):
            wait_ready(workers)
            client = start("enqueue", enqueue_args(queue, days, streams), logs)
            with reaped([client]):
                code = client.wait(150)
            requests = full_requests(server)
            codes = stop_all(workers)
    assert code == 0, client.output() + "".join(w.output() for w in workers)
    assert codes == [0, 0, 0, 0]
    for worker in workers:
        assert "Traceback" not in worker.err(), worker.output()

    models.configure(postgres_url)
    expected = expected_pictures(archive, days, streams)
    rows = check_archive(archive, expected)
    assert rows == len(expected) == 3 * 2 * 24
    # One task per (stream, day), each done once; at least two workers had some.
    done = {worker.name: tasks_done_by(worker) for worker in workers}
    all_done = [task for tasks in done.values() for task in tasks]
    assert len(all_done) == len(set(all_done)) == len(days) * len(streams)
    assert sum(1 for tasks in done.values() if tasks) >= 2, done
    assert set(requests.values()) == {1} and len(requests) == len(expected)

    table = summary_rows(client.stdout.read_text())
    assert sorted((r.day, r.stream) for r in table) == sorted(
        (day.isoformat(), stream) for day in days for stream in streams
    )
    for row in table:
        assert row.found == "24" and row.new == 24 and row.present == 0
        assert row.failed == "0" and row.rows == 24 and row.db_failed == 0
    assert sum(row.rows for row in table) == rows
    runs = run_rows()
    assert len(runs) == len(table)
    for run in runs:
        assert run.status == "ok" and run.requested == run.downloaded == 24
        assert run.db_inserted == 24 and run.failed == 0
    print(
        f"\nfour workers: {rows} pictures, {rows} rows, tasks per worker "
        f"{[len(tasks) for tasks in done.values()]}"
    )


def full_url(cdn: str, stream: str, wall: datetime) -> str:
    return build_image_url(cdn, TERMINAL, stream, wall, False)


def _folder(root: Path, stream: str, day: date) -> Path:
    return day_folder(root, TERMINAL, stream, day_times(stream, day)[0])


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.postgres
def test_a_worker_killed_mid_day_has_its_day_completed_by_another(
    queue: str, postgres_url: str, tmp_path: Path
) -> None:
    days, stream = [D1, D2], IN
    archive, logs = tmp_path / "archive", tmp_path / "logs"
    first = _folder(archive, stream, D1)
    total = len(day_times(stream, D1))
    # Slow pictures, two at a time: a day takes about 24 x 0.25 / 2 = 3 s to fetch.
    with running_replica(latency=0.25) as server:
        doomed = start(
            "doomed",
            worker_args(
                queue, postgres_url, archive, server, name="doomed", fetch_workers=2
            ),
            logs,
        )
        with reaped([doomed]):
            wait_ready([doomed])
            client = start("enqueue", enqueue_args(queue, days, [stream]), logs)
            with reaped([client]):
                wait_until(
                    lambda: 3 <= len(jpgs_in(first)), 120, "the doomed worker mid-day"
                )
                kill_session(doomed)
                complete_at_kill = jpgs_in(first)
                assert len(complete_at_kill) < total
                survivor = start(
                    "survivor",
                    worker_args(queue, postgres_url, archive, server, name="survivor"),
                    logs,
                )
                with reaped([survivor]):
                    code = client.wait(150)
                    requests = full_requests(server)
                    cdn = server.cdn_url
                    assert stop(survivor) == 0
    assert doomed.process.returncode == -9
    assert code == 0, client.output() + doomed.output() + survivor.output()
    assert len(tasks_received_by(doomed)) == 1 and tasks_done_by(doomed) == []
    assert len(tasks_done_by(survivor)) == len(days)

    models.configure(postgres_url)
    expected = expected_pictures(archive, days, [stream])
    assert check_archive(archive, expected) == len(expected)
    # Complete pictures were not fetched again; those in flight at the kill at most twice.
    for wall in day_times(stream, D1):
        name = _folder(archive, stream, D1) / f"{stream}_{wall:%Y%m%dT%H%M%S}.jpg"
        fetched = requests[urlsplit(full_url(cdn, stream, wall)).path]
        assert 1 <= fetched <= (1 if name.resolve() in complete_at_kill else 2)
    assert sum(count - 1 for count in requests.values()) <= 2  # two fetch threads
    table = summary_rows(client.stdout.read_text())
    (resumed,) = [row for row in table if row.day == D1.isoformat()]
    assert resumed.present >= len(complete_at_kill) and resumed.failed == "0"
    assert resumed.new + resumed.present == total
    print(
        f"\nworker SIGKILLed with {len(complete_at_kill)} of {total} pictures complete: "
        f"the survivor found {resumed.present} present, fetched {resumed.new}; "
        f"{sum(count - 1 for count in requests.values())} fetched twice"
    )


def _pool_processes(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


@pytest.mark.slow
@pytest.mark.browser
def test_a_pool_process_killed_mid_day_gives_the_day_back(
    queue: str, sqlite_url: str, tmp_path: Path
) -> None:
    days, stream = [D1], OUT
    archive, logs = tmp_path / "archive", tmp_path / "logs"
    folder = _folder(archive, stream, D1)
    with running_replica(latency=0.25) as server:
        worker = start(
            "worker",
            worker_args(
                queue, sqlite_url, archive, server, name="worker", fetch_workers=2
            ),
            logs,
        )
        with reaped([worker]):
            wait_ready([worker])
            (pool,) = _pool_processes(worker.pid)
            client = start("enqueue", enqueue_args(queue, days, [stream]), logs)
            with reaped([client]):
                wait_until(lambda: 3 <= len(jpgs_in(folder)), 120, "the task mid-day")
                import os
                import signal

                os.kill(pool, signal.SIGKILL)
                code = client.wait(150)
            assert stop(worker) == 0
    assert code == 0, client.output() + worker.output()
    assert "WorkerLostError" in worker.err()
    assert len(tasks_received_by(worker)) == 2 and len(tasks_done_by(worker)) == 1
    models.configure(sqlite_url)
    expected = expected_pictures(archive, days, [stream])
    assert check_archive(archive, expected) == len(expected)
    counts = Counter(row.day for row in summary_rows(client.stdout.read_text()))
    assert counts == {D1.isoformat(): 1}
