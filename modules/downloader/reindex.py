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
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
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

DAYS_PER_QUERY = 32
"""Day folders whose keys one query fetches: few queries, a bounded set in memory."""


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
