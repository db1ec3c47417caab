"""Writes and reads of the archive's metadata.

Writes are idempotent on ``filepath`` and on a picture's identity (terminal, stream,
instant, thumbnail or not): ``INSERT ... ON CONFLICT DO NOTHING`` skips a row that
repeats either, never raises for it and never aborts an outer transaction (which a
failed statement would do on PostgreSQL). A path under the archive root is stored
as its key (see :mod:`modules.database.keys`). Batches go in chunks, each its own transaction or
savepoint, so a failing chunk is rolled back alone; a chunk the database refuses for
its records is split until the bad records fail alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, TypeVar, cast, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    Insert,
    Select,
    Table,
    func,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from modules.database.coverage import daily_totals
from modules.database.keys import ArchiveRoot, is_key, path_for, stored_form
from modules.database.models import (
    LOCAL_DAY_TIMEZONE,
    UNPROCESSED,
    DownloadRun,
    Image,
    archive_root,
    get_engine,
    is_transient_error,
    read_scope,
    session_scope,
    upsert_insert,
    utcnow,
    with_db_retries,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

IMAGES = cast(Table, Image.__table__)
MAX_CHUNK_SIZE = 10_000
_LOCAL_DAY_ZONE = ZoneInfo(LOCAL_DAY_TIMEZONE)
IMAGE_FIELDS = frozenset(
    {
        "filepath",
        "camera_id",
        "timestamp",
        "file_size",
        "terminal",
        "sha256",
        "source_url",
        "is_thumbnail",
        "run_id",
        "downloaded_at",
        "local_day",
    }
)


@dataclass
class BatchResult:
    """What a batch insert did: counts, the records that failed and the id of every stored path."""

    inserted: int = 0
    duplicates: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    """How many of ``failed`` the database refused for themselves (a constraint, a
    trigger, a value it cannot hold), alone in their piece: writing them again
    fails again, unlike the records of a chunk that failed whole (the database)."""


# --- writes -----------------------------------------------------------------


def insert_image(
    filepath: str,
    camera_id: str,
    timestamp: datetime | None = None,
    file_size: int | None = None,
    *,
    terminal: str = "apm",
    sha256: str | None = None,
    source_url: str | None = None,
    is_thumbnail: bool = False,
    run_id: int | None = None,
    local_day: date | None = None,
    session: Session | None = None,
    root: str | Path | None = None,
) -> int:
    """Store one picture's metadata and return its id; a known picture returns the existing id.

    Known: the same filepath, or the same identity (terminal, stream, instant and
    kind) under another path. A ``filepath`` under ``root`` (by default the
    configured :func:`~modules.database.models.archive_root`) is stored as its key.

    ``local_day`` is the capture's day at the terminal; by default the timestamp's
    day in :data:`LOCAL_DAY_TIMEZONE`.

    With ``session`` the row joins that session's transaction; without, it gets its
    own ``session_scope`` and transient errors are retried with backoff. What is left
    after the retries is raised: the caller decides.
    """
    record = _normalize_record(
        {
            "filepath": filepath,
            "camera_id": camera_id,
            "timestamp": timestamp,
            "file_size": file_size,
            "terminal": terminal,
            "sha256": sha256,
            "source_url": source_url,
            "is_thumbnail": is_thumbnail,
            "run_id": run_id,
            "local_day": local_day,
        },
        _root(root),
    )
    if session is not None:
        return _insert_one(session, record)

    def write() -> int:
        with session_scope() as own:
            return _insert_one(own, record)

    return with_db_retries(write, f"insert of {filepath}")


def _insert_one(session: Session, record: dict[str, Any]) -> int:
    stmt = _insert_ignoring_duplicates(session).values(record).returning(IMAGES.c.id)
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is not None:
        return int(new_id)
    existing = session.execute(
        select(Image.id).where(Image.filepath == record["filepath"])
    ).scalar_one_or_none()
    if existing is None:
        existing = session.execute(
            select(Image.id).where(*_same_identity(record))
        ).scalar_one()
    return int(existing)


def _same_identity(record: Mapping[str, Any]) -> list[Any]:
    return [
        Image.terminal == record["terminal"],
        Image.camera_id == record["camera_id"],
        Image.timestamp == record["timestamp"],
        Image.is_thumbnail.is_(record["is_thumbnail"]),
    ]


def _root(root: str | Path | None) -> ArchiveRoot | None:
    """The archive root paths are keyed under: ``root``, else the configured one."""
    chosen = root if root is not None else archive_root()
    return None if chosen is None else ArchiveRoot.of(chosen)


def insert_images(
    records: Iterable[Mapping[str, Any]],
    *,
    chunk_size: int = 500,
    session: Session | None = None,
    root: str | Path | None = None,
) -> BatchResult:
    """Store many pictures' metadata in chunks; duplicates are skipped and counted.

    A duplicate repeats a filepath or a picture's identity. Filepaths under ``root``
    (by default the configured archive root) are stored as keys; ``ids`` and
    ``failed`` name the records by the filepath they were given.

    Without ``session`` each chunk is one transaction; with it, one SAVEPOINT inside
    the caller's transaction. A failing chunk is rolled back alone; the other chunks
    carry on. Transient errors are retried; a chunk whose retries run out (the
    database down or locked) or that fails for the database's own state or the
    statement's (read-only, full, a missing table) lands whole in ``failed``, without
    more attempts. Any other error may be one record's doing (a constraint, a trigger,
    a value too long, a NUL byte on PostgreSQL), so the chunk is split in halves, each
    its own transaction or savepoint, recursively, until the bad records fail alone
    with their reasons and every other record is stored: one bad picture never sinks
    its neighbours. Every record is checked before anything is written. A record
    without ``local_day`` gets its timestamp's day in :data:`LOCAL_DAY_TIMEZONE`.
    """
    if (
        not isinstance(chunk_size, int)
        or isinstance(chunk_size, bool)
        or not 1 <= chunk_size <= MAX_CHUNK_SIZE
    ):
        raise ValueError(
            f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}, not {chunk_size!r}"
        )
    result = BatchResult()
    keyed = _root(root)
    unique: dict[str, dict[str, Any]] = {}
    given: dict[str, str] = {}
    for raw in records:
        record = _normalize_record(raw, keyed)
        if record["filepath"] in unique:
            result.duplicates += 1
        else:
            unique[record["filepath"]] = record
            given[record["filepath"]] = str(raw["filepath"])
    rows = list(unique.values())
    for start in range(0, len(rows), chunk_size):
        _store_piece(rows[start : start + chunk_size], session, given, result)
    return result


def _store_piece(
    piece: list[dict[str, Any]],
    session: Session | None,
    given: Mapping[str, str],
    result: BatchResult,
) -> None:
    """Write ``piece`` in one transaction or savepoint; split it while its records may be at fault.

    A piece of n records costs at most 2n - 1 attempts, and only for errors a record
    can cause: a database that is down fails the chunk once, after its retries.
    """
    try:
        inserted, ids = _write_chunk(piece, session)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {getattr(exc, 'orig', None) or exc}"
        if len(piece) > 1 and _may_be_a_record(exc):
            logger.info(
                "chunk of %d records refused (%s): splitting it", len(piece), reason
            )
            half = len(piece) // 2
            _store_piece(piece[:half], session, given, result)
            _store_piece(piece[half:], session, given, result)
            return
        if len(piece) == 1 and _refused_for_itself(exc):
            logger.error("record %s refused: %s", given[piece[0]["filepath"]], reason)
            result.refused += 1
        else:
            logger.error("chunk of %d records failed: %s", len(piece), reason)
        result.failed.extend((given[row["filepath"]], reason) for row in piece)
        return
    result.inserted += inserted
    result.duplicates += len(piece) - inserted
    result.ids.update({given[path]: row_id for path, row_id in ids.items()})


# PostgreSQL's SQLSTATE classes of errors no record causes, which every piece would
# meet again: transaction state, authorization, catalog, schema, the statement itself
# or a privilege (42), resources such as a full disk (53), object state, operator
# intervention, system, configuration and internal errors. (The transient ones are
# retried before this is asked.) Anything else may be a record's doing: data (22),
# integrity (23), a value over a limit (54: an index row too big), a trigger's error.
_NOT_A_RECORD_SQLSTATE_CLASSES = frozenset(
    {"08", "25", "28", "3D", "3F", "40", "42", "53", "55", "57", "58", "F0", "XX"}
)


def _may_be_a_record(exc: BaseException) -> bool:
    """Whether a failed chunk is worth splitting, because one of its records may be at fault.

    Not for a transient error whose retries ran out (a database down or locked), nor
    for one of the database's own state or of the statement: by PostgreSQL's SQLSTATE
    class, else (SQLite, errors raised by the driver) an OperationalError (read-only,
    disk full, no such table). Other errors, Python's own included (SQLite's driver
    raises OverflowError for an integer over 64 bits), may be one record's.
    """
    if is_transient_error(exc):
        return False
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] not in _NOT_A_RECORD_SQLSTATE_CLASSES
    return not isinstance(exc, OperationalError)


def take_over_rows(records_by_id: Mapping[int, Mapping[str, Any]]) -> int:
    """Make the rows in ``records_by_id`` that name a file outside any archive name
    the archive's copy instead (key, size, hash, URL, run); how many changed.

    A picture has one row (its identity is unique), so an archive storing a picture
    first recorded in a scratch folder finds its own row skipped as a duplicate:
    left so, the archive would hold a file without a row. Rows naming a key are
    left alone. One transaction.
    """
    if not records_by_id:
        return 0
    with session_scope() as session:
        rows = session.execute(
            select(Image.id, Image.filepath).where(Image.id.in_(list(records_by_id)))
        ).all()
        moved = 0
        for row_id, filepath in rows:
            record = records_by_id[row_id]
            if filepath == record["filepath"] or is_key(filepath):
                continue
            session.execute(
                update(Image)
                .where(Image.id == row_id)
                .values(
                    filepath=record["filepath"],
                    file_size=record["file_size"],
                    sha256=record["sha256"],
                    source_url=record["source_url"],
                    run_id=record["run_id"],
                )
            )
            moved += 1
        return moved


# SQLSTATE classes of a record's own fault: data (22), integrity (23), a value
# over a limit (54: an index row too big), an error a trigger raised (P0).
_RECORD_SQLSTATE_CLASSES = frozenset({"22", "23", "54", "P0"})


def _refused_for_itself(exc: BaseException) -> bool:
    """Whether a record failing alone was refused for what it holds, so that writing
    it again would fail again (not a code bug, a lost connection or a corrupt file)."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] in _RECORD_SQLSTATE_CLASSES
    cause = getattr(exc, "orig", None) or exc
    return isinstance(exc, (IntegrityError, DataError)) or isinstance(
        cause, (OverflowError, ValueError)
    )


