"""The archive's tables, the engine and the unit of work (``session_scope``).

The engine is built lazily from ``DATABASE_URL`` (default: an SQLite file under
``./data/``) and can be switched at run time with :func:`configure`. SQLite is set
up for many writers (WAL, busy timeout, ``BEGIN IMMEDIATE``) so that threads and
processes sharing one archive never fail with "database is locked".
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.sqlite import DATETIME as SQLiteDATETIME
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator, TypeEngine

from modules.backoff import Backoff, call_with_retries
from modules.database import migrations

logger = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///data/draydog.sqlite3"
ARCHIVE_ENV = "DRAYDOG_ARCHIVE"
"""The archive root when none is configured: paths under it are stored as keys."""
LOCAL_DAY_TIMEZONE = "America/Los_Angeles"
"""The zone of ``images.local_day`` when a record does not carry its day: the
terminals' own (the downloader's default ``source_timezone``)."""
SQLITE_BUSY_TIMEOUT_MS = 30_000
_READ_ONLY_OPTION = "draydog_read_only"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (never the machine's local time)."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC and always read back UTC-aware, on SQLite too.

    SQLite has no time zones, so values go in as naive UTC; a naive value handed to
    this layer is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return _PreformattedSQLiteDateTime()  # type: ignore[no-untyped-call]
        return self.impl_instance

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | str | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            # Naive UTC in SQLAlchemy's own SQLite storage format, formatted here in C
            # (isoformat) rather than by DATETIME's per-value % formatting: batch speed.
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class _PreformattedSQLiteDateTime(SQLiteDATETIME):
    """SQLite's DATETIME (same DDL and reading) for values UTCDateTime has already formatted."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def literal_processor(self, dialect: Dialect) -> Callable[[str], str]:
        return lambda formatted: f"'{formatted}'"


class Base(DeclarativeBase):
    """Declarative base of the archive's tables."""


class DownloadRun(Base):
    """One batch or run of the downloader with its statistics."""

    __tablename__ = "download_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    terminal: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    requested: Mapped[int] = mapped_column(Integer, default=0)
    downloaded: Mapped[int] = mapped_column(Integer, default=0)
    already_present: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    db_inserted: Mapped[int] = mapped_column(Integer, default=0)
    db_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    db_failed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(32), default="running")


class Image(Base):
    """One archived picture: where it is on disk and what it shows."""

    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_camera_timestamp", "camera_id", "timestamp"),
        Index("ix_images_timestamp", "timestamp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filepath: Mapped[str] = mapped_column(
        String(1024).with_variant(String(1024, collation="C"), "postgresql"),
        unique=True,
        nullable=False,
    )
    """The picture's storage key (or, outside any archive root, its absolute path).
    In byte order on PostgreSQL as on SQLite, so that the keys of a folder are one
    range of the unique index (reindex reads them from the index alone)."""
    camera_id: Mapped[str] = mapped_column(String(64))
    terminal: Mapped[str] = mapped_column(String(64), default="apm")
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    source_url: Mapped[str | None] = mapped_column(Text)
    is_thumbnail: Mapped[bool] = mapped_column(Boolean, default=False)
    downloaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("download_runs.id", ondelete="SET NULL"), nullable=True
    )
    processed: Mapped[bool] = mapped_column(Boolean, default=False)
    local_day: Mapped[date | None] = mapped_column(Date)
    """The capture's day at the terminal (``LOCAL_DAY_TIMEZONE``): the key
    that ``gaps`` and ``stats`` group by, since a terminal's day spans two UTC dates.
    Every write path fills it; only rows written around the code could lack it."""

    def __repr__(self) -> str:
        return f"Image(id={self.id!r}, filepath={self.filepath!r}, timestamp={self.timestamp!r})"


UNPROCESSED = Image.processed.is_(False)
"""The condition of pictures no pipeline has processed, as the partial index states it."""
Index("ix_images_run_id", Image.run_id)
# A picture's identity: one row per picture, whatever path it was written through.
# A unique index rather than a named constraint: SQLite adds it without rebuilding
# the table (0.1.0's constraints have no names to alter).
Index(
    "uq_images_identity",
    Image.terminal,
    Image.camera_id,
    Image.timestamp,
    Image.is_thumbnail,
    unique=True,
)
# Per stream and day, in capture order, with the size: gaps and stats group by it
# without reading the table, and a day's pictures come out in time order
# (local_day follows time).
Index(
    "ix_images_terminal_camera_local_day",
    Image.terminal,
    Image.camera_id,
    Image.local_day,
    Image.timestamp,
    Image.file_size,
)
THUMBNAIL = Image.is_thumbnail.is_(True)
"""The condition of pictures kept only as thumbnails, as their partial index states it."""
Index(
    "ix_images_thumbnails",
    Image.terminal,
    Image.camera_id,
    Image.local_day,
    postgresql_where=THUMBNAIL,
    sqlite_where=THUMBNAIL,
)
Index(
    "ix_images_unprocessed",
    Image.timestamp,
    Image.id,
    postgresql_where=UNPROCESSED,
    sqlite_where=UNPROCESSED,
)


