"""The watch loop: every stream of every terminal kept current, one cycle after another.

A cycle reads, for each stream, today (again: new pictures keep coming) and every
past day since the newest one the archive records as done (complete or empty), or
``backfill_days`` back on a new archive, and within ``backfill_days`` any earlier
day recorded partial or failed; days recorded done are never opened again. Files already on disk are not fetched again, so a cycle costs one page read
per day and a request per new picture. The site's History reaches back a limited
time, so a day nobody fetched in time is gone for good: that is why the loop runs
forever rather than once a day.

One stream's failure never holds the others back: the failing stream gets a fresh
browser and sits out a growing number of cycles (exponential, capped). A database
that is down does not stop the downloads: the files stay, and the next cycle
(reading the days again, which the database could not mark done) writes the rows.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from modules.database import days
from modules.downloader.report import DownloadReport, day_status
from modules.downloader.selenium_client import (
    DrayDogDownloader,
    PictureOutcome,
    ProgressCallback,
    Stopped,
)
from modules.service.config import WatchConfig
from modules.service.health import Health, Key
from modules.service.metrics import WatchMetrics, reason_label

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DownloaderFactory = Callable[[str], DrayDogDownloader]
DayCallback = Callable[[str, str, date, DownloadReport], None]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class CycleResult:
    """What one cycle did: each day's report, and the streams that failed or sat out."""

    reports: list[tuple[Key, date, DownloadReport]] = field(default_factory=list)
    failed: list[Key] = field(default_factory=list)
    backing_off: list[Key] = field(default_factory=list)
    stopped: bool = False

    @property
    def ok(self) -> bool:
        """No stream failed and every day's pictures and rows were had."""
        return not self.failed and all(report.ok for _, _, report in self.reports)


