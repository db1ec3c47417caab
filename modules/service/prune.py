"""Retention (``draydog prune``): pictures of days older than N days go, files and rows together.

Order makes it safe to stop at any point and run again: for each page of rows the
files are deleted first, then the rows. A crash between the two leaves rows whose
files are gone, which the next run deletes (a file already gone is no error); the
other order could leave files no row points to, which no later run would find
by its rows. The archive's day folders before the cutoff are emptied of pictures
too (files whose rows were never written), then the days' records go. The archive
is a folder or a bucket: pictures are found and deleted through its Storage, a
page at a time (``Storage.remove_many``: on S3, DeleteObjects of up to 1,000 keys
rather than a HEAD and a DELETE per picture).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from modules.database import retention
from modules.database.keys import path_for
from modules.database.retention import OldDay
from modules.downloader.archive import (
    day_picture_keys,
    key_of_stored,
    read_picture_path,
    stored_days,
)
from modules.site.urls import DEFAULT_TIMEZONE, terminal_today
from modules.storage import LocalStorage, Storage

logger = logging.getLogger(__name__)

PAGE = 500


@dataclass
class PrunePlan:
    """What a prune would remove: the pictures with rows, and files without one."""

    cutoff: date
    """Days before this one go."""
    thumbnails_only: bool
    days: list[OldDay] = field(default_factory=list)
    files_without_rows: list[str] = field(default_factory=list)
    """Their locations: full paths, or ``s3://`` URLs."""
    day_records: int = 0

    @property
    def pictures(self) -> int:
        return sum(day.pictures for day in self.days)

    @property
    def bytes(self) -> int:
        return sum(day.bytes for day in self.days)

    @property
    def empty(self) -> bool:
        return not (self.days or self.files_without_rows or self.day_records)


@dataclass
class PruneReport:
    """What a prune removed, and the files it could not."""

    files_removed: int = 0
    files_already_gone: int = 0
    rows_removed: int = 0
    day_records_removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def cutoff_day(
    older_than_days: int, today: date | None = None, zone: str = DEFAULT_TIMEZONE
) -> date:
    """The first day kept: ``older_than_days`` before today at the terminal."""
    if older_than_days < 0:
        raise ValueError(f"--older-than must not be negative, not {older_than_days}")
    try:
        return (today or terminal_today(zone)) - timedelta(days=older_than_days)
    except OverflowError as exc:
        raise ValueError(f"--older-than {older_than_days} is before year 1") from exc


def plan_prune(
    cutoff: date,
    *,
    thumbnails_only: bool = False,
    archive: Path | Storage | None = None,
) -> PrunePlan:
    """What :func:`prune` would remove before ``cutoff`` (nothing is touched)."""
    plan = PrunePlan(cutoff, thumbnails_only)
    plan.days = retention.old_days(cutoff, thumbnails_only=thumbnails_only)
    if not thumbnails_only:
        plan.day_records = retention.days_recorded_before(cutoff)
    storage = _storage(archive)
    if storage is not None:
        known = _known_keys(storage, cutoff, thumbnails_only)
        plan.files_without_rows = [
            storage.location(key)
            for key in _old_files(storage, cutoff, thumbnails_only)
            if key not in known
        ]
    return plan


def _storage(archive: Path | Storage | None) -> Storage | None:
    if archive is None or isinstance(archive, Storage):
        return archive
    return LocalStorage(archive)


def prune(
    cutoff: date,
    *,
    thumbnails_only: bool = False,
    archive: Path | Storage | None = None,
) -> PruneReport:
    """Remove the pictures of the days before ``cutoff``: files, then their rows.

    ``thumbnails_only`` removes only pictures kept as thumbnails, and keeps the days'
    records (what the site listed). ``archive`` (a folder or any Storage) is where
    the rows' keys are (without it, a row with a key stays, reported as failed), and
    its old day folders are emptied of pictures that have no row.
    """
    storage = _storage(archive)
    report = PruneReport()
    after = 0
    while True:
        page = retention.old_pictures(
            cutoff, thumbnails_only=thumbnails_only, after_id=after, limit=PAGE
        )
        if not page:
            break
        after = page[-1][0]
        gone = _remove_page(page, storage, report)
        report.rows_removed += retention.delete_images(gone)
    if storage is not None:
        kept = _known_keys(storage, cutoff, thumbnails_only)  # rows whose file stays
        orphans = [
            key
            for key in _old_files(storage, cutoff, thumbnails_only)
            if key not in kept
        ]
        for start in range(0, len(orphans), PAGE):
            _remove_keys(storage, orphans[start : start + PAGE], report)
        if isinstance(storage, LocalStorage):
            _remove_empty_day_folders(storage, cutoff)
    if not thumbnails_only:
        report.day_records_removed = retention.forget_days(cutoff)
    logger.info(
        "prune before %s: %d files removed (%d already gone), %d rows, %d day records, "
        "%d failures",
        cutoff,
        report.files_removed,
        report.files_already_gone,
        report.rows_removed,
        report.day_records_removed,
        len(report.failed),
    )
    return report


