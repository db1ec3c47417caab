"""The tables, the engine's configuration and ``session_scope``, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, event, func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from modules.database import models, queries
from modules.database.models import DownloadRun, Image, session_scope

UTC = timezone.utc
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def _dialect() -> str:
    return models.get_engine().dialect.name


def _checked_out(engine: Engine | None = None) -> int:
    """Connections taken from the pool and not given back."""
    pool = (engine or models.get_engine()).pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


def _count(model: type[Image] | type[DownloadRun]) -> int:
    with session_scope() as session:
        return int(
            session.execute(select(func.count()).select_from(model)).scalar_one()
        )


# --- tables -------------------------------------------------------------------


def test_images_table_has_its_columns_constraints_and_indexes(database: str) -> None:
    inspector = inspect(models.get_engine())
    columns = {column["name"]: column for column in inspector.get_columns("images")}
    assert set(columns) == {
        "id",
        "filepath",
        "camera_id",
        "terminal",
        "timestamp",
        "file_size",
        "sha256",
        "source_url",
        "is_thumbnail",
        "downloaded_at",
        "run_id",
        "processed",
        "local_day",
    }
    assert columns["filepath"]["nullable"] is False
    assert columns["timestamp"]["nullable"] is False
    assert columns["run_id"]["nullable"] is True
    if _dialect() == "postgresql":
        # timestamptz: PostgreSQL keeps the instant, not a wall-clock reading.
        assert getattr(columns["timestamp"]["type"], "timezone", False) is True
        assert getattr(columns["downloaded_at"]["type"], "timezone", False) is True

    unique = {
        tuple(constraint["column_names"])
        for constraint in inspector.get_unique_constraints("images")
    } | {
        tuple(index["column_names"])
        for index in inspector.get_indexes("images")
        if index["unique"]
    }
    assert ("filepath",) in unique

    indexes = {
        index["name"]: list(index["column_names"])
        for index in inspector.get_indexes("images")
    }
    assert indexes["ix_images_camera_timestamp"] == ["camera_id", "timestamp"]
    assert indexes["ix_images_timestamp"] == ["timestamp"]
    assert indexes["ix_images_terminal_camera_local_day"] == [
        "terminal",
        "camera_id",
        "local_day",
        "timestamp",
        "file_size",
    ]
    assert indexes["ix_images_thumbnails"] == ["terminal", "camera_id", "local_day"]

    (foreign_key,) = inspector.get_foreign_keys("images")
    assert foreign_key["constrained_columns"] == ["run_id"]
    assert foreign_key["referred_table"] == "download_runs"
    assert foreign_key["referred_columns"] == ["id"]


def test_download_runs_table_has_its_statistics(database: str) -> None:
    columns = {
        c["name"] for c in inspect(models.get_engine()).get_columns("download_runs")
    }
    assert columns == {
        "id",
        "started_at",
        "finished_at",
        "terminal",
        "camera_id",
        "requested",
        "downloaded",
        "already_present",
        "failed",
        "bytes",
        "db_inserted",
        "db_duplicates",
        "db_failed",
        "status",
    }


def test_init_db_is_idempotent(database: str) -> None:
    tables = set(inspect(models.get_engine()).get_table_names())
    image_id = queries.insert_image("a.jpeg", "in_gate")
    models.init_db()
    models.init_db()
    assert set(inspect(models.get_engine()).get_table_names()) == tables
    assert {"images", "download_runs"} <= tables
    stored = queries.get_image_by_path("a.jpeg")
    assert stored is not None and stored.id == image_id


# --- time zones ---------------------------------------------------------------


def _stored_utc_text(filepath: str) -> str:
    """The stored capture time as the database itself sees it, in UTC."""
    with session_scope() as session:
        if _dialect() == "sqlite":
            sql = "SELECT timestamp FROM images WHERE filepath = :p"
        else:
            sql = (
                "SELECT to_char(timestamp AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD HH24:MI:SS.US') FROM images WHERE filepath = :p"
            )
        return str(session.execute(text(sql), {"p": filepath}).scalar_one())


@pytest.mark.parametrize(
    ("given", "utc"),
    [
        pytest.param(
            datetime(2024, 3, 10, 1, 30, 15, 123456, tzinfo=LOS_ANGELES),
            datetime(2024, 3, 10, 9, 30, 15, 123456, tzinfo=UTC),
            id="los-angeles",
        ),
        pytest.param(
            datetime(
                2024, 7, 1, 23, 59, 59, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            datetime(2024, 7, 1, 18, 29, 59, tzinfo=UTC),
            id="plus-0530",
        ),
        pytest.param(
            datetime(2024, 1, 1, 12, 0, 0),
            datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC),
            id="naive-is-utc",
        ),
        pytest.param(
            datetime(2023, 12, 31, 23, 0, 0, 1, tzinfo=UTC),
            datetime(2023, 12, 31, 23, 0, 0, 1, tzinfo=UTC),
            id="utc",
        ),
    ],
)
def test_timestamps_are_stored_as_utc_and_read_back_utc_aware(
    database: str, given: datetime, utc: datetime
) -> None:
    queries.insert_image("pic.jpeg", "in_gate", given)

    assert _stored_utc_text("pic.jpeg") == utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    image = queries.get_image_by_path("pic.jpeg")
    assert image is not None
    assert image.timestamp == utc
    assert image.timestamp.tzinfo is UTC
    assert image.timestamp.replace(tzinfo=None) == utc.replace(tzinfo=None)

    batch = queries.insert_images(
        [{"filepath": "b.jpeg", "camera_id": "c", "timestamp": given}]
    )
    assert batch.inserted == 1
    again = queries.get_image_by_path("b.jpeg")
    assert (
        again is not None and again.timestamp == utc and again.timestamp.tzinfo is UTC
    )


@pytest.mark.postgres
def test_postgresql_session_time_zone_does_not_leak_into_values(
    postgres_url: str,
) -> None:
    models.configure(postgres_url)
    stamp = datetime(2024, 5, 5, 5, 5, 5, tzinfo=UTC)
    queries.insert_image("tz.jpeg", "in_gate", stamp)
    with session_scope() as session:
        session.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))
        image = queries.get_image_by_path("tz.jpeg", session=session)
        assert image is not None
        assert image.timestamp == stamp and image.timestamp.tzinfo is UTC
        # Filtering with an aware bound in another zone finds the same instant.
        tokyo = stamp.astimezone(ZoneInfo("Asia/Tokyo"))
        assert (
            queries.count_images(
                start=tokyo, end=tokyo + timedelta(seconds=1), session=session
            )
            == 1
        )


def test_literal_rendered_timestamps_match_the_stored_ones(database: str) -> None:
    """Queries printed with their values inlined (logs, debugging) still find the rows."""
    stamp = datetime(2024, 2, 2, 2, 2, 2, 5, tzinfo=LOS_ANGELES)
    queries.insert_image("literal.jpeg", "in_gate", stamp)
    query = select(Image.filepath).where(Image.timestamp == stamp)
    sql = str(
        query.compile(
            dialect=models.get_engine().dialect,
            compile_kwargs={"literal_binds": True},
        )
    )
    assert "2024-02-02 10:02:02.000005" in sql
    with session_scope() as session:
        assert list(session.execute(text(sql)).scalars()) == ["literal.jpeg"]


def test_utc_datetime_rejects_what_is_not_a_datetime(database: str) -> None:
    with pytest.raises(StatementError, match="expected a datetime"):
        with session_scope() as session:
            session.add(
                DownloadRun(
                    terminal="apm", camera_id="in_gate", finished_at="2024-01-01"
                )
            )
    assert _count(DownloadRun) == 0


# --- defaults and the run foreign key -------------------------------------------


def test_image_defaults(database: str, local_time_not_utc: None) -> None:
    before = datetime.now(UTC)
    image_id = queries.insert_image("d.jpeg", "in_gate", datetime(2024, 1, 1))
    after = datetime.now(UTC)
    image = queries.get_image_by_path("d.jpeg")
    assert image is not None and image.id == image_id
    assert "d.jpeg" in repr(image) and str(image_id) in repr(image)
    assert image.processed is False
    assert image.is_thumbnail is False
    assert image.terminal == "apm"
    assert image.run_id is None
    assert image.file_size is None and image.sha256 is None and image.source_url is None
    assert image.downloaded_at.tzinfo is UTC
    assert (
        before - timedelta(seconds=1)
        <= image.downloaded_at
        <= after + timedelta(seconds=1)
    )


def test_orm_defaults_apply_to_objects_added_directly(database: str) -> None:
    with session_scope() as session:
        session.add(
            Image(
                filepath="orm.jpeg", camera_id="in_gate", timestamp=datetime(2024, 1, 1)
            )
        )
    image = queries.get_image_by_path("orm.jpeg")
    assert image is not None
    assert image.processed is False and image.terminal == "apm"
    assert image.downloaded_at.tzinfo is UTC


def test_run_id_is_a_foreign_key_to_download_runs(database: str) -> None:
    run = queries.start_run("apm", "in_gate")
    image_id = queries.insert_image("r.jpeg", "in_gate", run_id=run.id)
    image = queries.get_image_by_path("r.jpeg")
    assert image is not None and image.id == image_id and image.run_id == run.id

    # Enforced (SQLite needs PRAGMA foreign_keys): an unknown run is refused...
    with pytest.raises(IntegrityError):
        queries.insert_image("bad.jpeg", "in_gate", run_id=run.id + 1000)
    assert queries.get_image_by_path("bad.jpeg") is None

    # ... and deleting the run keeps the picture, unlinked (ON DELETE SET NULL).
    with session_scope() as session:
        session.execute(delete(DownloadRun))
    image = queries.get_image_by_path("r.jpeg")
    assert image is not None and image.run_id is None


# --- the engine: URL, configure, SQLite settings --------------------------------


def test_database_url_environment_variable_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    assert models.database_url() == f"sqlite:///{path}"
    assert models.get_engine().url.database == str(path)
    queries.insert_image("env.jpeg", "in_gate")
    models.get_engine().dispose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT filepath FROM images").fetchall() == [("env.jpeg",)]


def test_configure_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/env.sqlite3")
    models.configure(f"sqlite:///{tmp_path}/configured.sqlite3")
    queries.insert_image("x.jpeg", "in_gate")
    assert (tmp_path / "configured.sqlite3").exists()
    assert not (tmp_path / "env.sqlite3").exists()


def test_default_url_creates_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.chdir(tmp_path)
    assert models.database_url() == models.DEFAULT_DATABASE_URL
    assert not (tmp_path / "data").exists()
    models.init_db()
    queries.insert_image("default.jpeg", "in_gate")
    assert (tmp_path / "data").is_dir()
    assert (tmp_path / "data" / "draydog.sqlite3").is_file()
    assert queries.count_images() == 1


def test_explicit_url_to_a_missing_folder_fails_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-folder"
    models.configure(f"sqlite:///{missing}/archive.sqlite3")
    with pytest.raises(FileNotFoundError, match=f"no folder {missing}"):
        models.init_db()
    assert not missing.exists()
    # It keeps failing (no half-built engine was kept), and still creates nothing.
    with pytest.raises(FileNotFoundError):
        queries.insert_image("x.jpeg", "in_gate")
    assert not missing.exists()


def test_configure_switches_the_database(tmp_path: Path) -> None:
    first, second = (
        f"sqlite:///{tmp_path}/one.sqlite3",
        f"sqlite:///{tmp_path}/two.sqlite3",
    )
    models.configure(first)
    queries.insert_image("one.jpeg", "in_gate")
    first_engine = models.get_engine()
    assert _checked_out(first_engine) == 0

    models.configure(second)
    assert models.database_url() == second
    second_engine = models.get_engine()
    assert second_engine is not first_engine
    assert second_engine.url.database == f"{tmp_path}/two.sqlite3"
    assert queries.count_images() == 0
    queries.insert_image("two.jpeg", "in_gate")

    models.configure(first)
    assert [i.filepath for i in queries.list_images()] == ["one.jpeg"]


def test_configure_sets_the_retry_policy_and_none_keeps_the_url(
    sqlite_url: str,
) -> None:
    models.configure(sqlite_url, retry_attempts=7, retry_delay=0.5)
    assert models.retry_policy().attempts == 7
    assert models.retry_policy().base_delay == 0.5
    engine = models.get_engine()
    models.configure(retry_attempts=2)
    assert models.database_url() == sqlite_url
    assert models.get_engine() is engine
    assert models.retry_policy().attempts == 2
    assert models.retry_policy().base_delay == 0.5
    with pytest.raises(ValueError):
        models.configure(retry_attempts=0)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:secret@db.example:5433/archive",
        "postgres://user:secret@db.example:5433/archive",
        "postgresql+psycopg://user:secret@db.example:5433/archive",
    ],
)
def test_postgresql_urls_use_psycopg_3(url: str) -> None:
    parsed = models.normalize_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.username, parsed.password) == ("user", "secret")
    assert (parsed.host, parsed.port, parsed.database) == (
        "db.example",
        5433,
        "archive",
    )
    models.configure(url)
    assert (
        models.database_url()
        == "postgresql+psycopg://user:secret@db.example:5433/archive"
    )
    # Building the engine does not connect: check which DBAPI it would use.
    engine = models.build_engine(url)
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_sqlite_urls_are_left_as_they_are() -> None:
    assert models.normalize_url("sqlite:///data/x.sqlite3").drivername == "sqlite"
    assert models.normalize_url("sqlite:////abs/x.sqlite3").database == "/abs/x.sqlite3"


@pytest.mark.parametrize(
    "url", ["", "not a url", "://nothing", "sqlite//x.db", "postgresql://h:port/db"]
)
def test_malformed_url_is_a_value_error(url: str, sqlite_url: str) -> None:
    models.configure(sqlite_url)
    with pytest.raises(ValueError):
        models.configure(url)
    assert models.database_url() == sqlite_url


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(
    sqlite_url: str,
) -> None:
    models.configure(sqlite_url)
    with models.get_engine().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert (
            conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            == models.SQLITE_BUSY_TIMEOUT_MS
        )
        assert models.SQLITE_BUSY_TIMEOUT_MS >= 5_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_write_transactions_begin_immediate(sqlite_url: str) -> None:
    """A second writer waits for the first instead of failing (busy timeout + BEGIN IMMEDIATE)."""
    models.configure(sqlite_url)
    models.init_db()
    statements: list[str] = []
    engine = models.get_engine()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        queries.insert_image("i.jpeg", "in_gate")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements[0] == "BEGIN IMMEDIATE"


# --- session_scope ----------------------------------------------------------------


def test_session_scope_commits_on_success(database: str) -> None:
    with session_scope() as session:
        session.add(DownloadRun(terminal="apm", camera_id="in_gate"))
    assert _count(DownloadRun) == 1
    assert _checked_out() == 0


class Boom(Exception):
    pass


def test_session_scope_rolls_back_and_reraises(database: str) -> None:
    error = Boom("stop")
    kept: list[Session] = []
    with pytest.raises(Boom) as raised:
        with session_scope() as session:
            kept.append(session)
            session.add(DownloadRun(terminal="apm", camera_id="in_gate"))
            session.flush()
            queries.insert_image("rolled-back.jpeg", "in_gate", session=session)
            raise error
    assert raised.value is error
    assert _count(DownloadRun) == 0
    assert queries.get_image_by_path("rolled-back.jpeg") is None
    # Closed: nothing held, connection back in the pool.
    assert not kept[0].in_transaction()
    assert len(kept[0].identity_map) == 0
    assert _checked_out() == 0


def test_session_scope_rolls_back_on_base_exceptions_too(database: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        with session_scope() as session:
            session.add(DownloadRun(terminal="apm", camera_id="in_gate"))
            session.flush()
            raise KeyboardInterrupt
    assert _count(DownloadRun) == 0
    assert _checked_out() == 0


def test_session_scope_rolls_back_when_the_commit_fails(database: str) -> None:
    with pytest.raises(IntegrityError):
        with session_scope() as session:
            session.add(DownloadRun(terminal="apm", camera_id="in_gate"))
            session.add(
                Image(
                    filepath="same.jpeg", camera_id="c", timestamp=datetime(2024, 1, 1)
                )
            )
            session.add(
                Image(
                    filepath="same.jpeg", camera_id="c", timestamp=datetime(2024, 1, 1)
                )
            )
    assert _count(DownloadRun) == 0 and _count(Image) == 0
    assert _checked_out() == 0


def test_session_scope_rolls_back_and_closes_explicitly(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, Session]] = []
    original_close, original_rollback = Session.close, Session.rollback

    def close(self: Session) -> None:
        calls.append(("close", self))
        original_close(self)

    def rollback(self: Session) -> None:
        calls.append(("rollback", self))
        original_rollback(self)

    monkeypatch.setattr(Session, "close", close)
    monkeypatch.setattr(Session, "rollback", rollback)
    with session_scope() as ok:
        pass
    with pytest.raises(Boom):
        with session_scope() as failed:
            raise Boom
    assert calls == [("close", ok), ("rollback", failed), ("close", failed)]


def test_readers_do_not_wait_for_an_open_write_transaction(database: str) -> None:
    """A pipeline reading the archive is never held up by a downloader writing it."""
    queries.insert_image("/archive/a.jpg", "in_gate")
    with session_scope() as writer:
        queries.insert_image("/archive/b.jpg", "in_gate", session=writer)
        # With the write lock taken by every transaction, these would time out
        # ("database is locked") on SQLite instead of answering.
        seen = queries.count_images()
        images = queries.list_images()
    assert (seen, [image.filepath for image in images]) == (1, ["/archive/a.jpg"])
    assert queries.count_images() == 2
