"""The rows retention removes: pictures of days before a cutoff, and those days' records.

Reads go by ``id`` in pages (a keyset), so a removal that stops half-way and runs
again picks up where the rows still are; deletes are by ``id``, one transaction
per page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import delete, func, select

from modules.database.models import (
    THUMBNAIL,
    ArchiveDay,
    Image,
    read_scope,
    session_scope,
    with_db_retries,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OldDay:
    """Pictures of one terminal, stream and day before the cutoff."""

    terminal: str
    stream: str
    day: date
    pictures: int
    bytes: int


def _old(cutoff: date, thumbnails_only: bool) -> list[Any]:
    conditions: list[Any] = [Image.local_day < cutoff]
    if thumbnails_only:
        conditions.append(THUMBNAIL)
    return conditions


def old_days(cutoff: date, *, thumbnails_only: bool = False) -> list[OldDay]:
    """The days before ``cutoff`` that have pictures (thumbnails only, if asked), counted."""
    query = (
        select(
            Image.terminal,
            Image.camera_id,
            Image.local_day,
            func.count(),
            func.sum(Image.file_size),
        )
        .where(*_old(cutoff, thumbnails_only))  # local_day < cutoff: never NULL
        .group_by(Image.terminal, Image.camera_id, Image.local_day)
        .order_by(Image.terminal, Image.camera_id, Image.local_day)
    )
    with read_scope() as session:
        return [
            OldDay(terminal, stream, cast(date, day), int(n), int(size or 0))
            for terminal, stream, day, n, size in session.execute(query)
        ]


def old_pictures(
    cutoff: date, *, thumbnails_only: bool, after_id: int, limit: int
) -> list[tuple[int, str]]:
    """The next page of (id, filepath) before ``cutoff``, by id after ``after_id``."""
    query = (
        select(Image.id, Image.filepath)
        .where(*_old(cutoff, thumbnails_only), Image.id > after_id)
        .order_by(Image.id)
        .limit(limit)
    )
    with read_scope() as session:
        return [(int(i), path) for i, path in session.execute(query)]


def delete_images(ids: Sequence[int]) -> int:
    """Delete the rows with these ids in one transaction; how many there were."""
    if not ids:
        return 0

    def remove() -> int:
        with session_scope() as session:
            result = session.execute(
                delete(Image).where(Image.id.in_(list(ids))),
                execution_options={"synchronize_session": False},
            )
            return int(getattr(result, "rowcount", 0) or 0)

    return with_db_retries(remove, f"deleting {len(ids)} rows")


def forget_days(cutoff: date) -> int:
    """Delete the day records before ``cutoff``; how many there were."""

    def remove() -> int:
        with session_scope() as session:
            result = session.execute(
                delete(ArchiveDay).where(ArchiveDay.day < cutoff),
                execution_options={"synchronize_session": False},
            )
            return int(getattr(result, "rowcount", 0) or 0)

    return with_db_retries(remove, f"forgetting the days before {cutoff}")


def days_recorded_before(cutoff: date) -> int:
    """How many day records are older than ``cutoff``."""
    query = select(func.count()).select_from(ArchiveDay).where(ArchiveDay.day < cutoff)
    with read_scope() as session:
        return int(session.execute(query).scalar_one())
