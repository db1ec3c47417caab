"""Bring the database back in line with an archive: the recovery after the database was down.

The file names carry the terminal, stream and time; sizes and hashes come from the
files. Rows are matched by key (the path relative to the archive root), so an
archive moved or mounted elsewhere is recognised as already indexed.

A folder has a fast path: each day folder costs one listing and one query for its
keys, and a file with a row is neither stat'ed, parsed nor hashed, so a re-run over
an indexed archive is about as fast as walking it. Any other storage (S3) is read
by listing each stream's objects with their sizes (a thousand keys a request),
compared with the rows' keys a run of day folders at a time; only the objects
without a row are read, to hash them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from modules.database import queries
from modules.downloader.archive import (
    ArchivedPicture,
    DayFolder,
    day_folders,
    read_picture_path,
)
from modules.downloader.fetch import sha256_of
from modules.site.urls import DEFAULT_TIMEZONE, build_image_url, validate_name
from modules.storage import LocalStorage, Storage, StorageError, StoredObject
from modules.storage import open_storage

logger = logging.getLogger(__name__)

DAYS_PER_QUERY = 32
"""Day folders whose keys one query fetches: few queries, a bounded set in memory."""
HASH_WORKERS = 8
"""Objects of a remote storage read at once to hash them (each read waits on the network)."""


@dataclass
class ReindexReport:
    """What a reindex found and wrote."""

    scanned: int = 0
    missing: int = 0
    inserted: int = 0
    duplicates: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def reindex_archive(
    root: str | Path | Storage,
    *,
    source_timezone: str = DEFAULT_TIMEZONE,
    cdn_url: str | None = None,
    batch_size: int = 500,
) -> ReindexReport:
    """Insert a row for every picture of the archive ``root`` that has none, in chunks of ``batch_size``.

    ``root`` is the archive: a folder, an ``s3://bucket/prefix`` URL or a Storage;
    rows are written with keys relative to it. ``cdn_url``, when given, fills
    ``source_url`` with the URL the picture came from. A folder that does not exist
    is a ValueError; a storage that cannot be listed a StorageError.
    """
    storage = root if isinstance(root, Storage) else open_storage(root)
    if not isinstance(storage, LocalStorage):
        return _reindex_storage(storage, source_timezone, cdn_url, batch_size)
    folder = storage.root  # absolute: its pictures' paths become keys
    if not folder.is_dir():
        raise ValueError(f"not an archive folder: {folder}")
    report = ReindexReport()
    batch: list[ArchivedPicture] = []
    for days, known in _days_with_known_keys(folder):
        for day in days:
            for picture in _unknown_pictures(day, known, report):
                batch.append(picture)
                if len(batch) >= batch_size:
                    _reindex_batch(batch, report, folder, source_timezone, cdn_url)
                    batch = []
    _reindex_batch(batch, report, folder, source_timezone, cdn_url)
    logger.info(
        "reindex of %s: %d pictures, %d without a row, %d inserted, %d failed",
        folder,
        report.scanned,
        report.missing,
        report.inserted,
        len(report.failed),
    )
    return report


def _days_with_known_keys(
    root: Path,
) -> Iterator[tuple[list[DayFolder], set[str]]]:
    """The day folders, a stream's run of up to ``DAYS_PER_QUERY`` at a time, each run
    with the stored keys of its days: one query per run, the next run's fetched in a
    thread while this run's folders are listed (both wait outside the GIL)."""
    runs = _runs(day_folders(root))
    with ThreadPoolExecutor(1, thread_name_prefix="draydog-reindex") as pool:
        pending = [pool.submit(_known, run) for run in runs[:1]]
        for index, run in enumerate(runs):
            if index + 1 < len(runs):
                pending.append(pool.submit(_known, runs[index + 1]))
            yield run, pending.pop(0).result()


def _runs(days: Iterable[DayFolder]) -> list[list[DayFolder]]:
    runs: list[list[DayFolder]] = []
    for day in days:
        run = runs[-1] if runs else None
        if (
            run is None
            or (day.terminal, day.stream) != (run[0].terminal, run[0].stream)
            or len(run) == DAYS_PER_QUERY
        ):
            runs.append([day])
        else:
            run.append(day)
    return runs


def _known(run: list[DayFolder]) -> set[str]:
    first = run[0]
    return queries.folder_keys(first.terminal, first.stream, first.day, run[-1].day)


def _unknown_pictures(
    day: DayFolder, known: set[str], report: ReindexReport
) -> list[ArchivedPicture]:
    """The day folder's pictures whose key has no row, in name order."""
    prefix = f"{day.terminal}/{day.stream}/{day.path.name}/"
    listed = set(map(prefix.__add__, os.listdir(day.path)))  # in C: no loop per name
    missing = listed - known
    new = sorted(key for key in missing if key.endswith(".jpg"))
    unknown = []
    for key in new:
        picture = read_picture_path(day.path / key[len(prefix) :])
        if picture is None:
            logger.debug("skipping %s: not a picture of the archive layout", key)
            continue
        unknown.append(picture)
    report.scanned += len(listed) - len(missing) + len(unknown)
    return unknown