class Watch:
    """Runs cycles until :meth:`stop`; one downloader (and browser) per terminal."""

    def __init__(
        self,
        config: WatchConfig,
        *,
        clock: Clock = utc_now,
        make_downloader: DownloaderFactory | None = None,
        on_day: DayCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``clock`` says what time it is at the terminals (tests run the replica
        on a clock of their own); ``on_day`` hears of each day read."""
        self.config = config
        self.clock = clock
        self.keys: list[Key] = [
            (terminal, stream)
            for terminal in config.terminals
            for stream in config.streams
        ]
        self.health = Health(self.keys, config.lag_limit, clock)
        self.metrics = WatchMetrics(self.health, self.keys)
        self.on_day = on_day
        self.cycles = 0
        self._make_downloader = make_downloader or self._new_downloader
        self._rng = rng or random.Random()
        self._downloaders: dict[str, DrayDogDownloader] = {}
        self._lock = threading.Lock()
        self._picks: dict[str, int] = {}
        self._done: dict[Key, set[date]] = {key: set() for key in self.keys}
        """Days this process saw done: what it goes by while the database is down."""
        self._sit_out: dict[Key, int] = {}
        self._stop = threading.Event()

    # --- running and stopping -------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """From any thread (a signal handler, say): end the loop now; what runs is cut."""
        self._stop.set()
        with self._lock:
            running = list(self._downloaders.values())
        for downloader in running:
            downloader.interrupt()

    def run(self, *, once: bool = False) -> CycleResult:
        """Cycles until stopped (or one with ``once``); the last cycle's result."""
        try:
            while True:
                started = time.monotonic()  # the pause is real time, whatever the clock
                result = self.run_cycle()
                if once or self.stopping:
                    return result
                elapsed = time.monotonic() - started
                if self._stop.wait(max(0.0, self.pause() - elapsed)):
                    return result
        finally:
            self.close()

    def pause(self) -> float:
        """Seconds from one cycle's start to the next: the interval, with jitter."""
        spread = self.config.jitter
        return self.config.interval * self._rng.uniform(1 - spread, 1 + spread)

    def close(self) -> None:
        """Quit every browser and release the HTTP sessions."""
        with self._lock:
            running, self._downloaders = list(self._downloaders.values()), {}
        for downloader in running:
            downloader.close()

    # --- one cycle ----------------------------------------------------------------

    def run_cycle(self) -> CycleResult:
        """Every stream once (but those sitting out after failures)."""
        result = CycleResult()
        self.cycles += 1
        for key in self.keys:
            if self.stopping:
                break
            if self._sit_out.get(key, 0) > 0:
                self._sit_out[key] -= 1
                result.backing_off.append(key)
                logger.info("%s/%s sits this cycle out after failures", *key)
                continue
            try:
                error = self._archive_stream(key, result)
            except Stopped:
                break
            except Exception as exc:
                logger.exception("%s/%s: the cycle failed", *key)
                error = f"{type(exc).__name__}: {exc}"
            self._settle(key, error, result)
        result.stopped = self.stopping
        return result

    def _archive_stream(self, key: Key, result: CycleResult) -> str | None:
        """Read the stream's days; the error that ended it, or None."""
        terminal, stream = key
        downloader = self._downloader(terminal)
        today = downloader.today()
        for day in self.days_to_read(key, today):
            self._recycle_if_due(terminal, downloader)
            report = downloader.download_day_safely(
                day, stream, progress=self._watcher_of(key)
            )
            self._picks[terminal] = self._picks.get(terminal, 0) + 1
            self._observe(key, day, today, report)
            result.reports.append((key, day, report))
            if self.on_day is not None:
                self.on_day(terminal, stream, day, report)
            if report.error is not None:
                downloader.restart_browser()
                return report.error
        return None

    def days_to_read(self, key: Key, today: date) -> list[date]:
        """Today first (its lag is what health watches), then the past days not done,
        oldest first (see :func:`modules.database.days.days_to_read`)."""
        terminal, stream = key
        known = self._done[key]
        try:
            return days.days_to_read(
                terminal, stream, today, self.config.backfill_days, known
            )
        except Exception as exc:
            logger.warning(
                "%s/%s: cannot read which days are done (%s); going by this process's memory",
                terminal,
                stream,
                _first_line(exc),
            )
        newest = max(known, default=None)
        first = days.first_day_to_read(today, self.config.backfill_days, newest)
        return days.past_days_to_read(today, first, known)

    def _observe(
        self, key: Key, day: date, today: date, report: DownloadReport
    ) -> None:
        labels = self.metrics
        labels.downloaded.labels(*key, "full").inc(
            report.downloaded - report.thumbnails
        )
        labels.downloaded.labels(*key, "thumbnail").inc(report.thumbnails)
        labels.bytes.labels(*key).inc(report.bytes)
        labels.rows_failed.labels(*key).inc(report.db_failed)
        if report.error is None:
            for _, reason in report.failed:
                labels.failed.labels(*key, reason_label(reason)).inc()
            labels.discovery_seconds.labels(*key).observe(report.discovery_seconds)
            labels.download_seconds.labels(*key).observe(report.seconds)
            # Done in memory only with its rows: a day read while the database was
            # down is read again, which writes them.
            done = day_status(report, day_over=day < today) in days.DONE
            if done and report.db_failed == 0:
                self._done[key].add(day)

    def _watcher_of(self, key: Key) -> ProgressCallback:
        """Notes each picture the archive has, for the stream's newest picture and lag."""

        def seen(outcome: PictureOutcome, done: int, total: int) -> None:
            if outcome.status != "failed" and outcome.timestamp is not None:
                self.health.saw_picture(key, outcome.timestamp)

        return seen

    def _settle(self, key: Key, error: str | None, result: CycleResult) -> None:
        """Health and backoff after the stream's turn: after ``n`` failures in a row
        it sits out ``2**(n-1) - 1`` cycles (capped): none after the first, since a
        fresh browser is often all it takes, then 1, 3, 7, ..."""
        if error is None:
            self.health.succeeded(key)
            self.metrics.cycles.labels(*key, "ok").inc()
            return
        result.failed.append(key)
        failures = self.health.failed(key, error)
        self.metrics.cycles.labels(*key, "failed").inc()
        longest = max(1, int(self.config.max_backoff // self.config.interval))
        self._sit_out[key] = min(2 ** (failures - 1) - 1, longest)
        logger.warning(
            "%s/%s failed %d cycle(s) in a row (%s); sitting out %d cycle(s)",
            *key,
            failures,
            error,
            self._sit_out[key],
        )

    # --- downloaders and their browsers ------------------------------------------

    def _downloader(self, terminal: str) -> DrayDogDownloader:
        with self._lock:
            downloader = self._downloaders.get(terminal)
            if downloader is None:
                downloader = self._make_downloader(terminal)
                self._downloaders[terminal] = downloader
        if self.stopping:
            downloader.interrupt()  # stop() may have run before it existed
        return downloader

    def _new_downloader(self, terminal: str) -> DrayDogDownloader:
        config = self.config
        return DrayDogDownloader(
            download_dir=config.dir,
            terminal=terminal,
            app_url=config.app_url,
            cdn_url=config.cdn_url,
            timeout=config.timeout,
            max_workers=config.workers,
            source_timezone=config.timezone,
            chromium_path=config.chromium,
            chromedriver_path=config.chromedriver,
            clock=self.clock,
        )

    def _recycle_if_due(self, terminal: str, downloader: DrayDogDownloader) -> None:
        """A fresh browser every ``recycle_after`` days read, so that memory stays flat."""
        if self._picks.get(terminal, 0) >= self.config.recycle_after:
            logger.info("%s: recycling the browser", terminal)
            downloader.restart_browser()
            self._picks[terminal] = 0


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
