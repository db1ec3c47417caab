"""Bring the database back in line with an archive folder: the recovery after the database was down.

The file names carry the terminal, stream and time; sizes and hashes come from the
files. Only paths without a row are hashed and inserted, so a re-run is cheap and
idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from modules.database import queries
from modules.downloader.archive import ArchivedPicture, walk_archive
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

    ``cdn_url``, when given, fills ``source_url`` with the URL the picture came from.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise ValueError(f"not an archive folder: {folder}")
    report = ReindexReport()
    batch: list[ArchivedPicture] = []
    for picture in walk_archive(folder):
        report.scanned += 1
        batch.append(picture)
        if len(batch) >= batch_size:
            _reindex_batch(batch, report, source_timezone, cdn_url, batch_size)
            batch = []
    _reindex_batch(batch, report, source_timezone, cdn_url, batch_size)
    logger.info(
        "reindex of %s: %d pictures, %d without a row, %d inserted, %d failed",
        folder,
        report.scanned,
        report.missing,
        report.inserted,
        len(report.failed),
    )
    return report


def _reindex_batch(
    batch: list[ArchivedPicture],
    report: ReindexReport,
    source_timezone: str,
    cdn_url: str | None,
    batch_size: int,
) -> None:
    if not batch:
        return
    paths = {str(picture.path.resolve()): picture for picture in batch}
    known = queries.known_filepaths(list(paths))
    records = []
    for filepath, picture in paths.items():
        if filepath in known:
            continue
        try:
            size = picture.path.stat().st_size
            digest = sha256_of(picture.path)
        except OSError as exc:
            report.failed.append((filepath, f"cannot read: {exc.strerror or exc}"))
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
        )
    report.missing += len(records)
    result = queries.insert_images(records, chunk_size=batch_size)
    report.inserted += result.inserted
    report.duplicates += result.duplicates
    report.failed.extend(result.failed)