def _remove_page(
    page: list[tuple[int, str]], storage: Storage | None, report: PruneReport
) -> list[int]:
    """Delete a page of rows' pictures; the ids of the rows whose pictures are gone
    (now or before). Keys go to the storage in one batch (on S3, DeleteObjects)."""
    keyed: dict[int, str] = {}
    gone: list[int] = []
    for image_id, stored in page:
        key = key_of_stored(storage, stored) if storage is not None else None
        if key is not None:
            keyed[image_id] = key
        elif _remove_unkeyed(stored, report):
            gone.append(image_id)
    if storage is not None and keyed:
        removed = _remove_keys(storage, list(keyed.values()), report)
        gone.extend(image_id for image_id, key in keyed.items() if key in removed)
    return gone


def _remove_unkeyed(stored: str, report: PruneReport) -> bool:
    """Delete a row's file outside any archive, by its full path (a key without an
    archive names no file: it stays, reported)."""
    if not os.path.isabs(stored):
        why = (
            "a picture of another store: not removed"
            if "://" in stored
            else "a key: its archive root is needed (--dir) to find it, not removed"
        )
        report.failed.append((stored, why))
        return False
    return _remove(path_for(stored, None), report)


def _remove_keys(storage: Storage, keys: list[str], report: PruneReport) -> set[str]:
    """Delete stored pictures in one batch; the keys now gone (removed or gone before).

    A key the storage could not remove is reported and stays, and so does its row.
    """
    removal = storage.remove_many(keys)
    report.files_removed += len(removal.removed)
    report.files_already_gone += len(removal.already_gone)
    for key in keys:
        reason = removal.failed.get(key)
        if reason is not None:
            report.failed.append((storage.location(key), reason))
            logger.warning("cannot remove %s: %s", storage.location(key), reason)
    return set(removal.removed) | set(removal.already_gone)


def _remove(path: Path, report: PruneReport) -> bool:
    """Delete a file; True when it is gone (now or before), False when it stays."""
    try:
        path.unlink()
    except FileNotFoundError:
        report.files_already_gone += 1
        return True
    except OSError as exc:
        report.failed.append((str(path), exc.strerror or str(exc)))
        logger.warning("cannot remove %s: %s", path, exc)
        return False
    report.files_removed += 1
    return True


def _old_files(storage: Storage, cutoff: date, thumbnails_only: bool) -> Iterator[str]:
    """The keys of the old day folders' pictures (only thumbnails, if asked)."""
    for folder in stored_days(storage):
        if folder.day >= cutoff:
            continue
        for key in day_picture_keys(storage, folder):
            picture = read_picture_path(Path(key))
            if not thumbnails_only or (picture is not None and picture.is_thumbnail):
                yield key


def _known_keys(storage: Storage, cutoff: date, thumbnails_only: bool) -> set[str]:
    """The keys in ``storage`` of the rows before ``cutoff`` (absolute paths under a folder too)."""
    known: set[str] = set()
    after = 0
    while page := retention.old_pictures(
        cutoff, thumbnails_only=thumbnails_only, after_id=after, limit=PAGE
    ):
        known.update(
            key
            for _, stored in page
            if (key := key_of_stored(storage, stored)) is not None
        )
        after = page[-1][0]
    return known


def _remove_empty_day_folders(storage: LocalStorage, cutoff: date) -> None:
    """A folder's old day folders, emptied: gone (a bucket has no empty folders)."""
    for folder in list(stored_days(storage)):
        if folder.day < cutoff:
            try:
                os.rmdir(storage.root / folder.prefix)
            except OSError:
                continue  # not empty: a file that is no picture of the layout stays
