"""DrayDogDownloader: the facade that ties discovery, fetching, the archive and the database.

Pictures are found in the browser, fetched over HTTP, stored under the archive
layout and recorded in the database. The database is a record of the disk, never
its master: a failed write is counted and logged, the file stays, and the next run
(or ``draydog reindex``) writes the row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests

from modules.backoff import Backoff
from modules.database import days, queries
from modules.database.models import with_db_retries
from modules.downloader.ahead import run_ahead
from modules.downloader.archive import (
    day_prefix,
    file_name,
    legacy_picture_key,
    picture_key,
    read_picture_path,
    remove_stale_parts,
)
from modules.downloader.discovery import (
    BrowserDiscovery,
    DiscoveryError,
    DiscoveryResult,
)
from modules.downloader.fetch import (
    Absent,
    Cancelled,
    FetchError,
    NotFound,
    PictureFetcher,
    check_url,
    new_http_session,
)
from modules.downloader.report import UNUSABLE_ITEM, DownloadReport, day_status
from modules.storage import LocalStorage, Storage, StorageError, open_storage
from modules.site.urls import (
    DEFAULT_TIMEZONE,
    InvalidImageURL,
    build_image_url,
    get_zone,
    parse_day,
    parse_image_url,
    parse_instant,
    picture_urls,
    terminal_today,
    timestamp_text,
    utc_to_wall_clock,
    validate_name,
)

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_WORKERS = 64


@dataclass(frozen=True)
class PictureOutcome:
    """What happened to one picture of a batch (handed to progress callbacks)."""

    wall_time: datetime
    status: str
    """``downloaded``, ``present`` or ``failed``."""
    url: str
    path: Path | None = None
    """The picture's file, when the archive is a folder."""
    size: int = 0
    sha256: str | None = None
    is_thumbnail: bool = False
    reason: str | None = None
    timestamp: datetime | None = None
    """The capture time, timezone-aware UTC."""
    key: str | None = None
    """The picture's key in the archive, when it is stored (downloaded or present)."""
    location: str | None = None
    """Its full path, or ``s3://`` URL, for people and reports."""


@dataclass(frozen=True)
class _Target:
    """Where one picture goes: its storage and key, and the size stored there when
    the batch began (None: not stored)."""

    storage: Storage
    key: str
    stored: int | None


@dataclass(frozen=True)
class _DayRead:
    """A day's first step: its record (done, not read again) or its page's answer."""

    day_over: bool
    """Whether the day was over when its page was read: only then can it be complete."""
    recorded: DownloadReport | None = None
    found: DiscoveryResult | None = None


@dataclass(frozen=True)
class _Wanted:
    """A picture to have: its wall-clock time, UTC instant and URLs.

    The instant, not the wall time, names the file: in the repeated autumn hour one
    wall time is two pictures.
    """

    wall: datetime
    """Naive wall-clock time at the terminal; ``fold=1`` in a repeated hour's second pass."""
    timestamp: datetime
    full_url: str
    thumb_url: str


Known = dict[tuple[datetime, bool], tuple[int | None, str | None]]
"""Pictures with a row: (instant, is_thumbnail) -> (file_size, sha256), from the database."""

ProgressCallback = Callable[[PictureOutcome, int, int], None]
"""Called as each picture finishes with its outcome, how many are done and how many there are."""


class Stopped(Exception):
    """The downloader was interrupted (:meth:`DrayDogDownloader.interrupt`).

    Raised once the pictures already complete have their rows; nothing half-fetched
    is kept.
    """


