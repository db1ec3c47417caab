"""A database that fails only while a day's rows are written: the day is not done.

The page is read in headless Chromium from the replica and the pictures come from
its CDN; the database is a real SQLite file or PostgreSQL schema. The outage is a
seam (``queries._write_chunk`` raising past its retries) because a database that
fails for the row writes and is back a moment later for the day's record cannot
be caused for real in a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from modules.database import days, queries
from modules.replica import ReplicaServer
from tests.discovery.conftest import TIMEOUT, browser_paths
from tests.downloader.conftest import (
    DAY,
    STREAM,
    TERMINAL,
    DownloaderFactory,
    day_times,
    rows_under,
)

pytestmark = pytest.mark.browser


def _cdn_requests(replica: ReplicaServer) -> int:
    return sum(1 for r in replica.request_log if r.path.startswith("/cdn/"))


def test_a_day_whose_rows_failed_is_partial_and_the_rerun_writes_them_without_fetching(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    chromium, chromedriver = browser_paths()
    pictures = len(day_times())
    real_write = queries._write_chunk
    down = {"now": True}

    def write_chunk(*args: Any, **kwargs: Any) -> Any:
        if down["now"]:
            raise OperationalError("INSERT INTO images", {}, Exception("server gone"))
        return real_write(*args, **kwargs)

    monkeypatch.setattr(queries, "_write_chunk", write_chunk)
    downloader = make_downloader(
        timeout=TIMEOUT, chromium_path=chromium, chromedriver_path=chromedriver
    )

    first = downloader.download_date(DAY, STREAM)
    assert first.downloaded == pictures and not first.failed
    assert first.db_failed == pictures and not first.ok
    record = days.get_day(TERMINAL, STREAM, DAY)
    assert record is not None and record.status == days.PARTIAL
    assert record.stored == pictures  # the files are all there; only rows lack
    assert rows_under(tmp_path / "images") == []

    # The database is back: the same call reads the day again and writes the rows
    # from the files on disk, asking the CDN for nothing.
    down["now"] = False
    replica.reset_counters()
    again = downloader.download_date(DAY, STREAM)
    assert again.recorded is None
    assert (again.downloaded, again.already_present) == (0, pictures)
    assert (again.db_inserted, again.db_failed) == (pictures, 0) and again.ok
    assert _cdn_requests(replica) == 0
    record = days.get_day(TERMINAL, STREAM, DAY)
    assert record is not None and record.status == days.COMPLETE
    assert len(rows_under(tmp_path / "images")) == pictures

    # Now done: not read again.
    assert downloader.download_date(DAY, STREAM).recorded == days.COMPLETE
