"""Downloading a date range as one of many workers that share a database and an archive.

Each (terminal, stream, day) is leased through :mod:`modules.database.claims`; a
background thread renews the lease while the day downloads, so only a worker that
died loses its days, and only for as long as its lease had left.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from types import TracebackType

from modules.database import claims
from modules.downloader.report import DownloadReport
from modules.downloader.selenium_client import DrayDogDownloader, ProgressCallback
from modules.site.urls import terminal_today, validate_name

logger = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(seconds=120)


def default_worker_name() -> str:
    """``<host>-<pid>``: unique among the workers sharing a database."""
    return f"{socket.gethostname()}-{os.getpid()}"


class _LeaseKeeper:
    """Renews a claim's lease every third of its length until the day is over."""

    def __init__(self, claim: claims.Claim, lease: timedelta) -> None:
        self.claim = claim
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="draydog-lease", daemon=True
        )

    def _run(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            try:
                if not claims.renew(self.claim, self.lease):
                    logger.warning(
                        "lost the lease on %s %s", self.claim.stream, self.claim.day
                    )
                    return
            except Exception as exc:
                logger.warning(
                    "could not renew the lease on %s: %s", self.claim.day, exc
                )

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


def _finished(downloader: DrayDogDownloader, day: date, report: DownloadReport) -> bool:
    """Whether a day can be closed for good: all of it was had, and it is over at the terminal.

    Anything less (pictures or rows that failed, today's day still filling up) puts
    the day back, so another attempt, or the next run, completes it.
    """
    return report.ok and day < terminal_today(downloader.source_timezone)


def download_claimed(
    downloader: DrayDogDownloader,
    start: str | date,
    end: str | date,
    streams: Sequence[str] = ("in_gate",),
    *,
    worker: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
    progress: ProgressCallback | None = None,
    on_day: Callable[[date, str, DownloadReport], None] | None = None,
    force: bool = False,
) -> dict[tuple[date, str], DownloadReport]:
    """Download the days of the range that no other worker holds, until none is left.

    Days recorded complete or empty are not read again unless ``force``.

    Returns the reports of the days this worker did. A day that is not complete
    goes back to the pool (up to three attempts in all; a later run tries again). Bad stream names are a
    ValueError before anything is written.
    """
    if lease <= timedelta(0):
        raise ValueError("the lease must be positive")
    days = downloader.checked_range(start, end)
    for stream in streams:
        validate_name(stream, "stream")
    name = worker or default_worker_name()
    claims.add_days(downloader.terminal, streams, days)
    reports: dict[tuple[date, str], DownloadReport] = {}
    while True:
        claim = claims.claim_next(name, downloader.terminal, streams, days, lease=lease)
        if claim is None:
            return reports
        logger.info("%s claimed %s %s", name, claim.stream, claim.day)
        with _LeaseKeeper(claim, lease):
            report = downloader.download_day_safely(
                claim.day, claim.stream, progress=progress, force=force
            )
        claims.release(claim, done=_finished(downloader, claim.day, report))
        reports[(claim.day, claim.stream)] = report
        if on_day is not None:
            on_day(claim.day, claim.stream, report)
