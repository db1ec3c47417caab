"""The offline demo: the whole pipeline, real headless Chromium included, against the bundled replica.

It proves on a fresh machine that discovery, downloads, the archive and the
database work together, without touching the real DrayDog.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from modules.database import models, queries
from modules.downloader.report import DownloadReport
from modules.downloader.selenium_client import DrayDogDownloader
from modules.site.urls import DEFAULT_TIMEZONE, terminal_today
from modules.replica.schedule import Schedule
from modules.replica.server import ReplicaServer

DEMO_STREAMS = ("in_gate", "out_gate")


@dataclass
class DemoResult:
    """Where the demo put things and what it did."""

    archive: Path
    database_url: str
    reports: dict[tuple[date, str], DownloadReport]
    rows: int


def run_demo(
    folder: str | Path | None = None,
    database_url: str | None = None,
    *,
    days: int = 1,
    streams: tuple[str, ...] = DEMO_STREAMS,
    on_day: Callable[[date, str, DownloadReport], None] | None = None,
) -> DemoResult:
    """Download ``days`` whole days (ending yesterday) of ``streams`` from a replica on 127.0.0.1.

    The archive goes to ``folder`` (default: a fresh temporary folder) and the rows
    to ``database_url`` (default: an SQLite file inside that folder).
    """
    root = (
        Path(folder)
        if folder is not None
        else Path(tempfile.mkdtemp(prefix="draydog-demo-"))
    )
    root.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{(root / 'draydog.sqlite3').resolve()}"
    models.configure(url)
    today = terminal_today(DEFAULT_TIMEZONE)
    schedule = Schedule(today=today, streams=streams)
    last = today - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    with ReplicaServer(schedule=schedule) as replica:
        with DrayDogDownloader(
            download_dir=root / "images",
            app_url=replica.app_url,
            cdn_url=replica.cdn_url,
        ) as downloader:
            reports = downloader.download_date_range(
                first, last, streams, on_day=on_day
            )
    return DemoResult(root / "images", url, reports, queries.count_images())
