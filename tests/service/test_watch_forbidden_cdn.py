"""A CDN in front of S3 answers 403 for a missing file: the watch takes the thumbnail, as for a 404.

End to end: real headless Chromium reads the replica's pages, the replica's CDN
answers 403 (``Faults.missing_status``) for the pictures it lacks, and what the
watch made of it is checked where a user would see it: the files, the rows, the
day records, the metrics, ``gaps``, and the next cycle.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from modules.database import days, queries
from modules.downloader.archive import picture_path
from modules.replica import Faults, ReplicaServer
from modules.service.gaps import ShortDay, ThumbnailDay, find_gaps
from modules.service.watch import CycleResult
from tests.service.watch_helpers import (
    STREAMS,
    TERMINAL,
    TODAY,
    WatchFactory,
    archive_db,
    clock,
    make_watch,
    published,
    site,
)

__all__ = ["archive_db", "clock", "make_watch", "site"]  # fixtures used here

pytestmark = pytest.mark.browser

YESTERDAY = TODAY - timedelta(days=1)


def _report(result: CycleResult, stream: str, day: date) -> object:
    (report,) = [r for (_, s), d, r in result.reports if s == stream and d == day]
    return report


def _cdn_requests(site: ReplicaServer) -> list[str]:
    return [r.path for r in site.request_log if r.path.startswith("/cdn/")]


def test_a_403_for_a_missing_full_size_picture_leads_to_the_thumbnail_in_a_watch(
    site: ReplicaServer, make_watch: WatchFactory, archive_db: str, tmp_path: Path
) -> None:
    root = tmp_path / "images"
    in_gate = published(site, "in_gate", YESTERDAY)
    out_gate = published(site, "out_gate", YESTERDAY)
    only_thumbnail = [in_gate[10], in_gate[70], in_gate[-1]]  # full size: 403
    lost = [out_gate[5], out_gate[99]]  # full size and thumbnail: 403
    site.faults = Faults(
        missing_full=frozenset(w.isoformat() for w in only_thumbnail),
        missing=frozenset(w.isoformat() for w in lost),
        missing_status=403,
    )
    watch = make_watch(backfill_days=1)

    first = watch.run_cycle()

    # in_gate: every picture had, three of them as the thumbnail the CDN did have.
    report = _report(first, "in_gate", YESTERDAY)
    assert report.failed == [] and report.error is None  # type: ignore[attr-defined]
    assert report.downloaded == len(in_gate)  # type: ignore[attr-defined]
    assert report.thumbnails == 3  # type: ignore[attr-defined]
    for wall in only_thumbnail:
        assert picture_path(root, TERMINAL, "in_gate", wall, True).is_file()
        assert not picture_path(root, TERMINAL, "in_gate", wall, False).exists()
    record = days.get_day(TERMINAL, "in_gate", YESTERDAY)
    assert record is not None and record.status == days.COMPLETE
    assert (record.listed, record.stored, record.thumbnails) == (len(in_gate),) * 2 + (
        3,
    )
    thumbnail_rows = sorted(
        image.timestamp
        for image in queries.iter_images()
        if image.is_thumbnail and image.camera_id == "in_gate"
    )
    assert len(thumbnail_rows) == 3

    # out_gate: a 403 for both is one failure each, said as a 403, and not retried.
    report = _report(first, "out_gate", YESTERDAY)
    assert sorted(report.failed) == sorted(  # type: ignore[attr-defined]
        (wall.isoformat(), "403: no picture, no thumbnail") for wall in lost
    )
    record = days.get_day(TERMINAL, "out_gate", YESTERDAY)
    assert record is not None and record.status == days.PARTIAL
    assert (record.listed, record.stored, record.failed) == (
        len(out_gate),
        len(out_gate) - 2,
        2,
    )
    asked = Counter(_cdn_requests(site))
    assert set(asked.values()) == {1}, "a 403 is not retried"
    assert len(asked) == sum(
        len(published(site, s, d)) for s in STREAMS for d in (TODAY, YESTERDAY)
    ) + len(
        only_thumbnail + lost
    )  # every full-size URL, and these thumbnails
    # A stream whose pictures are missing has not failed: it read its page.
    assert first.failed == [] and not first.ok

    registry = watch.metrics.registry
    labels = {"terminal": TERMINAL, "stream": "in_gate"}
    assert registry.get_sample_value(
        "draydog_pictures_downloaded_total", {**labels, "kind": "thumbnail"}
    ) == float(len(only_thumbnail))
    assert registry.get_sample_value(
        "draydog_pictures_failed_total",
        {"terminal": TERMINAL, "stream": "out_gate", "reason": "forbidden"},
    ) == float(len(lost))

    # gaps: the thumbnails are listed and lack nothing; the lost pictures do.
    gaps = find_gaps(start=YESTERDAY, end=YESTERDAY, archive=root, today=TODAY)
    assert gaps.thumbnails == [ThumbnailDay(TERMINAL, "in_gate", YESTERDAY, 3)]
    assert gaps.short_days == [
        ShortDay(
            TERMINAL,
            "out_gate",
            YESTERDAY,
            days.PARTIAL,
            len(out_gate),
            len(out_gate) - 2,
            2,
            len(out_gate) - 2,
        )
    ]
    assert gaps.rows_without_files == gaps.files_without_rows == []
    assert gaps.lacking
    assert not find_gaps(
        start=YESTERDAY, end=YESTERDAY, stream="in_gate", archive=root, today=TODAY
    ).lacking

    # Next cycle: in_gate's finished day is not opened again; out_gate's short day
    # is read again (within the backfill window), and only its two lost pictures
    # are asked for again (each full size, then thumbnail).
    site.reset_counters()
    second = watch.run_cycle()
    assert [d for (_, s), d, _ in second.reports if s == "in_gate"] == [TODAY]
    assert [d for (_, s), d, _ in second.reports if s == "out_gate"] == [
        TODAY,
        YESTERDAY,
    ]
    again = _report(second, "out_gate", YESTERDAY)
    assert again.already_present == len(out_gate) - 2  # type: ignore[attr-defined]
    assert len(again.failed) == 2  # type: ignore[attr-defined]
    # Nothing new today (the clock stood still): only the lost pictures' two URLs each.
    again_asked = Counter(_cdn_requests(site))
    assert set(again_asked.values()) == {1}
    assert len(again_asked) == 2 * len(lost)
    assert set(again_asked) <= set(asked)