def _reindex_storage(
    storage: Storage, source_timezone: str, cdn_url: str | None, batch_size: int
) -> ReindexReport:
    """Reindex any storage by listing: stream by stream, a run of day folders at a time."""
    storage.check()
    report = ReindexReport()
    batch: list[tuple[ArchivedPicture, StoredObject]] = []
    with ThreadPoolExecutor(HASH_WORKERS, thread_name_prefix="draydog-hash") as pool:
        for terminal, stream in _stored_streams(storage):
            objects = storage.list(f"{terminal}/{stream}/")
            for first, last, run in _object_runs(objects):
                known = queries.folder_keys(terminal, stream, first, last)
                for stored in run:
                    if stored.key in known:
                        report.scanned += 1
                        continue
                    picture = read_picture_path(Path(stored.key))
                    if picture is None or not stored.key.endswith(".jpg"):
                        logger.debug("skipping %s: not a picture of the layout", stored)
                        continue
                    report.scanned += 1
                    batch.append((picture, stored))
                    if len(batch) >= batch_size:
                        _reindex_objects(
                            storage, pool, batch, report, source_timezone, cdn_url
                        )
                        batch = []
        _reindex_objects(storage, pool, batch, report, source_timezone, cdn_url)
    logger.info(
        "reindex of %s: %d pictures, %d without a row, %d inserted, %d failed",
        storage,
        report.scanned,
        report.missing,
        report.inserted,
        len(report.failed),
    )
    return report


def _stored_streams(storage: Storage) -> Iterator[tuple[str, str]]:
    """The (terminal, stream) folders of a storage, by listing folders only."""
    for terminal in storage.folders(""):
        for stream in storage.folders(f"{terminal}/"):
            try:
                validate_name(terminal, "terminal")
                validate_name(stream, "stream")
            except ValueError:
                continue
            yield terminal, stream


def _object_runs(
    objects: Iterable[StoredObject],
) -> Iterator[tuple[date, date, list[StoredObject]]]:
    """A stream's objects (in key order) in runs of up to ``DAYS_PER_QUERY`` day
    folders, each with its first and last day; objects outside a day folder are skipped.
    """
    run: list[StoredObject] = []
    first = last = None
    days = 0
    for stored in objects:
        parts = stored.key.split("/")
        try:
            day = date.fromisoformat(parts[2]) if len(parts) == 4 else None
        except ValueError:
            day = None
        if day is None:
            continue
        if day != last:
            if days == DAYS_PER_QUERY and first is not None and last is not None:
                yield first, last, run
                run, first, days = [], None, 0
            first = first or day
            last = day
            days += 1
        run.append(stored)
    if first is not None and last is not None:
        yield first, last, run


def _reindex_objects(
    storage: Storage,
    pool: ThreadPoolExecutor,
    batch: list[tuple[ArchivedPicture, StoredObject]],
    report: ReindexReport,
    source_timezone: str,
    cdn_url: str | None,
) -> None:
    """Hash the objects (read a few at a time) and insert their rows by key."""
    if not batch:
        return
    records = []
    digests = pool.map(_digest_or_error(storage), [stored.key for _, stored in batch])
    for (picture, stored), digest in zip(batch, digests):
        if isinstance(digest, StorageError):
            report.failed.append((storage.location(stored.key), digest.reason))
            continue
        records.append(
            _record(picture, stored.key, stored.size, digest, source_timezone, cdn_url)
        )
    report.missing += len(records)
    result = queries.insert_images(records, chunk_size=len(batch))
    report.inserted += result.inserted
    report.duplicates += result.duplicates
    report.failed.extend(result.failed)


def _digest_or_error(storage: Storage) -> Callable[[str], str | StorageError]:
    def digest(key: str) -> str | StorageError:
        try:
            return storage.sha256(key)
        except StorageError as exc:
            return exc

    return digest


def _record(
    picture: ArchivedPicture,
    filepath: str,
    size: int,
    digest: str,
    source_timezone: str,
    cdn_url: str | None,
) -> dict[str, object]:
    """The row of an archived picture."""
    source_url = None
    if cdn_url is not None:
        source_url = build_image_url(
            cdn_url,
            picture.terminal,
            picture.stream,
            picture.wall_time,
            picture.is_thumbnail,
            source_timezone=source_timezone,
        )
    return {
        "filepath": filepath,
        "camera_id": picture.stream,
        "terminal": picture.terminal,
        "timestamp": picture.timestamp(source_timezone),
        "local_day": picture.wall_time.date(),
        "file_size": size,
        "sha256": digest,
        "source_url": source_url,
        "is_thumbnail": picture.is_thumbnail,
    }


def _reindex_batch(
    batch: list[ArchivedPicture],
    report: ReindexReport,
    root: Path,
    source_timezone: str,
    cdn_url: str | None,
) -> None:
    """Hash and insert the pictures; their paths become keys under ``root`` at the database edge."""
    if not batch:
        return
    records = []
    for picture in batch:
        try:
            size = picture.path.stat().st_size
            digest = sha256_of(picture.path)
        except OSError as exc:
            report.failed.append(
                (str(picture.path), f"cannot read: {exc.strerror or exc}")
            )
            continue
        records.append(
            _record(
                picture,
                str(picture.path),
                size,
                digest,
                source_timezone,
                cdn_url,
            )
        )
    report.missing += len(records)
    result = queries.insert_images(records, chunk_size=len(batch), root=root)
    report.inserted += result.inserted
    report.duplicates += result.duplicates
    report.failed.extend(result.failed)
