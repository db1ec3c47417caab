"""``draydog watch`` keeping an archive in a bucket current (moto's S3 on 127.0.0.1),
in real headless Chromium against the replica on a clock the test moves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modules.database import queries
from modules.downloader.archive import picture_key
from modules.replica import ReplicaServer
from tests.service.watch_helpers import (
    TERMINAL,
    TODAY,
    MovingClock,
    WatchFactory,
    archive_db,
    clock,
    make_watch,
    published,
    site,
)
from tests.storage.helpers import PREFIX, STREAM, objects

__all__ = ["archive_db", "clock", "make_watch", "site"]  # fixtures used here

pytestmark = pytest.mark.browser


def test_watch_keeps_a_bucket_current_and_fetches_only_new_pictures(
    site: ReplicaServer,
    clock: MovingClock,
    make_watch: WatchFactory,
    archive_db: str,
    s3_bucket: str,
) -> None:
    location = f"s3://{s3_bucket}/{PREFIX}"
    watch = make_watch(dir=location, backfill_days=1, streams=(STREAM,))
    yesterday = TODAY - timedelta(days=1)

    assert watch.run_cycle().ok

    def expected() -> set[str]:
        return {
            f"{PREFIX}/{picture_key(TERMINAL, STREAM, wall)}"
            for day in (yesterday, TODAY)
            for wall in published(site, STREAM, day)
        }

    first = expected()
    assert set(objects(s3_bucket)) == first
    rows = {queries.image_location(row, location) for row in queries.iter_images()}
    assert rows == {f"s3://{s3_bucket}/{name}" for name in first}

    clock.advance(minutes=35)
    site.reset_counters()
    assert watch.run_cycle().ok

    new = expected() - first
    assert new, "the cameras published pictures in 35 minutes"
    assert set(objects(s3_bucket)) == first | new
    fetched = [r.path for r in site.request_log if r.path.startswith("/cdn/")]
    assert len(fetched) == len(new), "only the new pictures are fetched"
