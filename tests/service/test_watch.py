"""The watch loop in real headless Chromium against the replica on a clock the test moves."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from modules.database import days, models, queries
from modules.downloader.archive import picture_path
from modules.replica import ReplicaServer
from modules.service.watch import Watch
from tests.service.watch_helpers import (
    FAST_PAGE,
    STREAMS,
    TERMINAL,
    TODAY,
    UNREACHABLE_DB,
    MovingClock,
    WatchFactory,
    archive_db,
    clock,
    make_watch,
    published,
    schedule,
    site,
)

__all__ = ["archive_db", "clock", "make_watch", "site"]  # fixtures used here

pytestmark = pytest.mark.browser

BACKFILL = 2


def _days_read(watch_result: object, stream: str) -> list[date]:
    return [day for (_, s), day, _ in watch_result.reports if s == stream]  # type: ignore[attr-defined]


def _archived(root: Path, stream: str) -> set[Path]:
    return {p for p in (root / TERMINAL / stream).rglob("*.jpg")}


def _expected(
    site: ReplicaServer, root: Path, stream: str, days_: list[date]
) -> set[Path]:
    return {
        picture_path(root, TERMINAL, stream, wall)
        for day in days_
        for wall in published(site, stream, day)
    }


def _picture_requests(site: ReplicaServer) -> list[str]:
    return [r.path for r in site.request_log if r.path.startswith("/cdn/")]


def test_a_new_archive_is_backfilled_and_past_days_recorded_done(
    site: ReplicaServer, make_watch: WatchFactory, archive_db: str, tmp_path: Path
) -> None:
    watch = make_watch(backfill_days=BACKFILL)
    root = tmp_path / "images"

    result = watch.run_cycle()

    assert result.ok
    past = [TODAY - timedelta(days=n) for n in range(BACKFILL, 0, -1)]
    for stream in STREAMS:
        assert _days_read(result, stream) == [TODAY, *past]
        wanted = _expected(site, root, stream, [TODAY, *past])
        assert _archived(root, stream) == wanted
        assert 144 * BACKFILL < len(wanted) < 144 * (BACKFILL + 1)
        for day in past:
            record = days.get_day(TERMINAL, stream, day)
            assert record is not None and record.status == days.COMPLETE
            assert record.listed == record.stored == len(published(site, stream, day))
        today = days.get_day(TERMINAL, stream, TODAY)
        assert today is not None and today.status == days.PARTIAL
    rows = {queries.image_location(row, root) for row in queries.iter_images()}
    assert rows == {p for s in STREAMS for p in _archived(root, s)}


def test_later_cycles_fetch_only_new_pictures_and_reopen_no_finished_day(
    site: ReplicaServer,
    clock: MovingClock,
    make_watch: WatchFactory,
    archive_db: str,
    tmp_path: Path,
) -> None:
    watch = make_watch(backfill_days=BACKFILL)
    root = tmp_path / "images"
    assert watch.run_cycle().ok
    before = {stream: published(site, stream, TODAY) for stream in STREAMS}

    clock.advance(minutes=35)
    site.reset_counters()
    second = watch.run_cycle()

    assert second.ok
    for stream in STREAMS:
        assert _days_read(second, stream) == [TODAY]  # no finished day reopened
        new = published(site, stream, TODAY)[len(before[stream]) :]
        assert 2 <= len(new) <= 5
        (report,) = [r for (_, s), _, r in second.reports if s == stream]
        assert report.downloaded == len(new)
        assert report.already_present == len(before[stream])
    # Each new picture was asked for once; nothing already on disk was asked for.
    requests = _picture_requests(site)
    assert (
        len(requests)
        == len(set(requests))
        == sum(len(published(site, s, TODAY)) - len(before[s]) for s in STREAMS)
    )

    # Past midnight at the terminal: yesterday (read while it was today) is read
    # once more for its evening, and is then done; the new day starts.
    clock.now = clock.now.replace(hour=7, minute=30) + timedelta(days=1)  # 00:30 PDT
    third = watch.run_cycle()
    tomorrow = TODAY + timedelta(days=1)
    assert third.ok
    for stream in STREAMS:
        assert _days_read(third, stream) == [tomorrow, TODAY]
        assert _archived(root, stream) == _expected(
            site,
            root,
            stream,
            [tomorrow] + [TODAY - timedelta(days=n) for n in range(BACKFILL + 1)],
        )
        record = days.get_day(TERMINAL, stream, TODAY)
        assert record is not None and record.status == days.COMPLETE
    fourth = watch.run_cycle()
    assert [day for _, day, _ in fourth.reports] == [tomorrow, tomorrow]


def test_a_stream_whose_page_fails_backs_off_while_the_other_goes_on(
    site: ReplicaServer,
    clock: MovingClock,
    make_watch: WatchFactory,
    archive_db: str,
    tmp_path: Path,
) -> None:
    # The site has no out_gate camera any more: its page cannot be read.
    site.schedule = schedule(clock, streams=("in_gate",))
    watch = make_watch(backfill_days=0, timeout=3.0)
    root = tmp_path / "images"

    outcomes = []
    for cycle in range(5):
        clock.advance(minutes=10 if cycle else 0)
        outcomes.append(watch.run_cycle())

    # Failed twice: sits one cycle out; failed a third time: sits out three.
    out_gate = (TERMINAL, "out_gate")
    assert [r.failed for r in outcomes] == [[out_gate]] * 2 + [[], [out_gate], []]
    assert [r.backing_off for r in outcomes] == [[], [], [out_gate], [], [out_gate]]
    assert [len(_days_read(r, "in_gate")) for r in outcomes] == [1] * 5
    assert [r.ok for r in outcomes] == [False, False, True, False, True]
    assert _archived(root, "in_gate") == _expected(site, root, "in_gate", [TODAY])
    assert _archived(root, "out_gate") == set()
    healthy, body = watch.health.report()
    assert not healthy
    streams = {s["stream"]: s for s in body["streams"]}  # type: ignore[attr-defined]
    assert streams["in_gate"]["healthy"] is True
    assert streams["out_gate"]["consecutive_failures"] == 3
    assert "cycles failed" in streams["out_gate"]["problems"][-1]


def test_rows_missed_while_the_database_was_down_are_written_next_cycle(
    site: ReplicaServer,
    clock: MovingClock,
    make_watch: WatchFactory,
    archive_db: str,
    tmp_path: Path,
) -> None:
    watch = make_watch(backfill_days=1)
    root = tmp_path / "images"
    models.configure(UNREACHABLE_DB, retry_attempts=1, retry_delay=0.01)

    down = watch.run_cycle()

    files = {p for s in STREAMS for p in _archived(root, s)}
    assert not down.ok and down.failed == []
    assert files == {
        p
        for s in STREAMS
        for p in _expected(site, root, s, [TODAY, TODAY - timedelta(days=1)])
    }
    assert all(report.db_failed > 0 for _, _, report in down.reports)

    models.configure(archive_db, retry_attempts=2, retry_delay=0.01)
    clock.advance(minutes=1)
    site.reset_counters()
    up = watch.run_cycle()

    assert up.ok
    assert sorted(day for _, day, _ in up.reports) == sorted(
        [TODAY, TODAY - timedelta(days=1)] * 2
    )
    assert _picture_requests(site) == []  # the files were there: only rows written
    assert {queries.image_location(r, root) for r in queries.iter_images()} == files
    record = days.get_day(TERMINAL, "in_gate", TODAY - timedelta(days=1))
    assert record is not None and record.status == days.COMPLETE


def test_run_once_returns_after_one_cycle_and_quits_the_browser(
    make_watch: WatchFactory, archive_db: str
) -> None:
    watch: Watch = make_watch(backfill_days=0, streams=("in_gate",))
    result = watch.run(once=True)
    assert result.ok and watch.cycles == 1
    assert watch._downloaders == {}


def test_stop_during_a_page_read_ends_it_at_once(
    site: ReplicaServer, make_watch: WatchFactory, archive_db: str
) -> None:
    # The History takes 30 s to answer: only killing the browser ends the read.
    site.page_options = replace(FAST_PAGE, history_delay=30.0)
    watch = make_watch(backfill_days=0, timeout=60.0)
    results = []
    worker = threading.Thread(target=lambda: results.append(watch.run()))
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        "/history" in r.path for r in site.request_log
    ):
        time.sleep(0.05)
    started = time.monotonic()
    watch.stop()
    worker.join(10)

    assert not worker.is_alive() and time.monotonic() - started < 3.0
    (result,) = results
    assert result.stopped and result.reports == [] and result.failed == []
    assert watch._downloaders == {}  # closed


def test_the_browser_is_recycled_after_recycle_after_days_read(
    make_watch: WatchFactory, archive_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    watch = make_watch(backfill_days=0, streams=("in_gate",), recycle_after=2)
    with caplog.at_level(logging.INFO, logger="modules.downloader.browser"):
        for _ in range(3):
            assert watch.run_cycle().ok
    started = [r for r in caplog.records if "Chromium started" in r.getMessage()]
    assert len(started) == 2  # the third day read is the fresh browser's first