def _write_chunk(
    chunk: list[dict[str, Any]], session: Session | None
) -> tuple[int, dict[str, int]]:
    if session is None:

        def in_transaction() -> tuple[int, dict[str, int]]:
            with session_scope() as own:
                return _insert_chunk(own, chunk)

        return with_db_retries(in_transaction, f"chunk of {len(chunk)} records")

    def in_savepoint() -> tuple[int, dict[str, int]]:
        with session.begin_nested():
            return _insert_chunk(session, chunk)

    return with_db_retries(in_savepoint, f"chunk of {len(chunk)} records")


def _insert_chunk(
    session: Session, chunk: list[dict[str, Any]]
) -> tuple[int, dict[str, int]]:
    if session.get_bind().dialect.name == "postgresql":
        inserted_rows = session.execute(_UNNEST_INSERT, _as_arrays(chunk))
    else:
        stmt = _insert_ignoring_duplicates(session).returning(
            IMAGES.c.id, IMAGES.c.filepath
        )
        inserted_rows = session.execute(stmt, chunk)
    ids = {path: int(new_id) for new_id, path in inserted_rows}
    inserted = len(ids)
    missing = [row["filepath"] for row in chunk if row["filepath"] not in ids]
    if missing:
        query = select(Image.filepath, Image.id).where(Image.filepath.in_(missing))
        ids.update({path: int(old_id) for path, old_id in session.execute(query)})
    for row in chunk:  # skipped for their identity, under another path: rare
        if row["filepath"] not in ids:
            same = select(Image.id).where(*_same_identity(row))
            ids[row["filepath"]] = int(session.execute(same).scalar_one())
    return inserted, ids


