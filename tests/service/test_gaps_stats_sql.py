"""``gaps`` and ``stats`` are counted by the database on ``images.local_day`` and its index.

Every statement either runs against ``images`` is caught as it is sent, and the
database is asked for its plan: on SQLite each reaches the table only through an
index led by (terminal, camera_id, local_day), never by reading the table itself
(on PostgreSQL, through some index), and the
per-day counts are a ``GROUP BY images.local_day``. The Python-side walks over
pictures (``iter_images``, ``list_images``) are made to fail, so neither command
can fall back to counting in Python. SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import event

from modules.database import models, queries
from modules.service.gaps import find_gaps
from tests.service.archive_builder import (
    Archive,
    day,
    outage_hours,
    record,
    wall_times,
)

LOCAL_DAY_INDEXES = ("ix_images_terminal_camera_local_day", "ix_images_thumbnails")


@pytest.fixture
def archive(database: str, tmp_path: Path) -> Archive:
    """Four days of in_gate (a camera outage on day 2, day 3 never archived), two of out_gate."""
    built = Archive(tmp_path / "images")
    off = outage_hours(day(2), 10, 12)
    for n in (1, 2, 4):
        walls = [t for t in wall_times(day(n)) if t not in off]
        built.store(walls, thumbnails=walls[:2])
        record(day(n), "complete", len(walls), len(walls), thumbnails=2)
    for n in (1, 2):
        built.store(wall_times(day(n)), stream="out_gate")
    return built


@contextmanager
def statements() -> Iterator[list[tuple[str, Any]]]:
    """The statements sent to the database meanwhile, with their parameters."""
    engine = models.get_engine()
    seen: list[tuple[str, Any]] = []

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any
    ) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def plan(statement: str, parameters: Any) -> str:
    """The database's plan of ``statement``, as one string."""
    engine = models.get_engine()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        # Tiny test tables: make a sequential scan the last resort, so the plan
        # says whether an index *can* serve the statement.
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(f"EXPLAIN {statement}", parameters)
        return "\n".join(str(row[0]) for row in cursor.fetchall())
    finally:
        raw.rollback()
        raw.close()


def image_reads(found: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(statement, plan) of every statement that reads ``images``."""
    return [
        (statement, plan(statement, parameters))
        for statement, parameters in found
        if re.search(r"\bFROM images\b", statement)
    ]


def assert_through_local_day_indexes(reads: list[tuple[str, str]]) -> None:
    """SQLite: every access to ``images`` names a local_day index. PostgreSQL (whose
    choice among indexes on tables this small says little): with sequential scans
    made the last resort, none is left, so an index serves every statement."""
    assert reads
    sqlite = models.get_engine().dialect.name == "sqlite"
    for statement, shown in reads:
        assert "Seq Scan on images" not in shown, (statement, shown)
        if not sqlite:
            assert re.search(r"Index (Only )?Scan", shown), (statement, shown)
            continue
        accesses = [
            line
            for line in shown.splitlines()
            if re.search(r"\b(SCAN|SEARCH) images(_\d+)?\b", line)
        ]
        assert accesses, (statement, shown)
        for line in accesses:
            assert any(
                index in line for index in LOCAL_DAY_INDEXES
            ), f"{line!r} reads images without a local_day index:\n{statement}"


def no_python_walks(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("pictures walked in Python")

    monkeypatch.setattr(queries, "iter_images", refuse)
    monkeypatch.setattr(queries, "list_images", refuse)


def test_gaps_reads_pictures_only_through_the_local_day_index(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_python_walks(monkeypatch)
    with statements() as found:
        report = find_gaps(start=day(1), end=day(4), today=day(5))

    # What it found is right (the subject here is how).
    assert [(s.stream, s.days_with_pictures) for s in report.streams] == [
        ("in_gate", 3),
        ("out_gate", 2),
    ]
    assert [(d.stream, d.day) for d in report.never_archived] == [
        ("in_gate", day(3)),
        ("out_gate", day(3)),
        ("out_gate", day(4)),
    ]
    assert [(o.stream, o.last_before.date()) for o in report.outages] == [
        ("in_gate", date(2025, 9, 2))
    ]
    reads = image_reads(found)
    assert_through_local_day_indexes(reads)
    per_day = [s for s, _ in reads if "GROUP BY images.local_day" in s]
    assert len(per_day) >= 2  # each stream's days counted by the database


def test_stats_counts_by_the_stored_local_day_through_its_index(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_python_walks(monkeypatch)
    with statements() as found:
        counts = queries.daily_counts(timezone_name=models.LOCAL_DAY_TIMEZONE)

    assert [(c.camera_id, c.day, c.pictures, c.thumbnails) for c in counts] == [
        ("in_gate", day(1), 144, 2),
        ("out_gate", day(1), 144, 0),
        ("in_gate", day(2), 144 - 12, 2),
        ("out_gate", day(2), 144, 0),
        ("in_gate", day(4), 144, 2),
    ]
    reads = image_reads(found)
    assert_through_local_day_indexes(reads)
    grouped = [s for s, _ in reads if re.search(r"GROUP BY .*images\.local_day", s)]
    assert len(grouped) == len(reads) == 2  # pictures and bytes; thumbnails
