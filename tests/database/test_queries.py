"""Writes and reads of the archive's metadata, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from modules.database import models, queries
from modules.database.models import DownloadRun, Image, session_scope
from modules.database.queries import BatchResult, DailyCount
from tests.database.savepoints import savepoint_events

UTC = timezone.utc
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def record(path: str, **fields: Any) -> dict[str, Any]:
    """A picture of its own: each path gets its own capture instant (its identity)."""
    instant = T0 + timedelta(microseconds=zlib.crc32(path.encode()))
    return {"filepath": path, "camera_id": "in_gate", "timestamp": instant, **fields}


def records(paths: list[str]) -> list[dict[str, Any]]:
    return [record(path) for path in paths]


def stored_ids() -> dict[str, int]:
    """filepath -> id of every stored row, straight from the table."""
    with session_scope() as session:
        return {
            path: int(image_id)
            for path, image_id in session.execute(select(Image.filepath, Image.id))
        }


def sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    """An error as Python's sqlite3 raises it: with SQLite's (extended) result code."""
    error = sqlite3.OperationalError(message)
    setattr(error, "sqlite_errorcode", code)
    return error


def locked_error() -> OperationalError:
    """SQLite's busy database (SQLITE_BUSY)."""
    return OperationalError(
        "INSERT INTO images ...", {}, sqlite_error("database is locked", 5)
    )


def io_error() -> OperationalError:
    """SQLite failing to read or write its file (SQLITE_IOERR): the database's state, not
    a record's, so neither retried nor split."""
    return OperationalError(
        "INSERT INTO images ...", {}, sqlite_error("disk I/O error", 10)
    )


# --- insert_image -------------------------------------------------------------------


def test_insert_image_stores_a_row_and_returns_its_id(database: str) -> None:
    image_id = queries.insert_image(
        "a.jpeg",
        "out_gate",
        T0,
        1234,
        terminal="wbct",
        sha256="f" * 64,
        source_url="https://cdn.example/a.jpeg",
        is_thumbnail=True,
    )
    assert stored_ids() == {"a.jpeg": image_id}
    image = queries.get_image_by_path("a.jpeg")
    assert image is not None
    assert (image.camera_id, image.terminal, image.file_size) == (
        "out_gate",
        "wbct",
        1234,
    )
    assert image.sha256 == "f" * 64 and image.source_url == "https://cdn.example/a.jpeg"
    assert image.is_thumbnail is True and image.timestamp == T0


def test_insert_image_duplicate_returns_the_existing_id(database: str) -> None:
    first = queries.insert_image("a.jpeg", "in_gate", T0, 1)
    second = queries.insert_image("a.jpeg", "other", T0 + timedelta(days=1), 2)
    assert second == first
    image = queries.get_image_by_path("a.jpeg")
    assert image is not None and image.camera_id == "in_gate" and image.file_size == 1
    assert queries.count_images() == 1


def test_insert_image_without_timestamp_means_now_in_utc(
    database: str, local_time_not_utc: None
) -> None:
    before = datetime.now(UTC)
    queries.insert_image("now.jpeg", "in_gate")
    after = datetime.now(UTC)
    image = queries.get_image_by_path("now.jpeg")
    assert image is not None and image.timestamp.tzinfo is UTC
    assert (
        before - timedelta(seconds=1) <= image.timestamp <= after + timedelta(seconds=1)
    )


def test_insert_image_with_a_session_joins_its_transaction(database: str) -> None:
    with pytest.raises(RuntimeError):
        with session_scope() as session:
            image_id = queries.insert_image("joined.jpeg", "in_gate", session=session)
            found = session.get(Image, image_id)
            assert found is not None and found.filepath == "joined.jpeg"
            raise RuntimeError("roll the outer transaction back")
    assert queries.count_images() == 0

    with session_scope() as session:
        image_id = queries.insert_image("joined.jpeg", "in_gate", session=session)
    assert stored_ids() == {"joined.jpeg": image_id}