class ArchiveDay(Base):
    """What the archive holds of one (terminal, stream, day) against what the site listed.

    Written after each download of the day; ``gaps`` reads it to tell an incomplete
    day from a finished one, and ``watch`` to skip days already done.
    """

    __tablename__ = "archive_days"
    __table_args__ = (UniqueConstraint("terminal", "camera_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    listed: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    thumbnails: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass
class _State:
    url: str | None = None
    engine: Engine | None = None
    factory: sessionmaker[Session] | None = None
    retry: Backoff = Backoff(attempts=5, base_delay=0.2, max_delay=5.0)
    archive_root: str | None = None


_state = _State()
_lock = threading.RLock()


def normalize_url(url: str) -> URL:
    """Parse a database URL, mapping ``postgresql://`` to the psycopg 3 driver.

    A malformed URL is a ValueError that says so, before anything connects.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise ValueError(f"malformed database URL {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def configure(
    url: str | None = None,
    *,
    retry_attempts: int | None = None,
    retry_delay: float | None = None,
    archive_root: str | Path | None = None,
) -> None:
    """Switch the database (``None`` keeps the current URL) and set the retry policy.

    ``archive_root`` is the folder whose pictures are stored by key (see
    :mod:`modules.database.keys`); ``None`` keeps the current one. The old engine,
    if any, is disposed; the new one is built on first use.
    """
    new_url = None if url is None else normalize_url(url)
    with _lock:
        if archive_root is not None:
            _state.archive_root = str(archive_root)
        if retry_attempts is not None or retry_delay is not None:
            _state.retry = Backoff(
                attempts=(
                    retry_attempts
                    if retry_attempts is not None
                    else _state.retry.attempts
                ),
                base_delay=(
                    retry_delay if retry_delay is not None else _state.retry.base_delay
                ),
                max_delay=_state.retry.max_delay,
            )
        if new_url is not None:
            if _state.engine is not None:
                _state.engine.dispose()
            _state.url = new_url.render_as_string(hide_password=False)
            _state.engine = None
            _state.factory = None


def archive_root() -> str | None:
    """The configured archive root, else ``DRAYDOG_ARCHIVE``, else None (paths stay absolute)."""
    return _state.archive_root or os.environ.get(ARCHIVE_ENV) or None


def retry_policy() -> Backoff:
    """The backoff that database writes use for transient errors."""
    return _state.retry


def database_url() -> str:
    """The URL in use: the configured one, else ``DATABASE_URL``, else the SQLite default."""
    return _state.url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def get_engine() -> Engine:
    """The process-wide engine, created on first use with the schema checked.

    A new database is created at the newest revision; one at another revision is a
    :class:`~modules.database.migrations.SchemaError` (``draydog db upgrade``).
    """
    with _lock:
        if _state.engine is None:
            engine = build_engine(database_url())
            try:
                prepare_schema(engine)
            except BaseException:
                engine.dispose()
                raise
            _state.engine = engine
            _state.factory = sessionmaker(engine, expire_on_commit=False)
        return _state.engine


def init_db() -> None:
    """Create a new database at the newest revision, or check an existing one is at it.

    Safe to call any number of times; a database behind the code is refused with
    :class:`~modules.database.migrations.SchemaOutdatedError`, never changed here.
    """
    prepare_schema(get_engine())


def prepare_schema(engine: Engine) -> None:
    """Create a new database at the newest revision; refuse one at another revision.

    Several processes may do this at once on one new database: they take turns
    (see :mod:`modules.database.migrations`), and the transient errors of that
    start (a new SQLite file turning to WAL) are retried, quietly.
    """

    def check_or_create() -> str | None:
        # Look without the write lock first (the usual case: the schema is there), so
        # that starting a reader never waits for a writer; create under the lock.
        with engine.connect() as connection:
            connection.execution_options(**{_READ_ONLY_OPTION: True})
            revision = migrations.current_revision(connection)
        if revision is None:
            with engine.begin() as connection:
                revision = migrations.create(connection)
        return revision

    for attempt in range(1, 4):
        try:
            revision = check_or_create()
            break
        except DBAPIError as exc:
            # Quietly: an unreachable database is reported by whoever asked for it.
            if attempt == 3 or not is_transient_error(exc):
                raise
            logger.debug("schema check, attempt %d: %s", attempt, exc.orig)
            time.sleep(0.1 * attempt)
    migrations.require_head(revision, _shown(engine.url))


def check_schema() -> None:
    """Refuse the configured database if its schema is not the code's; create nothing.

    For commands to check before they start: a database that does not exist yet or
    has no tables passes (its first use creates it), and none is created here.
    """
    url = normalize_url(database_url())
    if url.get_backend_name() == "sqlite" and not _is_sqlite_file(url.database):
        return
    engine = build_engine(database_url())
    try:
        with engine.connect() as connection:
            connection.execution_options(**{_READ_ONLY_OPTION: True})
            revision = migrations.current_revision(connection)
    finally:
        engine.dispose()
    if revision is not None:
        migrations.require_head(revision, _shown(url))


def allows_concurrent_readers() -> bool:
    """Whether threads may read the archive on connections of their own: not an
    in-memory SQLite database, where each connection would see a database of its own."""
    return isinstance(get_engine().pool, QueuePool)


def _is_sqlite_file(database: str | None) -> bool:
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    return Path(database).is_file()


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def build_engine(url: str) -> Engine:
    """An engine for ``url`` with the archive's connection settings, the schema untouched.

    SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` writes; PostgreSQL a
    10-second connect timeout.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        # An unreachable host must fail in seconds, not after the kernel's TCP timeout.
        return create_engine(
            parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10}
        )
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        _ensure_default_folder(url, Path(database))
    engine = create_engine(
        parsed,
        connect_args={
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            "check_same_thread": False,
        },
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin)
    return engine


def _ensure_default_folder(url: str, database: Path) -> None:
    """Create ``./data/`` for the default URL only: an explicit URL names a folder that must exist."""
    if url == DEFAULT_DATABASE_URL:
        database.parent.mkdir(parents=True, exist_ok=True)
    elif not database.parent.is_dir():
        raise FileNotFoundError(
            f"no folder {database.parent} for the SQLite database of {url}"
        )


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, emit BEGIN: required for SAVEPOINT and BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode and str(mode[0]).lower() != "wal":
            logger.debug("SQLite journal mode is %s, not WAL", mode[0])
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _begin(connection: Any) -> None:
    # Writers take the write lock up front: a deferred transaction that reads and then
    # writes cannot wait for a busy database and fails at once with "database is
    # locked". Readers (read_scope) begin deferred, so in WAL mode they never wait.
    if connection.get_execution_options().get(_READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory() -> sessionmaker[Session]:
    """The sessionmaker bound to the current engine."""
    get_engine()
    assert _state.factory is not None
    return _state.factory


@contextmanager
def read_scope() -> Iterator[Session]:
    """A session for reads only: on SQLite it takes no write lock, so it never waits for writers.

    Its transaction is rolled back at the end: anything written in it is discarded.
    """
    session = session_factory()()
    try:
        session.connection(execution_options={_READ_ONLY_OPTION: True})
        yield session
    finally:
        session.close()


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work: commit on success, roll back and re-raise on any exception, always close."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")


def upsert_insert(session: Session, table: Table) -> PostgresInsert | SQLiteInsert:
    """An INSERT with ``ON CONFLICT`` clauses for the session's database (SQLite or PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(
        f"database {dialect!r} is not supported (use SQLite or PostgreSQL)"
    )


def with_db_retries(operation: Callable[[], T], describe: str) -> T:
    """Run a unit of work, retrying transient database errors with the configured backoff."""
    return call_with_retries(
        operation, retry_policy(), is_transient_error, describe=describe
    )


# SQLSTATEs worth a retry: the connection failed or was lost (class 08), the server
# is shutting down or starting (57P01-57P03), too many connections, a serialization
# failure or a deadlock (a retry of the transaction is what PostgreSQL asks for),
# and a lock not available in time.
_TRANSIENT_SQLSTATES = frozenset(
    {"57P01", "57P02", "57P03", "53300", "40001", "40P01", "55P03"}
)
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})
# SQLite's primary result codes for a database another connection holds.
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# Their fixed messages (sqlite3_errstr: SQLite's messages are never translated), for
# exceptions that carry no code: Python before 3.11, or raised by hand.
_SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked")


def is_transient_error(exc: BaseException) -> bool:
    """Whether retrying ``exc`` later could succeed: a busy or locked SQLite, a lost connection.

    Decided by the driver's error code (PostgreSQL's SQLSTATE, SQLite's result code),
    not by the message, which PostgreSQL translates into the server's language.
    """
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return (
            sqlstate in _TRANSIENT_SQLSTATES
            or sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES
        )
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    if isinstance(orig, sqlite3.Error):
        return str(orig).startswith(_SQLITE_BUSY_MESSAGES)
    # No code at all: psycopg's failures to reach or keep the server (libpq reports
    # no SQLSTATE for them) and other drivers' OperationalError, which DB-API keeps
    # for errors of the database's operation rather than of the statement.
    return isinstance(exc, OperationalError)
