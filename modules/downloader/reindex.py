"""Bring the database back in line with an archive folder: the recovery after the database was down.

The file names carry the terminal, stream and time; sizes and hashes come from the
files. Rows are matched by key (the path relative to the archive root), so an
archive moved or mounted elsewhere is recognised as already indexed. Each day
folder costs one listing and one query for its keys: a file with a row is neither
stat'ed, parsed nor hashed, so a re-run over an indexed archive is about as fast
as walking it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from modules.database import queries
from modules.downloader.archive import (
    ArchivedPicture,
    DayFolder,
    day_folders,
    read_picture_path,
)
from modules.downloader.fetch import sha256_of
from modules.site.urls import DEFAULT_TIMEZONE, build_image_url

logger = logging.getLogger(__name__)


@dataclass
class ReindexReport:
    """What a reindex found and wrote."""

    scanned: int = 0
    missing: int = 0
    inserted: int = 0
    duplicates: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def reindex_archive(
    root: str | Path,
    *,
    source_timezone: str = DEFAULT_TIMEZONE,
    cdn_url: str | None = None,
    batch_size: int = 500,
) -> ReindexReport:
    """Insert a row for every picture under ``root`` that has none, in chunks of ``batch_size``.

    ``root`` is the archive root: rows are written with keys relative to it.
    ``cdn_url``, when given, fills ``source_url`` with the URL the picture came from.
    """
    folder = Path(os.path.abspath(root))  # absolute: its pictures' paths become keys
    if not folder.is_dir():
        raise ValueError(f"not an archive folder: {folder}")
    report = ReindexReport()
    batch: list[ArchivedPicture] = []
    for day in day_folders(folder):
        for picture in _unknown_pictures(day, report):
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


def _unknown_pictures(day: DayFolder, report: ReindexReport) -> list[ArchivedPicture]:
    """The day folder's pictures without a row (by key), in name order."""
    prefix = f"{day.terminal}/{day.stream}/{day.path.name}/"
    known = queries.day_filepaths(day.terminal, day.stream, day.day)
    with os.scandir(day.path) as entries:
        names = [entry.name for entry in entries if entry.name.endswith(".jpg")]
    new = sorted(name for name in names if prefix + name not in known)
    unknown = []
    for name in new:
        picture = read_picture_path(day.path / name)
        if picture is None:
            logger.debug("skipping %s: not a picture of the archive layout", name)
            continue
        unknown.append(picture)
    report.scanned += len(names) - len(new) + len(unknown)
    return unknown


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
        records.append(
            {
                "filepath": str(picture.path),
                "camera_id": picture.stream,
                "terminal": picture.terminal,
                "timestamp": picture.timestamp(source_timezone),
                "local_day": picture.wall_time.date(),
                "file_size": size,
                "sha256": digest,
                "source_url": source_url,
                "is_thumbnail": picture.is_thumbnail,
            }
        )
    report.missing += len(records)
    result = queries.insert_images(records, chunk_size=len(batch), root=root)
    report.inserted += result.inserted
    report.duplicates += result.duplicates
    report.failed.extend(result.failed)
