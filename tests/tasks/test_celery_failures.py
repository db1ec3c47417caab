"""How Celery workers meet failures, with real processes on RabbitMQ and the replica.

* A worker without a browser (``--chromium`` at a missing path; under ``celery -A
  modules.tasks.app worker`` too) or without a database at start takes no task and
  exits with a clear error, while a healthy worker beside it completes the range.
* The database down for a while (a proxy in front of PostgreSQL cuts every
  connection): the tasks keep the files, retry with backoff, and complete once it
  is back, with one row per picture and nothing fetched twice.
* The History failing for a while: the read fails, the task is retried on a fresh
  browser and completes.
* ``enqueue --wait`` exits 0 when every picture was had and 1 when a picture is
  missing in both sizes, a permanent failure that is reported and not retried.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from modules.database import models
from modules.replica import Faults
from tests.reliability.workers_helpers import reaped, wait_until
from tests.tasks.helpers import (
    CuttableProxy,
    check_archive,
    day_times,
    enqueue_args,
    expected_pictures,
    full_requests,
    running_replica,
    start,
    stop,
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
def test_broken_workers_take_nothing_and_a_healthy_one_completes_the_range(
    queue: str, sqlite_url: str, tmp_path: Path
) -> None:
    days, streams = [D1, D2], [IN, OUT]
    archive, logs = tmp_path / "archive", tmp_path / "logs"
    missing = "/nonexistent/chromium"
    gone = day_times(IN, D3)[5]  # a picture missing in both sizes: permanent
    faults = Faults(latency=0.01, missing=frozenset({gone.isoformat()}))
    with running_replica(faults=faults) as server:
        healthy = start(
            "healthy",
            worker_args(queue, sqlite_url, archive, server, name="healthy"),
            logs,
        )
        no_browser = start(
            "no-browser",
            worker_args(
                queue,
                sqlite_url,
                archive,
                server,
                name="no-browser",
                extra=["--chromium", missing],
            ),
            logs,
        )
        no_database = start(
            "no-database",
            worker_args(
                queue,
                "postgresql://postgres@127.0.0.1:1/none",
                archive,
                server,
                name="no-database",
            ),
            logs,
        )
        celery_no_browser = start(
            "celery-no-browser",
            ["-A", "modules.tasks.app", "worker", "-Q", queue, "-c", "1"]
            + ["-n", "celery-no-browser@%h", "--without-mingle", "--without-gossip"],
            logs,
            command=[sys.executable, "-m", "celery"],
            env={
                "DRAYDOG_CHROMIUM": missing,
                "DATABASE_URL": sqlite_url,
                "DRAYDOG_ARCHIVE": str(archive),
                "DRAYDOG_APP_URL": server.app_url,
                "DRAYDOG_CDN_URL": server.cdn_url,
            },
        )
        broken = [no_browser, no_database, celery_no_browser]
        with reaped([healthy, *broken]):
            # The tasks are there before any worker could take one.
            client = start("enqueue", enqueue_args(queue, days, streams), logs)
            partial = start("partial", enqueue_args(queue, [D3], [IN]), logs)
            with reaped([client, partial]):
                code = client.wait(150)
                partial_code = partial.wait(150)
            broken_codes = [worker.wait(60) for worker in broken]
            assert stop(healthy) == 0
    assert code == 0, client.output() + "".join(w.output() for w in broken)
    assert no_browser.process.returncode == 3
    (line,) = no_browser.err().strip().splitlines()
    assert line.startswith(
        "draydog: error: this worker cannot archive, so it takes no task: no browser"
    )
    assert missing in line
    assert no_database.process.returncode == 3
    assert "no database" in no_database.err()
    assert celery_no_browser.process.returncode not in (0, None)
    assert (
        "this worker cannot archive, so it takes no task: no browser"
        in celery_no_browser.err()
    )
    assert all(code != 0 for code in broken_codes)
    for worker in broken:
        assert tasks_received_by(worker) == []
    assert len(tasks_done_by(healthy)) == len(days) * len(streams) + 1
    assert len(tasks_received_by(healthy)) == len(days) * len(streams) + 1
    models.configure(sqlite_url)
    expected = expected_pictures(archive, days, streams)
    walls = [wall for wall in day_times(IN, D3) if wall != gone]
    expected.update(
        {
            path: data
            for path, data in expected_pictures(archive, [D3], [IN]).items()
            if path.name != f"{IN}_{gone:%Y%m%dT%H%M%S}.jpg"
        }
    )
    assert len(walls) == 23
    assert check_archive(archive, expected) == len(expected)

    # enqueue --wait: 1 when a picture is missing in both sizes (reported, not
    # retried: the task was received once), 0 above when everything was had.
    assert partial_code == 1, partial.output()
    (row,) = summary_rows(partial.stdout.read_text())
    assert (row.found, row.new, row.failed, row.rows) == ("24", 23, "1", 23)
    assert "404: no picture, no thumbnail" in partial.stdout.read_text()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.postgres
def test_the_database_down_for_a_while_tasks_retry_and_complete(
    queue: str, postgres_url: str, tmp_path: Path
) -> None:
    days, streams = [D1], [IN, OUT]
    archive, logs = tmp_path / "archive", tmp_path / "logs"
    target = make_url(postgres_url)
    proxy = CuttableProxy(target.host or "127.0.0.1", target.port or 5432)
    through_proxy = target.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False
    )
    try:
        with running_replica() as server:
            worker = start(  # two processes: the two days' attempts run side by side
                "worker",
                worker_args(
                    queue, through_proxy, archive, server, name="worker", concurrency=2
                ),
                logs,
            )
            with reaped([worker]):
                wait_ready([worker])  # the database answered at start
                proxy.cut()
                client = start("enqueue", enqueue_args(queue, days, streams), logs)
                with reaped([client]):
                    wait_until(
                        lambda: worker.err().count("rows not written") >= 2,
                        120,
                        "a retry of each task while the database is down",
                    )
                    files_while_down = len(list(archive.rglob("*.jpg")))
                    proxy.restore()
                    code = client.wait(150)
                requests = full_requests(server)
                assert stop(worker) == 0
    finally:
        proxy.close()
    assert code == 0, client.output() + worker.output()
    assert proxy.refused > 0
    assert files_while_down == 2 * 24  # the files were kept while the rows failed
    models.configure(postgres_url)
    expected = expected_pictures(archive, days, streams)
    assert check_archive(archive, expected) == len(expected)
    assert set(requests.values()) == {1}  # nothing fetched again by the retries
    table = summary_rows(client.stdout.read_text())
    assert len(table) == 2
    for row in table:
        assert (row.new, row.present, row.rows, row.db_failed) == (0, 24, 24, 0)
    assert len(tasks_done_by(worker)) == 2
    assert len(tasks_received_by(worker)) >= 4  # each task retried at least once
    print(
        f"\ndatabase down: {proxy.refused} connections refused, "
        f"{len(tasks_received_by(worker))} deliveries for 2 tasks, {len(expected)} rows"
    )


FAKE_CHROMIUM = """#!/bin/sh
# Says its version, as a real Chromium does, but cannot start a browser.
if [ "$1" = "--version" ]; then echo "Chromium 156.0.0.0 (a fake)"; exit 0; fi
exit 1
"""


@pytest.mark.slow
@pytest.mark.browser
def test_a_browser_lost_after_the_start_gives_the_task_back_and_stops_the_worker(
    queue: str, sqlite_url: str, tmp_path: Path
) -> None:
    """The preflight passes (the binary answers ``--version``) but no browser starts:
    the task goes back to the queue, the worker exits with status 3, and a healthy
    worker started afterwards completes the day."""
    archive, logs = tmp_path / "archive", tmp_path / "logs"
    fake = tmp_path / "chromium"
    fake.write_text(FAKE_CHROMIUM)
    fake.chmod(0o755)
    with running_replica() as server:
        broken = start(
            "broken",
            worker_args(
                queue,
                sqlite_url,
                archive,
                server,
                name="broken",
                extra=["--chromium", str(fake)],
            ),
            logs,
        )
        with reaped([broken]):
            wait_ready([broken])
            client = start("enqueue", enqueue_args(queue, [D1], [IN, OUT]), logs)
            with reaped([client]):
                assert broken.wait(120) == 3, broken.output()
                healthy = start(
                    "healthy",
                    worker_args(queue, sqlite_url, archive, server, name="healthy"),
                    logs,
                )
                with reaped([healthy]):
                    code = client.wait(150)
                    assert stop(healthy) == 0
    assert code == 0, client.output() + broken.output() + healthy.output()
    assert "this worker cannot archive, so it stops: BrowserUnavailable" in broken.err()
    assert tasks_received_by(broken) and tasks_done_by(broken) == []
    assert len(tasks_done_by(healthy)) == 2
    models.configure(sqlite_url)
    expected = expected_pictures(archive, [D1], [IN, OUT])
    assert check_archive(archive, expected) == len(expected)


@pytest.mark.slow
@pytest.mark.browser
def test_a_page_that_fails_is_retried_and_the_day_completes(
    queue: str, sqlite_url: str, tmp_path: Path
) -> None:
    """The site's History answers 503 for a while: the read fails (a transient
    failure), the task is retried with backoff on a fresh browser, and completes."""
    archive, logs = tmp_path / "archive", tmp_path / "logs"
    with running_replica() as server:
        worker = start(
            "worker",
            worker_args(queue, sqlite_url, archive, server, name="worker"),
            logs,
        )
        with reaped([worker]):
            wait_ready([worker])
            server.history_failures = 1000
            client = start("enqueue", enqueue_args(queue, [D1], [IN]), logs)
            with reaped([client]):
                wait_until(
                    lambda: "attempt 2 again" in worker.err(),
                    120,
                    "the failed read to be retried",
                )
                server.history_failures = 0
                code = client.wait(150)
            assert stop(worker) == 0
    assert code == 0, client.output() + worker.output()
    assert "DiscoveryError" in worker.err() or "PageUnreachable" in worker.err()
    assert len(tasks_received_by(worker)) >= 2 and len(tasks_done_by(worker)) == 1
    models.configure(sqlite_url)
    expected = expected_pictures(archive, [D1], [IN])
    assert check_archive(archive, expected) == len(expected)
    (row,) = summary_rows(client.stdout.read_text())
    assert (row.new, row.failed, row.rows) == (24, "0", 24)