# PostgreSQL: one statement per chunk with one array per column, unnested by the
# server into rows. Several times faster than a multi-row VALUES through SQLAlchemy,
# whose per-value bind processing costs more than the server's insert.
_UNNEST_COLUMNS = (
    ("filepath", "VARCHAR"),
    ("camera_id", "VARCHAR"),
    ("terminal", "VARCHAR"),
    ("timestamp", "TIMESTAMPTZ"),
    ("file_size", "BIGINT"),
    ("sha256", "VARCHAR"),
    ("source_url", "TEXT"),
    ("is_thumbnail", "BOOLEAN"),
    ("run_id", "INTEGER"),
    ("downloaded_at", "TIMESTAMPTZ"),
    ("local_day", "DATE"),
)
_UNNEST_INSERT = text(
    f"INSERT INTO images ({', '.join(name for name, _ in _UNNEST_COLUMNS)}, processed) "
    "SELECT *, false FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _UNNEST_COLUMNS)
    + ") ON CONFLICT DO NOTHING RETURNING id, filepath"
)


def _as_arrays(chunk: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The chunk's columns as lists (its records are normalized: timestamps are aware)."""
    return {name: [row[name] for row in chunk] for name, _ in _UNNEST_COLUMNS}


def _insert_ignoring_duplicates(session: Session) -> Insert:
    # A Core insert on the table, not the ORM entity: the ORM's bulk-insert layer
    # costs more per row than the database does, and these writes need none of it.
    # No conflict target: a repeated filepath and a repeated identity are both skipped.
    return upsert_insert(session, IMAGES).on_conflict_do_nothing()


def _normalize_record(
    raw: Mapping[str, Any], root: ArchiveRoot | None
) -> dict[str, Any]:
    unknown = set(raw) - IMAGE_FIELDS
    if unknown:
        raise ValueError(f"unknown image fields: {sorted(unknown)}")
    filepath = raw.get("filepath")
    if not isinstance(filepath, str) or not filepath:
        raise ValueError(f"filepath must be a non-empty string, not {filepath!r}")
    camera_id = raw.get("camera_id")
    if not isinstance(camera_id, str) or not camera_id:
        raise ValueError(f"camera_id must be a non-empty string, not {camera_id!r}")
    timestamp = _aware(raw.get("timestamp"), "timestamp")
    file_size = raw.get("file_size")
    if file_size is not None and (not isinstance(file_size, int) or file_size < 0):
        raise ValueError(f"file_size must be a non-negative int, not {file_size!r}")
    local_day = raw.get("local_day")
    if local_day is None:
        local_day = timestamp.astimezone(_LOCAL_DAY_ZONE).date()
    elif not isinstance(local_day, date) or isinstance(local_day, datetime):
        raise ValueError(f"local_day must be a date, not {local_day!r}")
    return {
        "filepath": stored_form(filepath, root),
        "camera_id": camera_id,
        "terminal": raw.get("terminal") or "apm",
        "timestamp": timestamp,
        "local_day": local_day,
        "file_size": file_size,
        "sha256": raw.get("sha256"),
        "source_url": raw.get("source_url"),
        "is_thumbnail": bool(raw.get("is_thumbnail", False)),
        "run_id": raw.get("run_id"),
        "downloaded_at": _aware(raw.get("downloaded_at"), "downloaded_at"),
    }


def _aware(value: Any, name: str) -> datetime:
    """A timezone-aware datetime: None means now, a naive value means UTC."""
    if value is None:
        return utcnow()
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, not {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


# --- reads ------------------------------------------------------------------


@contextmanager
def _reading(session: Session | None) -> Iterator[Session]:
    """The caller's session, else a read-only one that never waits for writers."""
    if session is not None:
        yield session
    else:
        with read_scope() as own:
            yield own


@contextmanager
def _writing(session: Session | None) -> Iterator[Session]:
    """The caller's session (its transaction), else a unit of work of our own."""
    if session is not None:
        yield session
    else:
        with session_scope() as own:
            yield own


def get_image_by_path(
    filepath: str,
    *,
    session: Session | None = None,
    root: str | Path | None = None,
) -> Image | None:
    """The picture stored at ``filepath`` (a path under ``root`` is looked up by key), or None."""
    stored = stored_form(filepath, _root(root))
    with _reading(session) as s:
        return s.execute(
            select(Image).where(Image.filepath == stored)
        ).scalar_one_or_none()


@overload
def image_location(image: Image, root: Path) -> Path: ...


@overload
def image_location(image: Image, root: str | Path | None = None) -> Path | str: ...


def image_location(image: Image, root: str | Path | None = None) -> Path | str:
    """The full path of a picture's file: its key under ``root`` (default: the configured
    archive root), or the absolute path stored for a file outside any root. For a
    bucket root (``s3://bucket/prefix``) a key's location is its ``s3://`` URL."""
    base = root if root is not None else archive_root()
    if isinstance(base, str) and base.startswith("s3://"):
        if not Path(image.filepath).is_absolute():
            return f"{base.rstrip('/')}/{image.filepath}"
    return path_for(image.filepath, base)


def _image_filter(
    camera_id: str | None,
    terminal: str | None,
    start: datetime | None,
    end: datetime | None,
) -> list[Any]:
    conditions: list[Any] = []
    if camera_id is not None:
        conditions.append(Image.camera_id == camera_id)
    if terminal is not None:
        conditions.append(Image.terminal == terminal)
    if start is not None:
        conditions.append(Image.timestamp >= start)
    if end is not None:
        conditions.append(Image.timestamp < end)
    return conditions


DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000


def list_images(
    camera_id: str | None = None,
    terminal: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    *,
    after: tuple[datetime, int] | None = None,
    session: Session | None = None,
) -> list[Image]:
    """One page of pictures ordered by capture time, then id; at most ``limit`` (1-10000).

    ``start`` is inclusive, ``end`` exclusive (naive means UTC). The next page starts
    ``after=(last.timestamp, last.id)`` of this one: a keyset, so a page costs the
    same however deep it is; its time may be in any zone (naive means UTC).
    :func:`iter_images` walks all the pages.
    """
    _check_page_size(limit, "limit")
    conditions = _image_filter(camera_id, terminal, start, end)
    if after is not None:
        instant, last_id = after
        if not isinstance(instant, datetime):
            raise ValueError(f"after's time must be a datetime, not {instant!r}")
        # Bound with the column's type, which stores UTC: a plain DateTime would drop
        # another zone's offset on SQLite without converting, repeating or skipping pages.
        cursor = tuple_(
            literal(_aware(instant, "after"), Image.timestamp.type), last_id
        )
        conditions.append(tuple_(Image.timestamp, Image.id) > cursor)
    query = (
        select(Image)
        .where(*conditions)
        .order_by(Image.timestamp, Image.id)
        .limit(limit)
    )
    with _reading(session) as s:
        return list(s.execute(query).scalars())


def iter_images(
    camera_id: str | None = None,
    terminal: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[Image]:
    """Every matching picture, in the order of :func:`list_images`, one page in memory at a time.

    Each page is read in its own short read transaction, so a slow consumer holds
    nothing open between pages.
    """
    _check_page_size(page_size, "page_size")
    after: tuple[datetime, int] | None = None
    while True:
        page = list_images(camera_id, terminal, start, end, page_size, after=after)
        yield from page
        if len(page) < page_size:
            return
        after = (page[-1].timestamp, page[-1].id)


def _check_page_size(value: int, name: str) -> None:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 1 <= value <= MAX_PAGE_SIZE
    ):
        raise ValueError(f"{name} must be between 1 and {MAX_PAGE_SIZE}, not {value!r}")


def count_images(
    camera_id: str | None = None,
    terminal: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    session: Session | None = None,
) -> int:
    """How many pictures match, with the filters of :func:`list_images`."""
    query = select(func.count(Image.id)).where(
        *_image_filter(camera_id, terminal, start, end)
    )
    with _reading(session) as s:
        return int(s.execute(query).scalar_one())


def get_unprocessed_images(
    limit: int = 100, *, session: Session | None = None
) -> list[Image]:
    """The oldest pictures no pipeline has marked processed yet (at most ``limit``).

    With ``session`` this is :func:`claim_unprocessed_images`: the rows stay locked
    in that session's transaction. Without, it only looks: two consumers calling it
    at once get the same pictures.
    """
    if session is not None:
        return claim_unprocessed_images(limit, session=session)
    _check_page_size(limit, "limit")
    with _reading(None) as s:
        return list(s.execute(_unprocessed(limit)).scalars())


def claim_unprocessed_images(limit: int, *, session: Session) -> list[Image]:
    """Hand out up to ``limit`` of the oldest unprocessed pictures to this consumer.

    The rows are locked in ``session``'s transaction until it ends, and rows another
    consumer holds are skipped, not waited for (PostgreSQL's ``FOR UPDATE SKIP
    LOCKED``; on SQLite the transaction's write lock serialises the consumers).
    Mark them processed in the same transaction, so that when it commits no other
    consumer can get them::

        with session_scope() as session:
            for image in claim_unprocessed_images(100, session=session):
                ...
                mark_image_processed(image.id, session=session)
    """
    _check_page_size(limit, "limit")
    query = _unprocessed(limit).with_for_update(skip_locked=True)
    return list(session.execute(query).scalars())


def _unprocessed(limit: int) -> Select[Any]:
    # The partial index ix_images_unprocessed has exactly this condition and order.
    return (
        select(Image)
        .where(UNPROCESSED)
        .order_by(Image.timestamp, Image.id)
        .limit(limit)
    )


def mark_image_processed(image_id: int, *, session: Session | None = None) -> bool:
    """Mark a picture processed; False when no picture has that id."""
    with _writing(session) as s:
        image = s.get(Image, image_id)
        if image is None:
            return False
        image.processed = True
        return True


def known_filepaths(
    filepaths: Sequence[str],
    *,
    session: Session | None = None,
    root: str | Path | None = None,
) -> set[str]:
    """Which of ``filepaths`` already have a row (looked up in slices, for long lists).

    A path under ``root`` (default: the configured archive root) is looked up by key.
    """
    keyed = _root(root)
    stored = {stored_form(path, keyed): path for path in filepaths}
    keys = list(stored)
    found: set[str] = set()
    with _reading(session) as s:
        for start in range(0, len(keys), 1000):
            part = keys[start : start + 1000]
            found.update(
                stored[key]
                for key in s.execute(
                    select(Image.filepath).where(Image.filepath.in_(part))
                ).scalars()
            )
    return found


def folder_keys(terminal: str, stream: str, first: date, last: date) -> set[str]:
    """The stored keys of a stream's day folders from ``first`` to ``last``, for reindex.

    They are one range of the ``filepath`` index, from ``<terminal>/<stream>/<first>/``
    to the end of ``<last>``'s folder, since ``filepath`` compares bytes on both
    databases (SQLite's BINARY collation, PostgreSQL's "C" since revision 0005): the
    index alone answers, as one string split in C, so that a row costs less than a
    file's listing. (A key holding a newline, as no picture's does, would be missed.)
    """
    folder = f"{terminal}/{stream}/"
    low = f"{folder}{first.isoformat()}/"
    high = f"{folder}{last.isoformat()}0"  # "0" follows "/": past the folder's keys
    engine = get_engine()
    if engine.dialect.name == "sqlite":
        with read_scope() as s:
            # The driver's cursor: SQLAlchemy's per-statement work is a row's cost here.
            cursor = s.connection().connection.driver_connection.execute(  # type: ignore[union-attr]
                "SELECT group_concat(filepath, char(10)) FROM images "
                "WHERE filepath >= ? AND filepath < ?",
                (low, high),
            )
            (joined,) = cursor.fetchone()
    else:
        # One statement, no transaction around it: no BEGIN and ROLLBACK round trips.
        with engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            joined = connection.execute(
                select(func.string_agg(IMAGES.c.filepath, literal("\n"))).where(
                    IMAGES.c.filepath >= low, IMAGES.c.filepath < high
                )
            ).scalar_one()
    return set(joined.split("\n")) if joined else set()


@dataclass(frozen=True)
class DailyCount:
    """Pictures of one terminal, stream and day (in the time zone asked for)."""

    day: date
    terminal: str
    camera_id: str
    pictures: int
    thumbnails: int
    bytes: int


def daily_counts(*, timezone_name: str = "UTC") -> list[DailyCount]:
    """Pictures per day, terminal and stream, with thumbnails and bytes, oldest day first.

    Days are those of ``timezone_name``: a terminal's day is its own wall-clock day,
    which in UTC would be split across two dates. Counted by the database (``GROUP
    BY``); the terminals' zone uses the stored ``local_day`` and its index.
    """
    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone_name!r}") from exc
    return [DailyCount(*row) for row in daily_totals(timezone_name)]


# --- download runs ------------------------------------------------------------

RUN_COUNTERS = (
    "requested",
    "downloaded",
    "already_present",
    "failed",
    "bytes",
    "db_inserted",
    "db_duplicates",
    "db_failed",
)


def start_run(
    terminal: str, camera_id: str, requested: int = 0, *, session: Session | None = None
) -> DownloadRun:
    """Open a DownloadRun row (status ``running``) and return it."""
    run = DownloadRun(
        terminal=terminal, camera_id=camera_id, requested=requested, status="running"
    )
    with _writing(session) as s:
        s.add(run)
        s.flush()
    return run


def finish_run(
    run_id: int,
    *,
    status: str = "ok",
    session: Session | None = None,
    **counters: int,
) -> DownloadRun:
    """Close a DownloadRun with its statistics and status; unknown counters are a ValueError."""
    unknown = set(counters) - set(RUN_COUNTERS)
    if unknown:
        raise ValueError(f"unknown run counters: {sorted(unknown)}")
    with _writing(session) as s:
        run = s.get(DownloadRun, run_id)
        if run is None:
            raise LookupError(f"no download run with id {run_id}")
        for name, value in counters.items():
            setattr(run, name, value)
        run.status = status
        run.finished_at = utcnow()
        s.flush()
        return run


def recent_runs(
    limit: int = 10, *, session: Session | None = None
) -> list[DownloadRun]:
    """The latest runs, newest first."""
    query = select(DownloadRun).order_by(DownloadRun.id.desc()).limit(limit)
    with _reading(session) as s:
        return list(s.execute(query).scalars())
