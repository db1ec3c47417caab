"""A database as version 0.1.0 made it: its DDL, written out, and rows of every kind.

The DDL is what 0.1.0's ``Base.metadata.create_all`` emitted (SQLite and
PostgreSQL), copied here so that the tests keep building the old schema whatever
the models become. Version 0.1.0 kept no ``alembic_version`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import create_engine, text

from modules.database import models

UTC = timezone.utc

_TABLES = """
CREATE TABLE download_runs (
    id {serial} NOT NULL,
    started_at {timestamp} NOT NULL,
    finished_at {timestamp},
    terminal VARCHAR(64) NOT NULL,
    camera_id VARCHAR(64) NOT NULL,
    requested INTEGER NOT NULL,
    downloaded INTEGER NOT NULL,
    already_present INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    bytes BIGINT NOT NULL,
    db_inserted INTEGER NOT NULL,
    db_duplicates INTEGER NOT NULL,
    db_failed INTEGER NOT NULL,
    status VARCHAR(32) NOT NULL,
    PRIMARY KEY (id)
);
CREATE TABLE images (
    id {serial} NOT NULL,
    filepath VARCHAR(1024) NOT NULL,
    camera_id VARCHAR(64) NOT NULL,
    terminal VARCHAR(64) NOT NULL,
    timestamp {timestamp} NOT NULL,
    file_size BIGINT,
    sha256 VARCHAR(64),
    source_url TEXT,
    is_thumbnail BOOLEAN NOT NULL,
    downloaded_at {timestamp} NOT NULL,
    run_id INTEGER,
    processed BOOLEAN NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (filepath),
    FOREIGN KEY(run_id) REFERENCES download_runs (id) ON DELETE SET NULL
);
CREATE INDEX ix_images_camera_timestamp ON images (camera_id, timestamp);
CREATE INDEX ix_images_timestamp ON images (timestamp);
CREATE TABLE day_claims (
    id {serial} NOT NULL,
    terminal VARCHAR(64) NOT NULL,
    camera_id VARCHAR(64) NOT NULL,
    day DATE NOT NULL,
    status VARCHAR(16) NOT NULL,
    worker VARCHAR(128),
    lease_until {timestamp},
    attempts INTEGER NOT NULL,
    updated_at {timestamp} NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (terminal, camera_id, day)
)
"""
_TYPES = {
    "sqlite": {"serial": "INTEGER", "timestamp": "DATETIME"},
    "postgresql": {"serial": "SERIAL", "timestamp": "TIMESTAMP WITH TIME ZONE"},
}

T0 = datetime(2025, 9, 6, 23, 7, 34, 123456, tzinfo=UTC)


@dataclass(frozen=True)
class LegacyRows:
    """What was written into the 0.1.0 database, column by column."""

    runs: list[dict[str, Any]]
    images: list[dict[str, Any]]
    claims: list[dict[str, Any]]


def legacy_rows() -> LegacyRows:
    """Two runs (one finished), images of both (processed or not, a thumbnail, one
    without a run) with microsecond timestamps, and day claims."""
    runs = [
        {
            "id": 1,
            "started_at": T0 - timedelta(hours=2),
            "finished_at": T0 - timedelta(hours=1, microseconds=7),
            "terminal": "apm",
            "camera_id": "in_gate",
            "requested": 3,
            "downloaded": 2,
            "already_present": 1,
            "failed": 0,
            "bytes": 5_000_000_000,
            "db_inserted": 2,
            "db_duplicates": 1,
            "db_failed": 0,
            "status": "ok",
        },
        {
            "id": 2,
            "started_at": T0,
            "finished_at": None,
            "terminal": "wbct",
            "camera_id": "out_gate",
            "requested": 0,
            "downloaded": 0,
            "already_present": 0,
            "failed": 0,
            "bytes": 0,
            "db_inserted": 0,
            "db_duplicates": 0,
            "db_failed": 0,
            "status": "running",
        },
    ]
    images = [
        {
            "id": i + 1,
            "filepath": f"/srv/archive/apm/in_gate/2025-09-06/in_gate_{i:02d}.jpg",
            "camera_id": "in_gate" if i % 3 else "out_gate",
            "terminal": "apm" if i % 4 else "wbct",
            "timestamp": T0 + timedelta(minutes=5 * i, microseconds=i),
            "file_size": None if i == 4 else 40_000 + i,
            "sha256": None if i == 4 else f"{i:064x}",
            "source_url": None if i == 3 else f"https://cdn.example/{i}.jpg",
            "is_thumbnail": i == 2,
            "downloaded_at": T0 + timedelta(days=1, seconds=i),
            "run_id": None if i == 5 else 1 + i % 2,
            "processed": i % 2 == 0,
        }
        for i in range(8)
    ]
    claims = [
        {
            "id": 1,
            "terminal": "apm",
            "camera_id": "in_gate",
            "day": date(2025, 9, 6),
            "status": "done",
            "worker": "host-1",
            "lease_until": T0 + timedelta(minutes=2),
            "attempts": 1,
            "updated_at": T0 + timedelta(minutes=1),
        },
        {
            "id": 2,
            "terminal": "apm",
            "camera_id": "in_gate",
            "day": date(2025, 9, 7),
            "status": "pending",
            "worker": None,
            "lease_until": None,
            "attempts": 0,
            "updated_at": T0,
        },
    ]
    return LegacyRows(runs, images, claims)


def build_legacy_database(url: str) -> LegacyRows:
    """Create version 0.1.0's tables at ``url`` (no version table) and fill them."""
    engine = create_engine(models.normalize_url(url))
    dialect = engine.dialect.name
    rows = legacy_rows()
    try:
        with engine.begin() as connection:
            for statement in _TABLES.format(**_TYPES[dialect]).split(";"):
                connection.exec_driver_sql(statement)
            for table, values in (
                ("download_runs", rows.runs),
                ("images", rows.images),
                ("day_claims", rows.claims),
            ):
                names = list(values[0])
                connection.execute(
                    text(
                        f"INSERT INTO {table} ({', '.join(names)}) "
                        f"VALUES ({', '.join(':' + name for name in names)})"
                    ),
                    [_stored(row, dialect) for row in values],
                )
            if dialect == "postgresql":
                # Rows written with their ids: the sequences go on after them, as in use.
                for table in ("download_runs", "images", "day_claims"):
                    connection.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
    finally:
        engine.dispose()
    return rows


def _stored(row: dict[str, Any], dialect: str) -> dict[str, Any]:
    """SQLite kept datetimes as naive UTC text, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if dialect != "sqlite":
        return row
    return {
        name: (
            value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
            if isinstance(value, datetime)
            else value
        )
        for name, value in row.items()
    }