def test_duplicate_inside_an_outer_transaction_keeps_its_other_work(
    database: str,
) -> None:
    """On PostgreSQL a failed statement would abort the whole transaction: it must not fail."""
    existing = queries.insert_image("old.jpeg", "in_gate")
    with session_scope() as session:
        run = queries.start_run("apm", "in_gate", 3, session=session)
        before = queries.insert_image(
            "new-1.jpeg", "in_gate", run_id=run.id, session=session
        )
        assert queries.insert_image("old.jpeg", "in_gate", session=session) == existing
        assert queries.insert_image("new-1.jpeg", "in_gate", session=session) == before
        after = queries.insert_image(
            "new-2.jpeg", "in_gate", run_id=run.id, session=session
        )
        queries.finish_run(
            run.id, downloaded=2, db_inserted=2, db_duplicates=1, session=session
        )
        session.execute(
            text("SELECT 1")
        ).scalar_one()  # the transaction is still usable
    assert stored_ids() == {
        "old.jpeg": existing,
        "new-1.jpeg": before,
        "new-2.jpeg": after,
    }
    (stored_run,) = queries.recent_runs()
    assert stored_run.status == "ok" and stored_run.db_duplicates == 1
    new = queries.get_image_by_path("new-2.jpeg")
    assert new is not None and new.run_id == stored_run.id


def test_insert_image_flushes_pending_objects_first(database: str) -> None:
    with session_scope() as session:
        run = DownloadRun(terminal="apm", camera_id="in_gate")
        session.add(run)
        # The run is not flushed yet; an ORM query would autoflush it, so must this.
        queries.insert_image("a.jpeg", "in_gate", session=session)
        assert run.id is not None
        queries.insert_image("b.jpeg", "in_gate", run_id=run.id, session=session)
    image = queries.get_image_by_path("b.jpeg")
    assert image is not None and image.run_id is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"filepath": ""},
        {"camera_id": ""},
        {"timestamp": "2024-01-01T00:00:00"},
        {"file_size": -1},
        {"file_size": 1.5},
    ],
)
def test_insert_image_rejects_bad_values(database: str, bad: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"filepath": "a.jpeg", "camera_id": "in_gate", **bad}
    with pytest.raises(ValueError):
        queries.insert_image(**arguments)
    assert queries.count_images() == 0


class Calls:
    """Counts the calls of a patched function."""

    def __init__(self) -> None:
        self.count = 0


