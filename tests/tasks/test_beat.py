"""``draydog beat`` sends each stream's watch cycle; a worker reads today and the
past days not done, and a day once done is never read again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modules.database import days, models
from modules.replica import Schedule
from modules.site.urls import terminal_today
from tests.reliability.workers_helpers import reaped, wait_until
from tests.tasks.helpers import (
    TERMINAL,
    full_requests,
    running_replica,
    start,
    stop,
    wait_ready,
    worker_args,
)


@pytest.mark.slow
@pytest.mark.browser
def test_beat_sends_the_watch_cycle_and_workers_keep_the_stream_current(
    queue: str, sqlite_url: str, tmp_path: Path
) -> None:
    schedule = Schedule(interval_minutes=120)  # the real clock: today fills up
    archive, logs = tmp_path / "archive", tmp_path / "logs"
    today = terminal_today()
    yesterday = today - timedelta(days=1)
    models.configure(sqlite_url)

    def yesterday_done_and_today_read_twice() -> bool:
        try:
            record = days.get_day(TERMINAL, "in_gate", yesterday)
        except Exception:
            return False
        return (
            record is not None
            and record.status == days.COMPLETE
            and worker.err().count("draydog.watch_stream") >= 4
        )

    with running_replica(schedule=schedule) as server:
        worker = start(
            "worker",
            worker_args(queue, sqlite_url, archive, server, name="worker"),
            logs,
        )
        beat = start(
            "beat",
            ["beat", "--stream", "in_gate", "--interval", "3", "--backfill-days", "1"]
            + ["--queue", queue, "--schedule-file", str(tmp_path / "beat-state")],
            logs,
        )
        with reaped([worker, beat]):
            wait_ready([worker])
            wait_until(yesterday_done_and_today_read_twice, 150, "two cycles")
            assert stop(beat) == 0
            assert stop(worker) == 0
            requests = full_requests(server)
    walls = schedule.timestamps(TERMINAL, "in_gate", yesterday)
    record = days.get_day(TERMINAL, "in_gate", yesterday)
    assert record is not None and record.stored == len(walls) == 12
    # Yesterday was read once (done, never sent again); today's pictures once each.
    assert requests and set(requests.values()) == {1}
    assert "beat: 1 streams every 3 s to queue" in beat.stdout.read_text()
