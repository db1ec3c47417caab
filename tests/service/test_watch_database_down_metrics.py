"""A database outage during a watch cycle, as /metrics and /healthz tell it.

The downloads go on (the files are there), the rows that could not be written are
counted in ``draydog_rows_failed_total``, the stream has not failed (its page was
read), and the next cycle, with the database back, writes the rows without a
single picture fetched again.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modules.database import models, queries
from modules.replica import ReplicaServer
from tests.service.watch_helpers import (
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
    site,
)

__all__ = ["archive_db", "clock", "make_watch", "site"]  # fixtures used here

pytestmark = pytest.mark.browser


def test_rows_failed_are_counted_while_the_database_is_down_and_caught_up_after(
    site: ReplicaServer,
    clock: MovingClock,
    make_watch: WatchFactory,
    archive_db: str,
    tmp_path: Path,
) -> None:
    watch = make_watch(backfill_days=1)
    registry = watch.metrics.registry
    models.configure(UNREACHABLE_DB, retry_attempts=1, retry_delay=0.01)

    down = watch.run_cycle()

    assert down.failed == [] and not down.ok
    pictures = {
        s: sum(len(published(site, s, d)) for d in (TODAY, TODAY - timedelta(days=1)))
        for s in STREAMS
    }
    for stream in STREAMS:
        labels = {"terminal": TERMINAL, "stream": stream}
        lost_rows = sum(r.db_failed for (_, s), _, r in down.reports if s == stream)
        assert (
            lost_rows == pictures[stream] + 2
        )  # every picture's row, each day's record
        assert registry.get_sample_value("draydog_rows_failed_total", labels) == float(
            lost_rows
        )
        assert registry.get_sample_value(
            "draydog_pictures_downloaded_total", {**labels, "kind": "full"}
        ) == float(pictures[stream])
        assert (
            registry.get_sample_value(
                "draydog_stream_cycles_total", {**labels, "outcome": "ok"}
            )
            == 1.0
        )
    healthy, body = watch.health.report()
    assert healthy, body  # the cameras are current; the rows come next cycle
    assert len(list((tmp_path / "images").rglob("*.jpg"))) == sum(pictures.values())

    models.configure(archive_db, retry_attempts=2, retry_delay=0.01)
    clock.advance(minutes=1)
    site.reset_counters()
    up = watch.run_cycle()

    assert up.ok
    assert [r.path for r in site.request_log if r.path.startswith("/cdn/")] == []
    assert queries.count_images() == sum(pictures.values())
    for stream in STREAMS:
        labels = {"terminal": TERMINAL, "stream": stream}
        assert registry.get_sample_value("draydog_rows_failed_total", labels) == float(
            pictures[stream] + 2
        )  # no new failures
        assert registry.get_sample_value(
            "draydog_pictures_downloaded_total", {**labels, "kind": "full"}
        ) == float(
            pictures[stream]
        )  # nothing fetched twice