class DrayDogDownloader:
    """Finds a day's gate-camera pictures, downloads them and records their metadata.

    Use it as a context manager, or call :meth:`close`, to release the browser and
    the HTTP session it created (a session handed in stays the caller's).
    """

    def __init__(
        self,
        download_dir: str | Path | Storage = "data/images",
        terminal: str = "apm",
        app_url: str = "https://app.draydog.com",
        cdn_url: str = "https://cdn.draydog.com",
        headless: bool = True,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        timeout: float = 30,
        max_workers: int = 8,
        batch_size: int = 500,
        source_timezone: str = DEFAULT_TIMEZONE,
        persist: bool = True,
        max_image_bytes: int = 20 * MiB,
        http_session: requests.Session | None = None,
        chromium_path: str | None = None,
        chromedriver_path: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``download_dir`` is the archive: a folder, an ``s3://bucket/prefix`` URL
        (S3 configured by the standard ``AWS_*`` variables) or a Storage.
        ``clock`` gives the current instant (aware) that says which day is today at
        the terminal; the real clock when None (a test's replica may run on its own)."""
        self.terminal = validate_name(terminal, "terminal")
        _check_range("max_workers", max_workers, 1, MAX_WORKERS)
        _check_range("batch_size", batch_size, 1, queries.MAX_CHUNK_SIZE)
        _check_range("max_retries", max_retries, 0, 20)
        if timeout <= 0 or retry_delay < 0 or max_image_bytes <= 0:
            raise ValueError(
                "timeout and max_image_bytes must be positive, retry_delay not negative"
            )
        get_zone(source_timezone)
        self.app_url = _base_url(app_url, "app_url")
        self.cdn_url = _base_url(cdn_url, "cdn_url")
        self.storage = _storage_of(download_dir)
        self.download_dir: Path | str
        """The archive: a folder's path (as given), or the storage's URL."""
        if not isinstance(self.storage, LocalStorage):
            self.download_dir = str(self.storage)
        elif isinstance(download_dir, Storage):
            self.download_dir = self.storage.root
        else:
            self.download_dir = Path(download_dir)
        self.headless = headless
        self.timeout = timeout
        self.max_workers = max_workers
        self.batch_size = batch_size
        self.source_timezone = source_timezone
        self.persist = persist
        self.chromium_path = chromium_path
        self.chromedriver_path = chromedriver_path
        self.db_failures = 0
        self._owns_session = http_session is None
        self.http = http_session or new_http_session(max_workers)
        self.fetcher = PictureFetcher(
            self.http,
            allowed_netloc=urlsplit(self.cdn_url).netloc,
            backoff=Backoff(attempts=max_retries + 1, base_delay=retry_delay),
            timeout=timeout,
            max_bytes=max_image_bytes,
        )
        self._discovery: BrowserDiscovery | None = None
        self._clock = clock
        self.stopping = threading.Event()
        self._reading = False
        """Whether a day's page is being read (then interrupt() kills the browser)."""

    # --- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        """Quit the browser if one was started and close the HTTP session if it is ours."""
        if self._discovery is not None:
            self._discovery.close()
            self._discovery = None
        if self._owns_session:
            self.http.close()

    def restart_browser(self) -> None:
        """Quit the browser now; the next day read starts a fresh one (after a failure,
        or to give back what a long-running browser has grown)."""
        if self._discovery is not None:
            self._discovery.close()
            self._discovery = None

    def interrupt(self) -> None:
        """Stop what runs, from any thread, for good: no picture is handed out any more,
        fetches in flight are cut, a day being read fails; the call in progress raises
        :class:`Stopped` once the rows of the pictures already complete are written."""
        self.stopping.set()
        self.fetcher.cancel()
        if self._reading and self._discovery is not None:
            self._discovery.interrupt()  # killed: an idle one is quit politely by close()

    def today(self) -> date:
        """Today at the terminal, by the downloader's clock."""
        if self._clock is None:
            return terminal_today(self.source_timezone)
        return self._clock().astimezone(get_zone(self.source_timezone)).date()

    def __enter__(self) -> DrayDogDownloader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- discovery ---------------------------------------------------------------

    def _browser(self) -> BrowserDiscovery:
        if self.stopping.is_set():
            raise Stopped("interrupted")
        if self._discovery is None:
            self._discovery = BrowserDiscovery(
                self.app_url,
                self.cdn_url,
                self.terminal,
                headless=self.headless,
                timeout=self.timeout,
                chromium_path=self.chromium_path,
                chromedriver_path=self.chromedriver_path,
                source_timezone=self.source_timezone,
            )
        return self._discovery

    def get_timestamps_for_date(
        self, date: str | date, stream_name: str = "in_gate"
    ) -> list[str]:
        """The day's History timestamps (ISO wall-clock strings), found in headless Chromium."""
        return list(self.discover(date, stream_name).timestamps)

    def discover(
        self, date: str | date, stream_name: str = "in_gate"
    ) -> DiscoveryResult:
        """The day's History as the page shows it, with what was ignored or failed to load."""
        day = self._checked_day(date)
        validate_name(stream_name, "stream")
        self._reading = True  # before _browser(), which refuses once stopping
        try:
            return self._browser().timestamps_for_date(day, stream_name)
        finally:
            self._reading = False

    def download_date(
        self,
        date: str | date,
        stream_name: str = "in_gate",
        *,
        save_dir: str | Path | Storage | None = None,
        progress: ProgressCallback | None = None,
        force: bool = False,
    ) -> DownloadReport:
        """Discover a day's pictures, then download and record them.

        Pictures the page itself could not load have no known URL: they are reported
        as one failure of the day, so they are never silently missing. The day's
        verdict goes to ``archive_days`` (see :mod:`modules.database.days`), also
        when the day fails; a database error there is counted, never raised.

        A past day already recorded ``complete`` or ``empty`` is not read again (no
        browser, no request): the report is the record's, with ``recorded`` set to
        its status and no files listed. ``force=True`` reads and checks it anyway.
        """
        day = self._checked_day(date)
        validate_name(stream_name, "stream")
        return self._finish_day(
            day,
            stream_name,
            partial(self._read_day, day, stream_name, force, save_dir),
            save_dir,
            lambda: progress,
        )

    def _read_day(
        self,
        day: date,
        stream: str,
        force: bool,
        save_dir: str | Path | Storage | None,
    ) -> _DayRead:
        """A day's first step: its record when it is done, else its page's answer."""
        # Judged before the page is read: a list read before midnight misses the rest.
        day_over = day < self.today()
        if day_over and not force and self._is_own(self._storage_for(save_dir)):
            known = self._recorded_done(stream, day)
            if known is not None:
                return _DayRead(day_over, recorded=known)
        return _DayRead(day_over, found=self.discover(day, stream))

    def _finish_day(
        self,
        day: date,
        stream: str,
        read: Callable[[], _DayRead],
        save_dir: str | Path | Storage | None,
        progress_of: Callable[[], ProgressCallback | None],
    ) -> DownloadReport:
        """Download and record what ``read`` gives (it may have run in another thread);
        ``progress_of`` is asked for the progress callback once the pictures are known.

        Only a day of the downloader's own archive gets a record: a day downloaded
        into another folder says nothing of what the archive holds.
        """
        own = self._is_own(self._storage_for(save_dir))
        try:
            first = read()
            if first.recorded is not None:
                return first.recorded
            assert first.found is not None
            report = self._download_found(first.found, stream, save_dir, progress_of())
        except Stopped:
            raise
        except Exception as exc:
            if self.stopping.is_set():
                raise Stopped(f"interrupted while reading {day}") from exc
            if own:
                failure = DownloadReport(failed=[(day.isoformat(), str(exc))])
                self._record_day(stream, day, days.FAILED, failure, 0)
            raise
        if own:
            status = day_status(report, day_over=first.day_over)
            self._record_day(stream, day, status, report, report.requested)
        return report

    def _recorded_done(self, stream: str, day: date) -> DownloadReport | None:
        """The report of a day recorded complete or empty, or None (then it is read)."""
        if not self.persist:
            return None
        try:
            record = days.get_day(self.terminal, stream, day)
        except Exception as exc:
            logger.warning(
                "could not read the record of %s %s %s (%s): reading the day",
                self.terminal,
                stream,
                day,
                exc,
            )
            return None
        if record is None or record.status not in days.DONE:
            return None
        logger.info(
            "%s %s %s: already %s (%d stored), not read again",
            self.terminal,
            stream,
            day,
            record.status,
            record.stored,
        )
        return DownloadReport(
            requested=record.listed,
            already_present=record.stored,
            empty=record.status == days.EMPTY,
            recorded=record.status,
        )

    def _download_found(
        self,
        found: DiscoveryResult,
        stream_name: str,
        save_dir: str | Path | Storage | None,
        progress: ProgressCallback | None,
    ) -> DownloadReport:
        found.require_usable(self.terminal)  # whichever discovery read it
        wanted = [
            self._wanted_from_page(stream_name, iso, found) for iso in found.timestamps
        ]
        page_failures = [
            (found.day.isoformat(), f"{UNUSABLE_ITEM}{why}: {url}")
            for url, why in found.unusable
        ]
        if found.missing:
            page_failures.append(
                (
                    found.day.isoformat(),
                    f"{found.missing} pictures failed to load on the page",
                )
            )
        storage = self._storage_for(save_dir)
        report = self._download(
            stream_name, wanted, storage, progress, page_failures=page_failures
        )
        report.foreign_ignored = found.foreign
        report.empty = found.confirmed_empty
        report.discovery_seconds = found.seconds
        return report

    def _wanted_from_page(
        self, stream: str, iso: str, found: DiscoveryResult
    ) -> _Wanted:
        """The page's own URLs for a picture (whatever form the CDN uses), else built ones.

        The instant is the URL's when exact (Unix form), else the one ``iso`` names: a
        repeated-hour timestamp carries its offset, which a zone-less ISO URL cannot.
        """
        src = found.thumbnails.get(iso)
        if src is None:
            return self._wanted(stream, parse_instant(iso, self.source_timezone))
        ref = parse_image_url(src, self.source_timezone)
        instant = (
            ref.timestamp if ref.exact else parse_instant(iso, self.source_timezone)
        )
        if not ref.exact and utc_to_wall_clock(
            instant, self.source_timezone
        ) != ref.local_time.replace(fold=0):
            instant = ref.timestamp  # the timestamp names another time: the URL wins
        full, thumbnail = picture_urls(src)  # the History may list full-size URLs
        return _Wanted(
            utc_to_wall_clock(instant, self.source_timezone), instant, full, thumbnail
        )

    def download_date_range(
        self,
        start: str | date,
        end: str | date,
        streams: Sequence[str] = ("in_gate",),
        *,
        progress: ProgressCallback | None = None,
        on_day: Callable[[date, str, DownloadReport], None] | None = None,
        force: bool = False,
        overlap: bool = True,
    ) -> dict[tuple[date, str], DownloadReport]:
        """Every day from ``start`` to ``end`` (inclusive) for each stream; a failing day is reported and the range goes on.

        Days recorded complete or empty are not read again unless ``force``; see
        :meth:`download_days` for ``overlap``."""
        days = self.checked_range(start, end)
        for stream in streams:
            validate_name(stream, "stream")
        reports: dict[tuple[date, str], DownloadReport] = {}
        for day, stream, report in self.download_days(
            [(day, stream) for day in days for stream in streams],
            progress_for=None if progress is None else (lambda d, s: progress),
            force=force,
            overlap=overlap,
        ):
            reports[(day, stream)] = report
            if on_day is not None:
                on_day(day, stream, report)
        return reports

    def download_days(
        self,
        items: Iterable[tuple[date, str]],
        *,
        progress_for: Callable[[date, str], ProgressCallback | None] | None = None,
        force: bool = False,
        overlap: bool = True,
    ) -> Generator[tuple[date, str, DownloadReport], None, None]:
        """Each (day, stream) as :meth:`download_day_safely` does it, in order.

        With ``overlap`` the next day's page is read (in one background thread, the
        only one using the browser) while this day's pictures download, so a range
        runs near its download time rather than reading plus downloading in series.
        ``progress_for`` gives a day's progress callback when its downloads start.
        """
        checked = [
            (self._checked_day(day), validate_name(stream, "stream"))
            for day, stream in items
        ]

        def first_step(item: tuple[date, str]) -> _DayRead:
            return self._read_day(item[0], item[1], force, None)

        reads: Iterator[tuple[tuple[date, str], Callable[[], _DayRead]]]
        if overlap:
            ahead = run_ahead(checked, first_step, thread_name="discovery")
            reads = ((item, future.result) for item, future in ahead)
        else:
            ahead = None
            reads = ((item, partial(first_step, item)) for item in checked)
        finished = False
        try:
            for (day, stream), read in reads:
                report = self._finish_safely(
                    day,
                    stream,
                    read,
                    (
                        partial(progress_for, day, stream)
                        if progress_for is not None
                        else lambda: None
                    ),
                )
                yield day, stream, report
            finished = True
        finally:
            if ahead is not None:
                if not finished:
                    self._cut_read_ahead()
                ahead.close()  # waits for the read that runs, cut or not

    def _cut_read_ahead(self) -> None:
        """The caller left a range early: a page being read ahead is cut (its
        browser killed, also if the read is only about to start), and the next
        read starts a new browser."""
        discovery, self._discovery = self._discovery, None
        if discovery is not None:
            discovery.interrupt()

    def download_day_safely(
        self,
        day: date,
        stream: str,
        *,
        progress: ProgressCallback | None = None,
        force: bool = False,
    ) -> DownloadReport:
        """:meth:`download_date`, with a failure of the day turned into a report that says why."""
        started = time.monotonic()
        try:
            return self.download_date(day, stream, progress=progress, force=force)
        except Stopped:
            raise
        except Exception as exc:
            return self._failed_day(day, stream, exc, started)

    def _finish_safely(
        self,
        day: date,
        stream: str,
        read: Callable[[], _DayRead],
        progress_of: Callable[[], ProgressCallback | None],
    ) -> DownloadReport:
        started = time.monotonic()
        try:
            return self._finish_day(day, stream, read, None, progress_of)
        except Stopped:
            raise
        except Exception as exc:
            return self._failed_day(day, stream, exc, started)

    def _failed_day(
        self, day: date, stream: str, exc: Exception, started: float
    ) -> DownloadReport:
        logger.error("%s %s %s failed: %s", self.terminal, stream, day, exc)
        return DownloadReport(
            failed=[(day.isoformat(), str(exc))],
            error=f"{type(exc).__name__}: {exc}",
            seconds=time.monotonic() - started,
        )

    def checked_range(self, start: str | date, end: str | date) -> list[date]:
        """The days from ``start`` to ``end`` inclusive; reversed or future ranges are a ValueError."""
        first, last = self._checked_day(start), self._checked_day(end)
        if last < first:
            raise ValueError(f"reversed range: {first} is after {last}")
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def _checked_day(self, value: str | date) -> date:
        day = parse_day(value)
        today = self.today()
        if day > today:
            raise ValueError(
                f"{day} is in the future (today at the terminal is {today})"
            )
        return day

    # --- one picture ---------------------------------------------------------------

    def download_image(
        self, url: str, save_dir: str | Path, stream_name: str = "unknown"
    ) -> str | None:
        """Download one picture URL into ``save_dir`` and record it; the saved path, or None.

        Only URLs on the configured CDN host are fetched: anything else is a
        ValueError, as is a URL of another stream than ``stream_name`` (``unknown``
        takes the URL's). A database failure is logged and counted, never raised.
        """
        check_url(url, urlsplit(self.cdn_url).netloc)
        ref = parse_image_url(url, self.source_timezone)
        if stream_name != "unknown":
            validate_name(stream_name, "stream")
            if ref.stream != stream_name:
                raise ValueError(
                    f"URL is of stream {ref.stream!r}, not {stream_name!r}: {url}"
                )
        folder = LocalStorage(Path(save_dir))
        key = file_name(
            ref.stream,
            ref.timestamp,
            ref.is_thumbnail,
            source_timezone=self.source_timezone,
        )
        try:
            target = _Target(folder, key, folder.stat(key))
            outcome = self._obtain(
                url, target, ref.local_time, ref.is_thumbnail, ref.timestamp
            )
        except (FetchError, StorageError) as exc:
            logger.warning("could not download %s: %s", url, exc)
            return None
        saved = str(folder.path(key).resolve())
        if self.persist:
            try:
                image_id = queries.insert_image(
                    filepath=saved,
                    camera_id=ref.stream,
                    timestamp=ref.timestamp,
                    file_size=outcome.size,
                    terminal=ref.terminal,
                    sha256=outcome.sha256,
                    source_url=url,
                    is_thumbnail=ref.is_thumbnail,
                    local_day=ref.local_time.date(),
                )
                logger.info("saved %s to the database with id %d", saved, image_id)
            except Exception as exc:
                self.db_failures += 1
                logger.error("failed to save %s to the database: %s", saved, exc)
        return saved

    def _obtain(
        self,
        url: str,
        target: _Target,
        wall_time: datetime,
        is_thumbnail: bool,
        timestamp: datetime,
        known: Known | None = None,
    ) -> PictureOutcome:
        """The picture at ``target``: already stored there, or fetched and stored now.

        A picture stored whose row (in ``known``) has its size and hash is not read
        again; one without a row, or of another size, is hashed. A new one is
        fetched into a local ``.part`` (verified: a whole JPEG under the cap), then
        committed to the storage: a rename in a folder, one upload to a bucket. A
        failed upload fails the picture and leaves neither object nor part.
        """
        storage, key = target.storage, target.key
        if target.stored is not None:
            size = target.stored
            row_size, row_sha256 = (known or {}).get(
                (timestamp, is_thumbnail), (None, None)
            )
            try:
                digest = (
                    row_sha256
                    if row_size == size and row_sha256 is not None
                    else storage.sha256(key)
                )
            except StorageError as exc:
                raise FetchError(f"storage: {exc}") from exc
            status = "present"
        else:
            part = storage.staging_path(key)
            try:
                fetched = self.fetcher.fetch_to(url, part)
                storage.commit(key, part)
            except StorageError as exc:
                logger.warning("could not store %s: %s", url, exc)
                raise FetchError(f"storage: {exc}") from exc
            finally:
                part.unlink(missing_ok=True)
            size, digest, status = fetched.size, fetched.sha256, "downloaded"
        location = storage.location(key)
        return PictureOutcome(
            wall_time,
            status,
            url,
            Path(location) if isinstance(storage, LocalStorage) else None,
            size,
            digest,
            is_thumbnail,
            timestamp=timestamp,
            key=key,
            location=location,
        )

    def _extract_timestamp_from_url(self, url: str) -> datetime:
        """The capture time a picture URL carries, timezone-aware UTC.

        A URL that cannot be parsed falls back to the current UTC time with a warning,
        as the original plan asks; never the machine's local time.
        """
        try:
            return parse_image_url(url, self.source_timezone).timestamp
        except InvalidImageURL as exc:
            logger.warning(
                "no timestamp in %s (%s): using the current UTC time", url, exc
            )
            return datetime.now(timezone.utc)

    # --- a batch ------------------------------------------------------------------------

    def download_images_direct(
        self,
        stream_name: str,
        timestamps: Iterable[str | datetime],
        *,
        save_dir: str | Path | Storage | None = None,
        max_images: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DownloadReport:
        """Download the pictures of ``stream_name`` at ``timestamps`` and record them all.

        Timestamps are the page's ISO strings or datetimes (naive: wall-clock time at
        the terminal; aware, or a string with an offset: that instant, which in the
        repeated autumn hour tells the two occurrences apart). Pictures are fetched in
        capture order. Every one is checked before any I/O. Full-size
        pictures answering 404 fall back to their thumbnail. Every picture on disk for
        this call, new or already there, is written to the database in chunks of
        ``batch_size``, so the database catches up with the disk on each re-run.
        """
        validate_name(stream_name, "stream")
        if max_images is not None and max_images < 0:
            raise ValueError(f"max_images must not be negative, not {max_images}")
        instants = sorted(
            {parse_instant(value, self.source_timezone) for value in timestamps}
        )
        if max_images is not None:
            instants = instants[:max_images]
        storage = self._storage_for(save_dir)
        wanted = [self._wanted(stream_name, instant) for instant in instants]
        return self._download(stream_name, wanted, storage, progress)

    def _storage_for(self, save_dir: str | Path | Storage | None) -> Storage:
        """The archive of one call: ``save_dir`` when given, else the downloader's."""
        return self.storage if save_dir is None else _storage_of(save_dir)

    def _is_own(self, storage: Storage) -> bool:
        """Whether ``storage`` is the downloader's own archive (the same folder, by
        its real path, or the same bucket and prefix), whose rows are keys."""
        return self.storage.same_place(storage)

    def _wanted(self, stream: str, instant: datetime) -> _Wanted:
        """The picture at an aware UTC ``instant``, with its ISO-form URLs."""
        wall = utc_to_wall_clock(instant, self.source_timezone)
        return _Wanted(
            wall,
            instant,
            self._url(stream, wall, thumbnail=False),
            self._url(stream, wall, thumbnail=True),
        )

    def _download(
        self,
        stream: str,
        wanted: list[_Wanted],
        storage: Storage,
        progress: ProgressCallback | None,
        *,
        page_failures: Sequence[tuple[str, str]] = (),
    ) -> DownloadReport:
        """Fetch, store and record ``wanted``; the run row is closed whatever happens."""
        started = time.monotonic()
        report = DownloadReport(requested=len(wanted), failed=list(page_failures))
        zone = self.source_timezone
        staging = {
            storage.staging_path(
                picture_key(self.terminal, stream, w.timestamp, source_timezone=zone)
            ).parent
            for w in wanted
        }
        for folder in staging:  # the day folders, or a bucket's staging folder
            remove_stale_parts(folder)
        stored = self._stored(storage, stream, wanted)
        report.run_id = self._start_run(stream, len(wanted))
        # Rows name the archive's files by key; another folder's by full location,
        # so they never pose as the archive's (nor lend it their hashes).
        own = self._is_own(storage)
        known = self._known(stream, wanted) if own else {}
        pending: list[dict[str, Any]] = []
        interrupted = True
        try:
            for done, outcome in enumerate(
                self._fetch_all(storage, stored, stream, wanted, known), start=1
            ):
                self._count(report, outcome)
                if outcome.key is not None:
                    pending.append(self._record(stream, outcome, report.run_id, own))
                if len(pending) >= self.batch_size:
                    self._persist(report, pending, own)
                    pending = []
                if progress is not None:
                    progress(outcome, done, len(wanted))
            interrupted = False
        finally:
            # Also when interrupted: the pictures already stored get their rows.
            self._persist(report, pending, own)
            report.seconds = time.monotonic() - started
            self._finish_run(report, interrupted=interrupted)
        logger.info(
            "%s %s: %d requested, %d downloaded, %d present, %d failed, %d db failures",
            self.terminal,
            stream,
            report.requested,
            report.downloaded,
            report.already_present,
            len(report.failed),
            report.db_failed,
        )
        return report

    def _stored(
        self, storage: Storage, stream: str, wanted: list[_Wanted]
    ) -> dict[str, int] | None:
        """The objects already stored in ``wanted``'s day folders, key -> size: one
        listing per day (on S3 one request for a day's 144 pictures, not one each).
        None when the storage cannot be listed: then each picture asks for itself."""
        prefixes = sorted(
            {day_prefix(self.terminal, stream, w.wall.date()) for w in wanted}
        )
        stored: dict[str, int] = {}
        try:
            for prefix in prefixes:
                stored.update(storage.list(prefix))
        except StorageError as exc:
            logger.warning("cannot list %s (%s): asking per picture", storage, exc)
            return None
        return stored

    def _known(self, stream: str, wanted: list[_Wanted]) -> Known:
        """The rows already stored of ``wanted``'s days (empty without a database)."""
        if not self.persist or not wanted:
            return {}
        local_days = {w.wall.date() for w in wanted}
        try:
            return days.stored_pictures(self.terminal, stream, local_days)
        except Exception as exc:
            logger.warning(
                "could not read the stored rows (%s): present files are hashed", exc
            )
            return {}

    def _fetch_all(
        self,
        storage: Storage,
        stored: dict[str, int] | None,
        stream: str,
        wanted: list[_Wanted],
        known: Known,
    ) -> Iterable[PictureOutcome]:
        """Outcomes as pictures finish, with at most ``2 * max_workers`` in flight (bounded memory).

        Once interrupted no picture is handed out; those in flight end at once
        (cancelled) or complete, and the complete ones are still yielded before
        :class:`Stopped` is raised.
        """
        todo = iter(wanted)
        cancelled = 0
        with ThreadPoolExecutor(
            self.max_workers, thread_name_prefix="draydog-fetch"
        ) as pool:
            in_flight: set[Future[PictureOutcome]] = set()
            try:
                while True:
                    for picture in todo:
                        if self.stopping.is_set():
                            break
                        in_flight.add(
                            pool.submit(
                                self._fetch_picture,
                                storage,
                                stored,
                                stream,
                                picture,
                                known,
                            )
                        )
                        if len(in_flight) >= 2 * self.max_workers:
                            break
                    if not in_flight:
                        break
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        try:
                            yield future.result()
                        except Cancelled:
                            cancelled += 1
            finally:
                for future in in_flight:
                    future.cancel()
        if self.stopping.is_set():
            raise Stopped(
                f"interrupted: {cancelled} picture(s) abandoned in flight, "
                f"{len(wanted)} wanted"
            )

    def _fetch_picture(
        self,
        storage: Storage,
        stored: dict[str, int] | None,
        stream: str,
        picture: _Wanted,
        known: Known,
    ) -> PictureOutcome:
        try:
            return self._fetch_or_fall_back(storage, stored, stream, picture, known)
        except Cancelled:
            raise
        except Exception as exc:
            logger.exception("unexpected error on %s", picture.full_url)
            return PictureOutcome(
                picture.wall,
                "failed",
                picture.full_url,
                reason=f"{type(exc).__name__}: {exc}",
                timestamp=picture.timestamp,
            )

    def _fetch_or_fall_back(
        self,
        storage: Storage,
        stored: dict[str, int] | None,
        stream: str,
        picture: _Wanted,
        known: Known,
    ) -> PictureOutcome:
        wall, full_url, thumb_url = picture.wall, picture.full_url, picture.thumb_url
        failed = partial(PictureOutcome, wall, "failed", timestamp=picture.timestamp)
        try:
            full = self._target(storage, stored, stream, picture.timestamp, False)
            return self._obtain(full_url, full, wall, False, picture.timestamp, known)
        except Absent as exc:
            logger.info(
                "no full-size picture at %s (%s): trying the thumbnail",
                full_url,
                exc.reason,
            )
        except Cancelled:
            raise
        except FetchError as exc:
            return failed(full_url, reason=exc.reason)
        try:
            thumb = self._target(storage, stored, stream, picture.timestamp, True)
            return self._obtain(thumb_url, thumb, wall, True, picture.timestamp, known)
        except Absent as exc:
            code = "404" if isinstance(exc, NotFound) else "403"
            return failed(full_url, reason=f"{code}: no picture, no thumbnail")
        except Cancelled:
            raise
        except FetchError as exc:
            return failed(thumb_url, reason=f"thumbnail: {exc.reason}")

    def _target(
        self,
        storage: Storage,
        stored: dict[str, int] | None,
        stream: str,
        instant: datetime,
        thumbnail: bool,
    ) -> _Target:
        """Where the picture at ``instant`` is kept in the archive, and whether it is.

        A first-occurrence repeated-hour picture stored before names carried offsets
        keeps its old key, so a re-run finds it present instead of storing it twice.
        A storage that could not be listed is asked (a StorageError fails the picture).
        """
        zone = self.source_timezone
        key = picture_key(
            self.terminal, stream, instant, thumbnail, source_timezone=zone
        )
        legacy = legacy_picture_key(
            self.terminal, stream, instant, thumbnail, source_timezone=zone
        )
        candidates = [key] if legacy is None else [key, legacy]
        for candidate in candidates:
            try:
                size = (
                    stored.get(candidate)
                    if stored is not None
                    else storage.stat(candidate)
                )
            except StorageError as exc:
                raise FetchError(f"storage: {exc}") from exc
            if size is not None:
                return _Target(storage, candidate, size)
        return _Target(storage, key, None)

    def _url(self, stream: str, wall: datetime, *, thumbnail: bool) -> str:
        return build_image_url(
            self.cdn_url,
            self.terminal,
            stream,
            wall,
            thumbnail,
            source_timezone=self.source_timezone,
        )

    def _count(self, report: DownloadReport, outcome: PictureOutcome) -> None:
        if outcome.status == "failed":
            when = (
                outcome.wall_time.isoformat()
                if outcome.timestamp is None
                else timestamp_text(outcome.timestamp, self.source_timezone)
            )
            report.failed.append((when, outcome.reason or "failed"))
            return
        assert outcome.location is not None
        report.files.append(outcome.location)
        if outcome.status == "downloaded":
            report.downloaded += 1
            report.bytes += outcome.size
            report.thumbnails += int(outcome.is_thumbnail)
        else:
            report.already_present += 1

    def _record(
        self, stream: str, outcome: PictureOutcome, run_id: int | None, own: bool
    ) -> dict[str, Any]:
        assert outcome.key is not None and outcome.location is not None
        return {
            "filepath": outcome.key if own else outcome.location,
            "camera_id": stream,
            "terminal": self.terminal,
            "timestamp": outcome.timestamp,
            "file_size": outcome.size,
            "sha256": outcome.sha256,
            "source_url": outcome.url,
            "is_thumbnail": outcome.is_thumbnail,
            "run_id": run_id,
            "local_day": outcome.wall_time.date(),
        }

    # --- the database, which never fails a download -----------------------------------

    def _persist(
        self, report: DownloadReport, records: list[dict[str, Any]], own: bool
    ) -> None:
        """Write the rows: ``filepath`` is the picture's key in the archive (``own``),
        else its full location in the other folder or bucket."""
        if not self.persist or not records:
            return
        root = self.storage.root if isinstance(self.storage, LocalStorage) else None
        result = queries.insert_images(records, chunk_size=self.batch_size, root=root)
        report.db_inserted += result.inserted
        report.db_duplicates += result.duplicates
        report.db_failed += len(result.failed)
        report.db_refused += result.refused
        self.db_failures += len(result.failed)
        if own and result.duplicates:
            self._take_over_rows(report, records, result.ids)

    def _take_over_rows(
        self, report: DownloadReport, records: list[dict[str, Any]], ids: dict[str, int]
    ) -> None:
        """Point at the archive's file the rows of its pictures that name a file
        outside any archive (another folder's path, a bucket's URL).

        One row per picture (its identity is unique), so the archive's row was
        skipped as a duplicate of the other folder's: left so, the archive would
        hold files without rows and its day would look whole through a copy it
        does not own. Rows naming another key are left alone. Counted as inserted.
        """
        by_id = {ids[r["filepath"]]: r for r in records if r["filepath"] in ids}
        try:
            moved = with_db_retries(
                partial(queries.take_over_rows, by_id), "taking over foreign rows"
            )
        except Exception as exc:
            # Which of them name another folder is unknown: all count as failed
            # (the day is not done, and its rerun takes them over).
            failed = len(by_id)
            report.db_failed += failed
            self.db_failures += failed
            logger.error("could not take over the rows of other folders: %s", exc)
            return
        if moved:
            logger.info("%d rows of other folders now name the archive's files", moved)
            report.db_inserted += moved
            report.db_duplicates -= moved

    def _record_day(
        self,
        stream: str,
        day: date,
        status: str,
        report: DownloadReport,
        listed: int,
    ) -> None:
        if not self.persist:
            return
        thumbnails = sum(
            1
            for path in report.files
            if (picture := read_picture_path(Path(path))) and picture.is_thumbnail
        )
        try:
            days.record_day(
                self.terminal,
                stream,
                day,
                status=status,
                listed=listed,
                stored=len(report.files),
                failed=len(report.failed),
                thumbnails=thumbnails,
            )
        except Exception as exc:
            self.db_failures += 1
            report.db_failed += 1
            logger.error(
                "could not record %s %s %s as %s: %s",
                self.terminal,
                stream,
                day,
                status,
                exc,
            )

    def _start_run(self, stream: str, requested: int) -> int | None:
        if not self.persist:
            return None
        try:
            return queries.start_run(self.terminal, stream, requested).id
        except Exception as exc:
            logger.error("could not record the start of the run: %s", exc)
            return None

    def _finish_run(self, report: DownloadReport, *, interrupted: bool) -> None:
        if report.run_id is None:
            return
        if interrupted:
            status = "interrupted"
        elif report.ok:
            status = "ok"
        else:
            status = "db_failed" if not report.failed else "partial"
        try:
            queries.finish_run(
                report.run_id,
                status=status,
                requested=report.requested,
                downloaded=report.downloaded,
                already_present=report.already_present,
                failed=len(report.failed),
                bytes=report.bytes,
                db_inserted=report.db_inserted,
                db_duplicates=report.db_duplicates,
                db_failed=report.db_failed,
            )
        except Exception as exc:
            logger.error("could not record the end of run %s: %s", report.run_id, exc)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not low <= value <= high
    ):
        raise ValueError(
            f"{name} must be an integer from {low} to {high}, not {value!r}"
        )


def _base_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL, not {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{name} must not carry credentials")
    return url.rstrip("/")


def _storage_of(archive: str | Path | Storage) -> Storage:
    """The archive as a Storage: a folder's path or an ``s3://`` URL (ValueError if malformed)."""
    return archive if isinstance(archive, Storage) else open_storage(archive)