def test_insert_image_retries_a_transient_error(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()
    original = queries._insert_one

    def flaky(session: Session, row: dict[str, Any]) -> int:
        calls.count += 1
        if calls.count == 1:
            raise locked_error()
        return original(session, row)

    monkeypatch.setattr(queries, "_insert_one", flaky)
    image_id = queries.insert_image("a.jpeg", "in_gate")
    assert calls.count == 2
    assert stored_ids() == {"a.jpeg": image_id}


def test_insert_image_raises_what_is_left_after_the_retries(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()
    errors: list[OperationalError] = []

    def locked(session: Session, row: dict[str, Any]) -> int:
        calls.count += 1
        errors.append(locked_error())
        raise errors[-1]

    monkeypatch.setattr(queries, "_insert_one", locked)
    with pytest.raises(OperationalError) as raised:
        queries.insert_image("a.jpeg", "in_gate")
    assert calls.count == models.retry_policy().attempts == 3
    assert raised.value is errors[-1]


def test_insert_image_does_not_retry_a_permanent_error(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()

    def broken(session: Session, row: dict[str, Any]) -> int:
        calls.count += 1
        raise IntegrityError("INSERT", {}, Exception("NOT NULL constraint failed"))

    monkeypatch.setattr(queries, "_insert_one", broken)
    with pytest.raises(IntegrityError):
        queries.insert_image("a.jpeg", "in_gate")
    assert calls.count == 1


# --- insert_images: duplicates ------------------------------------------------------


def test_duplicates_inside_one_chunk_are_counted(database: str) -> None:
    result = queries.insert_images(records(["a", "b", "a", "c", "b", "a"]))
    assert (result.inserted, result.duplicates, result.failed) == (3, 3, [])
    assert result.ids == stored_ids()
    assert set(result.ids) == {"a", "b", "c"}


def test_duplicates_across_chunks_are_counted(database: str) -> None:
    # chunks of 2 in input order: [a b] [c a] [d b] [e]
    result = queries.insert_images(
        records(["a", "b", "c", "a", "d", "b", "e"]), chunk_size=2
    )
    assert (result.inserted, result.duplicates, result.failed) == (5, 2, [])
    assert result.ids == stored_ids()


def test_duplicates_against_stored_rows_are_counted(database: str) -> None:
    old_a = queries.insert_image("a", "in_gate")
    old_b = queries.insert_images(records(["b"])).ids["b"]
    result = queries.insert_images(records(["c", "a", "d", "b"]), chunk_size=3)
    assert (result.inserted, result.duplicates, result.failed) == (2, 2, [])
    assert result.ids["a"] == old_a and result.ids["b"] == old_b
    assert result.ids == stored_ids()
    assert len(set(result.ids.values())) == 4


def test_all_kinds_of_duplicates_in_one_batch(database: str) -> None:
    queries.insert_images(records([f"p{i}" for i in range(0, 100, 3)]))
    batch = [f"p{i}" for i in range(100)] + [f"p{i}" for i in range(0, 100, 7)]
    result = queries.insert_images(records(batch), chunk_size=16)
    stored_before = len(range(0, 100, 3))
    assert result.inserted == 100 - stored_before
    assert result.duplicates == len(batch) - result.inserted
    assert result.failed == []
    assert result.ids == stored_ids()
    assert queries.count_images() == 100


def test_stored_values_come_from_the_first_record_of_a_path(database: str) -> None:
    queries.insert_images([record("a", file_size=1), record("a", file_size=2)])
    image = queries.get_image_by_path("a")
    assert image is not None and image.file_size == 1


def test_insert_images_accepts_any_iterable_and_fills_defaults(
    database: str, local_time_not_utc: None
) -> None:
    def generate() -> Iterator[Mapping[str, Any]]:
        yield {"filepath": "g1", "camera_id": "c"}
        yield {
            "filepath": "g2",
            "camera_id": "c",
            "terminal": "wbct",
            "is_thumbnail": 1,
        }

    before = datetime.now(UTC)
    result = queries.insert_images(generate())
    assert result.inserted == 2
    first, second = queries.get_image_by_path("g1"), queries.get_image_by_path("g2")
    assert first is not None and second is not None
    assert (
        first.terminal == "apm"
        and first.processed is False
        and first.is_thumbnail is False
    )
    assert second.terminal == "wbct" and second.is_thumbnail is True
    assert (
        first.timestamp >= before - timedelta(seconds=1)
        and first.timestamp.tzinfo is UTC
    )
    assert first.downloaded_at >= before - timedelta(seconds=1)


def test_empty_batch(database: str) -> None:
    assert queries.insert_images([]) == BatchResult()


# --- insert_images: validation --------------------------------------------------


@pytest.mark.parametrize("chunk_size", [0, -1, 10_001, 2.0, "500", None, True])
def test_chunk_size_out_of_range_is_refused_before_writing(
    database: str, chunk_size: Any
) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        queries.insert_images(records(["a", "b"]), chunk_size=chunk_size)
    assert queries.count_images() == 0


@pytest.mark.parametrize("chunk_size", [1, 10_000])
def test_chunk_size_limits_are_allowed(database: str, chunk_size: int) -> None:
    assert (
        queries.insert_images(records(["a", "b", "c"]), chunk_size=chunk_size).inserted
        == 3
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"camera_id": "in_gate"},
        {"filepath": None, "camera_id": "in_gate"},
        {"filepath": "x", "camera_id": ""},
        {"filepath": "x", "camera_id": "c", "timestamp": 1700000000},
        {"filepath": "x", "camera_id": "c", "colour": "red"},
    ],
    ids=[
        "no-filepath",
        "none-filepath",
        "empty-camera",
        "int-timestamp",
        "unknown-field",
    ],
)
def test_a_bad_record_is_refused_before_anything_is_written(
    database: str, bad: dict[str, Any]
) -> None:
    batch = records([f"ok{i}" for i in range(10)]) + [bad] + records(["after"])
    with pytest.raises(ValueError):
        queries.insert_images(batch, chunk_size=2)
    assert queries.count_images() == 0


# --- insert_images: failing chunks ----------------------------------------------


def test_a_chunk_that_fails_part_way_is_rolled_back_alone(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()
    original = queries._insert_chunk

    def fail_second(
        session: Session, chunk: list[dict[str, Any]]
    ) -> tuple[int, dict[str, int]]:
        calls.count += 1
        written = original(session, chunk)  # the rows are in the transaction...
        assert (
            session.execute(
                select(func.count())
                .select_from(Image)
                .where(Image.filepath == chunk[0]["filepath"])
            ).scalar_one()
            == 1
        )
        if calls.count == 2:
            raise io_error()  # ... and then the chunk fails
        return written

    monkeypatch.setattr(queries, "_insert_chunk", fail_second)
    paths = [f"p{i:02d}" for i in range(10)]
    result = queries.insert_images(records(paths), chunk_size=4)

    assert calls.count == 3  # neither retried nor split: the database's own failure
    assert [path for path, _ in result.failed] == paths[4:8]
    assert all(
        "OperationalError" in reason and "disk I/O error" in reason
        for _, reason in result.failed
    )
    assert result.inserted == 6 and result.duplicates == 0
    assert set(stored_ids()) == set(paths[:4] + paths[8:])
    assert result.ids == stored_ids()


def test_a_record_the_database_refuses_fails_alone(database: str) -> None:
    """Its chunk is split until the bad record fails alone (tests/database/test_chunk_bisect.py)."""
    run = queries.start_run("apm", "in_gate")
    batch = records([f"p{i}" for i in range(9)])
    batch[4]["run_id"] = run.id + 999  # no such run: a foreign-key violation
    batch[5]["run_id"] = run.id
    result = queries.insert_images(batch, chunk_size=3)

    assert [path for path, _ in result.failed] == ["p4"]
    reason = result.failed[0][1]
    assert "IntegrityError" in reason and "foreign key" in reason.lower()
    assert result.inserted == 8
    assert set(stored_ids()) == {f"p{i}" for i in range(9)} - {"p4"}


def test_a_transient_error_is_retried_then_succeeds(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()
    original = queries._insert_chunk

    def locked_once(
        session: Session, chunk: list[dict[str, Any]]
    ) -> tuple[int, dict[str, int]]:
        calls.count += 1
        written = original(session, chunk)
        if calls.count == 2:
            raise locked_error()
        return written

    monkeypatch.setattr(queries, "_insert_chunk", locked_once)
    paths = [f"p{i}" for i in range(6)]
    result = queries.insert_images(records(paths), chunk_size=3)
    assert calls.count == 3
    assert (result.inserted, result.duplicates, result.failed) == (6, 0, [])
    assert result.ids == stored_ids() and set(result.ids) == set(paths)


def test_a_chunk_still_failing_after_the_retries_goes_to_failed(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = queries._insert_chunk

    def always_locked(
        session: Session, chunk: list[dict[str, Any]]
    ) -> tuple[int, dict[str, int]]:
        calls.append(chunk[0]["filepath"])
        if chunk[0]["filepath"] == "p0":
            original(session, chunk)
            raise locked_error()
        return original(session, chunk)

    monkeypatch.setattr(queries, "_insert_chunk", always_locked)
    result = queries.insert_images(records([f"p{i}" for i in range(4)]), chunk_size=2)
    assert calls == ["p0", "p0", "p0", "p2"]  # three attempts, then the next chunk
    assert [path for path, _ in result.failed] == ["p0", "p1"]
    assert "database is locked" in result.failed[0][1]
    assert set(stored_ids()) == {"p2", "p3"}


def test_with_a_session_each_chunk_is_a_savepoint(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()
    original = queries._insert_chunk

    def fail_second(
        session: Session, chunk: list[dict[str, Any]]
    ) -> tuple[int, dict[str, int]]:
        calls.count += 1
        written = original(session, chunk)
        if calls.count == 2:
            raise io_error()  # after writing
        return written

    monkeypatch.setattr(queries, "_insert_chunk", fail_second)
    with savepoint_events() as savepoints, session_scope() as session:
        run = queries.start_run("apm", "in_gate", session=session)
        result = queries.insert_images(
            records([f"p{i}" for i in range(6)]), chunk_size=2, session=session
        )
        later = queries.insert_image("later.jpeg", "in_gate", session=session)
        run_id = run.id

    assert savepoints == ["savepoint", "savepoint", "rollback", "savepoint"]
    assert [path for path, _ in result.failed] == ["p2", "p3"]
    assert result.inserted == 4
    assert stored_ids() == {**result.ids, "later.jpeg": later}
    assert [r.id for r in queries.recent_runs()] == [run_id]


def test_a_database_error_in_a_savepoint_leaves_the_outer_transaction_usable(
    database: str,
) -> None:
    """A failed statement aborts a PostgreSQL transaction: only its savepoint may go."""
    with session_scope() as session:
        run = queries.start_run("apm", "in_gate", session=session)
        batch = records(["a", "b", "c", "d"])
        batch[2]["run_id"] = run.id + 999
        result = queries.insert_images(batch, chunk_size=2, session=session)
        assert [path for path, _ in result.failed] == ["c"]
        after = queries.insert_image("after", "in_gate", session=session)
        queries.finish_run(run.id, db_inserted=result.inserted, session=session)
    assert stored_ids() == {**result.ids, "after": after}
    assert set(result.ids) == {"a", "b", "d"}
    assert queries.recent_runs()[0].db_inserted == 3


def test_with_a_session_the_batch_commits_or_rolls_back_with_it(database: str) -> None:
    with pytest.raises(RuntimeError):
        with session_scope() as session:
            result = queries.insert_images(records(["a", "b", "c"]), session=session)
            assert result.inserted == 3
            raise RuntimeError("outer failure")
    assert queries.count_images() == 0


def test_with_a_session_a_transient_error_is_retried_in_a_new_savepoint(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()
    original = queries._insert_chunk

    def locked_once(
        session: Session, chunk: list[dict[str, Any]]
    ) -> tuple[int, dict[str, int]]:
        calls.count += 1
        written = original(session, chunk)
        if calls.count == 1:
            raise locked_error()
        return written

    monkeypatch.setattr(queries, "_insert_chunk", locked_once)
    with session_scope() as session:
        result = queries.insert_images(records(["a", "b"]), session=session)
    assert calls.count == 2
    assert (result.inserted, result.duplicates, result.failed) == (2, 0, [])
    assert set(stored_ids()) == {"a", "b"}


# --- is_transient_error -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        # SQLite, by result code (extended codes too), whatever the message says.
        pytest.param(locked_error(), True, id="sqlite-busy"),
        pytest.param(
            OperationalError("s", {}, sqlite_error("x", 517)), True, id="busy-snapshot"
        ),
        pytest.param(
            OperationalError("s", {}, sqlite_error("database table is locked", 6)),
            True,
            id="sqlite-locked",
        ),
        pytest.param(
            OperationalError("s", {}, sqlite_error("no such table: images", 1)),
            False,
            id="sqlite-error",
        ),
        pytest.param(
            OperationalError("s", {}, sqlite_error("database is locked", 1)),
            False,
            id="sqlite-code-wins-over-message",
        ),
        pytest.param(
            OperationalError("s", {}, sqlite_error("unable to open database", 14)),
            False,
            id="sqlite-cantopen",
        ),
        pytest.param(
            IntegrityError("s", {}, sqlite_error("UNIQUE constraint failed", 2067)),
            False,
            id="sqlite-unique",
        ),
        # SQLite errors without a code (Python 3.10): SQLite's fixed messages.
        pytest.param(
            OperationalError("s", {}, sqlite3.OperationalError("database is locked")),
            True,
            id="sqlite-no-code-busy",
        ),
        pytest.param(
            OperationalError("s", {}, sqlite3.OperationalError("no such table: x")),
            False,
            id="sqlite-no-code-other",
        ),
        # PostgreSQL, by SQLSTATE, in any language.
        pytest.param(
            OperationalError("s", {}, pg_errors.DeadlockDetected("Verklemmung")),
            True,
            id="pg-40P01",
        ),
        pytest.param(
            OperationalError("s", {}, pg_errors.SerializationFailure("x")),
            True,
            id="pg-40001",
        ),
        pytest.param(
            OperationalError("s", {}, pg_errors.AdminShutdown("x")),
            True,
            id="pg-57P01",
        ),
        pytest.param(
            OperationalError("s", {}, pg_errors.CannotConnectNow("x")),
            True,
            id="pg-57P03",
        ),
        pytest.param(
            OperationalError("s", {}, pg_errors.TooManyConnections("x")),
            True,
            id="pg-53300",
        ),
        pytest.param(
            OperationalError("s", {}, pg_errors.LockNotAvailable("x")),
            True,
            id="pg-55P03",
        ),
        pytest.param(
            OperationalError("s", {}, pg_errors.lookup("08006")("x")),
            True,
            id="pg-08006",
        ),
        pytest.param(
            IntegrityError("s", {}, pg_errors.UniqueViolation("deadlock detected")),
            False,
            id="pg-code-wins-over-message",
        ),
        pytest.param(
            OperationalError("s", {}, pg_errors.DiskFull("x")),
            False,
            id="pg-53100",
        ),
        pytest.param(
            DBAPIError("s", {}, pg_errors.UndefinedTable("x")),
            False,
            id="pg-42P01",
        ),
        # psycopg without a SQLSTATE: libpq lost or never reached the server.
        pytest.param(
            OperationalError("s", {}, psycopg.OperationalError("consuming input")),
            True,
            id="pg-no-sqlstate",
        ),
        pytest.param(
            DBAPIError("s", {}, Exception("whatever"), connection_invalidated=True),
            True,
            id="invalidated",
        ),
        pytest.param(ValueError("database is locked"), False, id="not-a-db-error"),
        pytest.param(RuntimeError("boom"), False, id="runtime-error"),
    ],
)
def test_is_transient_error(error: BaseException, transient: bool) -> None:
    assert models.is_transient_error(error) is transient


def test_a_real_locked_sqlite_database_is_transient(sqlite_url: str) -> None:
    models.configure(sqlite_url)
    models.init_db()
    path = models.get_engine().url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    impatient = create_engine(sqlite_url, connect_args={"timeout": 0})
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError) as raised:
            with impatient.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO download_runs (terminal, camera_id) VALUES ('a', 'b')"
                )
        assert models.is_transient_error(raised.value)
    finally:
        holder.rollback()
        holder.close()
        impatient.dispose()


def test_a_refused_postgresql_connection_is_transient() -> None:
    engine = create_engine(
        models.normalize_url("postgresql://postgres@127.0.0.1:9/none"),
        connect_args={"connect_timeout": 2},
    )
    try:
        with pytest.raises(OperationalError) as raised:
            engine.connect()
    finally:
        engine.dispose()
    assert models.is_transient_error(raised.value)


# --- reads ------------------------------------------------------------------------

LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def pictures(database: str) -> dict[str, int]:
    """Pictures of two terminals and streams, stored out of time order."""
    rows = [
        record("apm/in/3", timestamp=T0 + timedelta(hours=3)),
        record("apm/in/0", timestamp=T0),
        record("apm/in/2", timestamp=T0 + timedelta(hours=2)),
        record("apm/in/1", timestamp=T0 + timedelta(hours=1)),
        record("apm/out/1", camera_id="out_gate", timestamp=T0 + timedelta(hours=1)),
        record("wbct/in/1", terminal="wbct", timestamp=T0 + timedelta(hours=1)),
        record("apm/in/early", timestamp=T0 - timedelta(days=1)),
    ]
    return queries.insert_images(rows).ids


def paths(images: list[Image]) -> list[str]:
    return [image.filepath for image in images]


def test_get_image_by_path(pictures: dict[str, int]) -> None:
    image = queries.get_image_by_path("apm/in/2")
    assert image is not None and image.id == pictures["apm/in/2"]
    assert image.timestamp == T0 + timedelta(hours=2)
    assert queries.get_image_by_path("missing") is None


def test_list_images_orders_by_time_then_id(pictures: dict[str, int]) -> None:
    listed = queries.list_images()
    assert paths(listed)[:2] == ["apm/in/early", "apm/in/0"]
    assert [image.timestamp for image in listed] == sorted(
        image.timestamp for image in listed
    )
    same_hour = [
        image for image in listed if image.timestamp == T0 + timedelta(hours=1)
    ]
    assert [image.id for image in same_hour] == sorted(image.id for image in same_hour)
    assert len(same_hour) == 3


def test_list_images_filters(pictures: dict[str, int]) -> None:
    assert paths(queries.list_images(camera_id="out_gate")) == ["apm/out/1"]
    assert paths(queries.list_images(terminal="wbct")) == ["wbct/in/1"]
    assert paths(
        queries.list_images(camera_id="in_gate", terminal="apm", start=T0)
    ) == ["apm/in/0", "apm/in/1", "apm/in/2", "apm/in/3"]
    assert paths(queries.list_images(camera_id="in_gate", limit=2)) == [
        "apm/in/early",
        "apm/in/0",
    ]
    assert queries.list_images(camera_id="nobody") == []


def test_start_is_inclusive_and_end_exclusive(pictures: dict[str, int]) -> None:
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    window = queries.list_images(terminal="apm", start=start, end=end)
    # apm/in/1 and apm/out/1 share a time: the one stored first comes first.
    assert paths(window) == ["apm/in/1", "apm/out/1", "apm/in/2"]
    assert queries.count_images(terminal="apm", start=start, end=end) == 3
    assert queries.count_images(start=end, end=end) == 0
    assert paths(queries.list_images(start=T0 + timedelta(hours=3))) == ["apm/in/3"]
    assert paths(queries.list_images(end=T0)) == ["apm/in/early"]


def test_bounds_in_other_zones_and_naive_bounds_mean_the_same_instant(
    pictures: dict[str, int],
) -> None:
    start_utc, end_utc = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    expected = sorted(paths(queries.list_images(start=start_utc, end=end_utc)))
    assert len(expected) == 4
    in_los_angeles = queries.list_images(
        start=start_utc.astimezone(LOS_ANGELES), end=end_utc.astimezone(LOS_ANGELES)
    )
    assert sorted(paths(in_los_angeles)) == expected
    naive = queries.list_images(
        start=start_utc.replace(tzinfo=None), end=end_utc.replace(tzinfo=None)
    )
    assert sorted(paths(naive)) == expected
    assert (
        queries.count_images(
            start=start_utc.astimezone(LOS_ANGELES), end=end_utc.replace(tzinfo=None)
        )
        == 4
    )


def test_count_images_matches_list_images(pictures: dict[str, int]) -> None:
    assert queries.count_images() == 7
    assert queries.count_images(camera_id="in_gate") == 6
    assert queries.count_images(terminal="apm", camera_id="in_gate") == 5
    assert queries.count_images(start=T0) == 6
    assert queries.count_images(end=T0) == 1


def test_unprocessed_images_and_marking_them(pictures: dict[str, int]) -> None:
    oldest = queries.get_unprocessed_images(2)
    assert paths(oldest) == ["apm/in/early", "apm/in/0"]
    assert all(image.processed is False for image in oldest)
    assert queries.mark_image_processed(oldest[0].id) is True
    assert queries.mark_image_processed(oldest[1].id) is True
    assert paths(queries.get_unprocessed_images(1)) == ["apm/in/1"]
    assert len(queries.get_unprocessed_images()) == 5
    marked = queries.get_image_by_path("apm/in/early")
    assert marked is not None and marked.processed is True
    assert queries.mark_image_processed(10**9) is False


def test_known_filepaths_in_long_lists(database: str) -> None:
    stored = [f"k{i:05d}" for i in range(0, 2600, 2)]
    queries.insert_images(records(stored), chunk_size=1000)
    asked = [f"k{i:05d}" for i in range(2600)]
    assert queries.known_filepaths(asked) == set(stored)
    assert queries.known_filepaths([]) == set()
    assert queries.known_filepaths(["nope"]) == set()


def test_daily_counts_per_day_terminal_and_stream(database: str) -> None:
    late_evening_in_la = datetime(
        2024, 6, 1, 20, 30, tzinfo=LOS_ANGELES
    )  # 06-02 03:30 UTC
    queries.insert_images(
        [
            record("a", timestamp=datetime(2024, 6, 1, 0, 0, tzinfo=UTC), file_size=10),
            record(
                "b",
                timestamp=datetime(2024, 6, 1, 23, 59, tzinfo=UTC),
                file_size=5,
                is_thumbnail=True,
            ),
            record("c", timestamp=late_evening_in_la, file_size=None),
            record(
                "d",
                timestamp=datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
                camera_id="out_gate",
                file_size=7,
            ),
            record(
                "e",
                timestamp=datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
                terminal="wbct",
                file_size=1,
            ),
        ]
    )
    assert queries.daily_counts() == [
        DailyCount(date(2024, 6, 1), "apm", "in_gate", 2, 1, 15),
        DailyCount(date(2024, 6, 1), "apm", "out_gate", 1, 0, 7),
        DailyCount(date(2024, 6, 1), "wbct", "in_gate", 1, 0, 1),
        DailyCount(date(2024, 6, 2), "apm", "in_gate", 1, 0, 0),
    ]
    # The terminal's own days: "a" (00:00 UTC) is the evening before in Los Angeles,
    # "c" (20:30 in Los Angeles) stays on June 1st.
    assert queries.daily_counts(timezone_name="America/Los_Angeles") == [
        DailyCount(date(2024, 5, 31), "apm", "in_gate", 1, 0, 10),
        DailyCount(date(2024, 6, 1), "apm", "in_gate", 2, 1, 5),
        DailyCount(date(2024, 6, 1), "apm", "out_gate", 1, 0, 7),
        DailyCount(date(2024, 6, 1), "wbct", "in_gate", 1, 0, 1),
    ]
    with pytest.raises(ValueError, match="unknown time zone"):
        queries.daily_counts(timezone_name="Mars/Olympus_Mons")


def test_download_runs(database: str) -> None:
    before = datetime.now(UTC)
    run = queries.start_run("apm", "in_gate", requested=10)
    assert run.id is not None and run.status == "running"
    assert run.requested == 10 and run.downloaded == 0 and run.finished_at is None
    assert run.started_at.tzinfo is not None and run.started_at >= before - timedelta(
        seconds=1
    )

    finished = queries.finish_run(
        run.id,
        status="partial",
        downloaded=8,
        failed=2,
        bytes=12345,
        db_inserted=7,
        db_duplicates=1,
    )
    assert finished.status == "partial" and finished.finished_at is not None
    assert (finished.downloaded, finished.failed, finished.bytes) == (8, 2, 12345)

    second = queries.start_run("apm", "out_gate")
    third = queries.start_run("wbct", "in_gate")
    assert [r.id for r in queries.recent_runs()] == [third.id, second.id, run.id]
    assert [r.id for r in queries.recent_runs(limit=1)] == [third.id]
    (stored,) = [r for r in queries.recent_runs() if r.id == run.id]
    assert (
        stored.status == "partial"
        and stored.db_inserted == 7
        and stored.db_duplicates == 1
    )
    assert stored.finished_at is not None and stored.finished_at.tzinfo is UTC
    assert stored.started_at.tzinfo is UTC and stored.finished_at >= stored.started_at

    with pytest.raises(ValueError, match="unknown run counters"):
        queries.finish_run(run.id, pictures=3)
    with pytest.raises(LookupError):
        queries.finish_run(10**9)


def test_read_results_are_detached_with_their_columns_loaded(
    pictures: dict[str, int],
) -> None:
    run = queries.start_run("apm", "in_gate")
    run = queries.finish_run(run.id, downloaded=1)
    results: list[Any] = [
        queries.get_image_by_path("apm/in/0"),
        *queries.list_images(limit=3),
        *queries.get_unprocessed_images(2),
        run,
        *queries.recent_runs(),
    ]
    for obj in results:
        state = inspect(obj)
        assert state.detached, obj
        assert not state.unloaded and not state.expired_attributes, obj
        for column in state.mapper.column_attrs:
            getattr(obj, column.key)  # no DetachedInstanceError
    image = results[0]
    assert isinstance(image, Image) and image.filepath == "apm/in/0"
    assert image.timestamp.tzinfo is UTC


def test_reads_can_share_a_session(pictures: dict[str, int]) -> None:
    with session_scope() as session:
        image = queries.get_image_by_path("apm/in/1", session=session)
        assert image is not None and image in session
        assert queries.count_images(session=session) == 7
        assert queries.mark_image_processed(image.id, session=session) is True
        assert image.processed is True
        assert len(queries.list_images(camera_id="in_gate", session=session)) == 6
        assert queries.known_filepaths(["apm/in/1", "x"], session=session) == {
            "apm/in/1"
        }
    stored = queries.get_image_by_path("apm/in/1")
    assert stored is not None and stored.processed is True
