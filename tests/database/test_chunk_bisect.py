"""A chunk the database refuses for one record is split until that record fails alone.

Real bad records that ``_normalize_record`` lets through and a real database
refuses: a file size beyond a 64-bit integer (SQLite's driver, PostgreSQL's
BIGINT), a run that does not exist (a foreign key), a stream an operator's trigger
refuses, and on PostgreSQL a NUL byte in a string, a filepath over VARCHAR(1024) and
one within it whose bytes exceed the unique index's row limit (an OperationalError
by its class, split by its SQLSTATE, 54000).
A database that is down fails its chunk whole after the retries, never split: a
PostgreSQL server whose connections are refused (transient, retried) and a read-only SQLite file (an
OperationalError, not retried). Only "locked forever" is a seam, as in
``test_queries.py``: a real lock would wait SQLite's 30 s busy timeout per attempt.
"""

from __future__ import annotations

import math
import random
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from modules.database import models, queries
from modules.database.models import Image, session_scope
from tests.database.savepoints import savepoint_events

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
CJK = random.Random(1).choices(range(0x4E00, 0xA000), k=1000)
"""1,000 characters, 3,000 bytes: within VARCHAR(1024), over a btree row's 2,704 bytes."""
RETIRED = "retired_gate"
"""The stream the operator's trigger refuses."""


def record(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "filepath": f"apm/in_gate/2024-06-01/p{n:03d}.jpg",
        "camera_id": "in_gate",
        "timestamp": T0 + timedelta(seconds=n),
        **fields,
    }


def stored_paths() -> set[str]:
    with session_scope() as session:
        return set(session.execute(select(Image.filepath)).scalars())


class Pieces:
    """Spy on ``queries._write_chunk``: the size of every piece written, retries apart."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        real = queries._write_chunk

        def spy(
            chunk: list[dict[str, Any]], session: Session | None
        ) -> tuple[int, dict[str, int]]:
            self.sizes.append(len(chunk))
            return real(chunk, session)

        monkeypatch.setattr(queries, "_write_chunk", spy)


@pytest.fixture
def pieces(monkeypatch: pytest.MonkeyPatch) -> Pieces:
    return Pieces(monkeypatch)


def add_operator_trigger() -> None:
    """What an operator might add: a trigger refusing a retired stream's rows."""
    engine = models.get_engine()
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_retired BEFORE INSERT ON images "
                f"WHEN NEW.camera_id = '{RETIRED}' "
                "BEGIN SELECT RAISE(ABORT, 'stream retired by the operator'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_retired() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.camera_id = '{RETIRED}' THEN "
                "RAISE EXCEPTION 'stream retired by the operator'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_retired BEFORE INSERT ON images "
                "FOR EACH ROW EXECUTE FUNCTION refuse_retired()"
            )


BAD: dict[str, tuple[Callable[[], dict[str, Any]], str, str | None]] = {
    "file-size-out-of-range": (
        lambda: {"file_size": 2**70},
        r"OverflowError: Python int too large|DataError: bigint out of range",
        None,
    ),
    "no-such-run": (
        lambda: {"run_id": 999_999},
        r"IntegrityError: .*foreign key",
        None,
    ),
    "operator-trigger": (
        lambda: {"camera_id": RETIRED},
        r"(IntegrityError|ProgrammingError): stream retired by the operator",
        None,
    ),
    "nul-byte": (
        lambda: {"camera_id": "in\x00gate"},
        r"DataError: .*NUL",
        "postgresql",
    ),
    "filepath-over-the-index-row-limit": (
        lambda: {"filepath": "apm/in_gate/" + "".join(map(chr, CJK)) + ".jpg"},
        r"OperationalError: index row size \d+ exceeds btree",
        "postgresql",
    ),
    "filepath-too-long": (
        lambda: {"filepath": "apm/in_gate/2024-06-01/" + "x" * 1100 + ".jpg"},
        r"DataError: value too long for type character varying\(1024\)",
        "postgresql",
    ),
}


def bad_batch(kind: str, size: int, at: list[int]) -> list[dict[str, Any]]:
    fields, _, only = BAD[kind]
    if only is not None and models.get_engine().dialect.name != only:
        pytest.skip(f"{kind}: only {only} refuses it")
    if kind == "operator-trigger":
        add_operator_trigger()
    return [record(n, **fields()) if n in at else record(n) for n in range(size)]


@pytest.mark.parametrize("kind", list(BAD))
def test_one_bad_record_among_50_fails_alone(
    database: str, pieces: Pieces, kind: str
) -> None:
    batch = bad_batch(kind, 50, at=[17])
    result = queries.insert_images(batch)  # one chunk of 500

    bad_path = batch[17]["filepath"]
    assert [path for path, _ in result.failed] == [bad_path]
    assert re.search(BAD[kind][1], result.failed[0][1], re.IGNORECASE | re.DOTALL)
    assert (result.inserted, result.duplicates, result.refused) == (49, 0, 1)
    good = {row["filepath"] for row in batch} - {bad_path}
    assert stored_paths() == good == set(result.ids)
    # Halves down to the bad record: the chunk, then two pieces per level.
    assert pieces.sizes[0] == 50
    assert len(pieces.sizes) <= 1 + 2 * math.ceil(math.log2(50))


