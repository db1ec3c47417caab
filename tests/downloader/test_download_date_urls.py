"""download_date fetches the URLs the camera page shows, in whatever form the CDN uses.

Discovery is replaced at its seam (``DrayDogDownloader.discover``) by what a page
with Unix-form thumbnail URLs would give; the pictures come from the replica CDN,
which serves that form too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from modules.database import queries
from modules.downloader import DrayDogDownloader
from modules.downloader.discovery import DiscoveryResult
from modules.replica import ReplicaServer, Schedule

LOS_ANGELES = ZoneInfo("America/Los_Angeles")
FALL_BACK = date(2025, 11, 2)  # 01:00-02:00 happens twice at the terminal
STREAM = "in_gate"


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaServer]:
    with ReplicaServer(schedule=Schedule(today=date(2025, 11, 10))) as server:
        yield server


def unix_thumbnail(server: ReplicaServer, moment: datetime) -> str:
    wall = moment.astimezone(LOS_ANGELES)
    millis = int(moment.timestamp() * 1000)
    return (
        f"{server.cdn_url}/apm/{wall.date()}/{wall.hour:02d}/"
        f"{millis}-{STREAM}-thumbnail.jpeg"
    )


def test_the_page_urls_are_fetched_and_their_instants_recorded(
    replica: ReplicaServer,
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walls = [
        t
        for t in replica.schedule.timestamps("apm", STREAM, FALL_BACK)
        if t.hour == 1 and t.fold == 1
    ][:2]
    # The second 01:xx of the night: PST, UTC-8. Its wall clock alone is ambiguous.
    second_pass = [
        wall.replace(tzinfo=LOS_ANGELES, fold=1).astimezone(timezone.utc)
        for wall in walls
    ]
    assert all(
        moment.astimezone(LOS_ANGELES).utcoffset() == -timedelta(hours=8)
        for moment in second_pass
    )
    page = DiscoveryResult(
        day=FALL_BACK,
        stream=STREAM,
        timestamps=[wall.isoformat() for wall in walls],
        thumbnails={
            wall.isoformat(): unix_thumbnail(replica, moment)
            for wall, moment in zip(walls, second_pass)
        },
    )
    monkeypatch.setattr(DrayDogDownloader, "discover", lambda *args: page)
    replica.reset_counters()

    with DrayDogDownloader(
        download_dir=tmp_path, app_url=replica.app_url, cdn_url=replica.cdn_url
    ) as downloader:
        report = downloader.download_date(FALL_BACK, STREAM)

    assert report.ok and report.downloaded == 2
    fetched = sorted(record.path for record in replica.request_log)
    expected = sorted(
        urlsplit(url.replace("-thumbnail", "")).path for url in page.thumbnails.values()
    )
    assert fetched == expected  # the Unix form, as the page showed it
    rows = queries.list_images()
    assert [row.timestamp for row in rows] == second_pass  # not an hour early
    assert [Path(row.filepath).name for row in rows] == [
        f"{STREAM}_{wall:%Y%m%dT%H%M%S}-0800.jpg" for wall in walls
    ]  # the name says which 01:xx it is
    assert all(row.source_url in expected_urls(page) for row in rows)
    assert second_pass[0] - timedelta(hours=1) not in [row.timestamp for row in rows]


def expected_urls(page: DiscoveryResult) -> set[str]:
    return {url.replace("-thumbnail", "") for url in page.thumbnails.values()}