def test_several_bad_records_over_several_chunks(database: str, pieces: Pieces) -> None:
    batch = bad_batch("no-such-run", 120, at=[0, 33, 34, 59, 119])
    batch.append(record(5))  # a duplicate of a good record: counted, not failed
    result = queries.insert_images(batch, chunk_size=60)

    bad = [batch[n]["filepath"] for n in (0, 33, 34, 59, 119)]
    assert [path for path, _ in result.failed] == bad
    assert (result.inserted, result.duplicates, result.refused) == (115, 1, 5)
    assert stored_paths() == {row["filepath"] for row in batch} - set(bad)
    assert stored_paths() == set(result.ids)
    assert len(pieces.sizes) < 2 * 5 * math.ceil(math.log2(60)) + 2


def test_pieces_are_savepoints_and_the_callers_transaction_goes_on(
    database: str,
) -> None:
    """On PostgreSQL a refused statement aborts the transaction: only its savepoint goes."""
    batch = bad_batch("operator-trigger", 20, at=[3, 12])
    with savepoint_events() as savepoints, session_scope() as session:
        run = queries.start_run("apm", "in_gate", 20, session=session)
        result = queries.insert_images(batch, session=session)
        queries.finish_run(run.id, db_inserted=result.inserted, session=session)

    assert [path for path, _ in result.failed] == [
        batch[3]["filepath"],
        batch[12]["filepath"],
    ]
    assert result.inserted == 18
    assert stored_paths() == {row["filepath"] for row in batch} - {
        batch[3]["filepath"],
        batch[12]["filepath"],
    }
    assert queries.recent_runs(1)[0].db_inserted == 18
    # Each refused piece rolled back to its own savepoint, nothing more.
    assert savepoints.count("rollback") >= 2
    assert savepoints.count("savepoint") > savepoints.count("rollback")


@pytest.fixture
def postgres_gone_down(postgres_url: str) -> Iterator[list[int]]:
    """A PostgreSQL archive whose server stops answering: its schema is made, then every
    new connection goes to a closed port (refused: transient, retried). Yields the
    connection attempts."""
    models.configure(postgres_url, retry_attempts=3, retry_delay=0.01)
    models.init_db()
    engine = models.get_engine()
    engine.dispose()  # no pooled connection left: the next write connects
    attempts: list[int] = []

    def to_closed_port(
        dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]
    ) -> None:
        attempts.append(1)
        cparams["port"] = 1

    event.listen(engine, "do_connect", to_closed_port)
    try:
        yield attempts
    finally:
        event.remove(engine, "do_connect", to_closed_port)


def test_a_database_that_is_down_fails_the_chunk_whole_after_its_retries(
    postgres_gone_down: list[int], pieces: Pieces
) -> None:
    batch = [record(n) for n in range(50)]
    result = queries.insert_images(batch)
    assert pieces.sizes == [50], "a dead database is not split into pieces"
    assert len(postgres_gone_down) == 3  # the policy's attempts, no more
    assert [path for path, _ in result.failed] == [row["filepath"] for row in batch]
    assert all("Connection refused" in reason for _, reason in result.failed)
    assert (result.inserted, result.refused) == (0, 0)


def test_a_read_only_sqlite_file_fails_the_chunk_whole_at_once(
    sqlite_url: str, tmp_path: Path, pieces: Pieces
) -> None:
    """Not transient, but the database's state (an OperationalError): every piece would fail."""
    models.configure(sqlite_url, retry_attempts=3, retry_delay=0.01)
    models.init_db()
    database = models.get_engine().url.database
    models.configure(f"sqlite:///file:{database}?mode=ro&uri=true")
    batch = [record(n) for n in range(50)]
    result = queries.insert_images(batch)
    assert pieces.sizes == [50]
    assert len(result.failed) == 50
    assert "readonly database" in result.failed[0][1]
    assert (result.inserted, result.refused) == (0, 0)


def test_a_chunk_locked_forever_is_retried_then_fails_whole(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = queries._insert_chunk

    def locked(
        session: Session, chunk: list[dict[str, Any]]
    ) -> tuple[int, dict[str, int]]:
        calls.append(len(chunk))
        real(session, chunk[:10])
        error = sqlite3.OperationalError("database is locked")
        setattr(error, "sqlite_errorcode", 5)
        raise OperationalError("INSERT INTO images ...", {}, error)

    monkeypatch.setattr(queries, "_insert_chunk", locked)
    result = queries.insert_images([record(n) for n in range(50)])
    assert calls == [50, 50, 50]  # the policy's 3 attempts, never split
    assert len(result.failed) == 50 and (result.inserted, result.refused) == (0, 0)
    assert "database is locked" in result.failed[0][1]
    assert stored_paths() == set()
