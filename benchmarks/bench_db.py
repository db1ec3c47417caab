"""Benchmark of the archive's write paths (not a test).

Inserts the same rows three ways, each into a fresh database (SQLite) or a fresh
schema (PostgreSQL), and prints rows per second and ratios:

(a) naive: ``insert_image`` once per row, each in its own ``session_scope``
    (a subset, ``--naive-rows``, extrapolated to a rate);
(b) batch: ``insert_images`` with ``chunk_size=500``, all rows;
(c) raw: the driver's ``executemany`` of the same rows into an identical table
    (``sqlite3`` for SQLite, psycopg 3 for PostgreSQL), in one transaction: the floor.
    Its time includes turning the records into the driver's tuples.

Each way runs ``--repeat`` times (each into a fresh database) and its best time
counts. The last line printed is one JSON object with the figures. Targets on SQLite:
batch at least 50 times the naive rate, and batch time within 3 times raw time; on
PostgreSQL too, batch time within 3 times raw time (its batch path unnests arrays).

    python -m benchmarks.bench_db                      # temporary SQLite file
    python -m benchmarks.bench_db --db postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from modules.database import models, queries

WAYS = ("naive", "batch", "raw")
INSERT_COLUMNS = (
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
)


def make_records(rows: int) -> list[dict[str, Any]]:
    """``rows`` distinct records shaped like the downloader's, one picture every 5 s."""
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    cameras = ("in_gate", "out_gate", "in_ocr", "out_ocr")
    records: list[dict[str, Any]] = []
    for i in range(rows):
        camera = cameras[i % len(cameras)]
        stamp = start + timedelta(seconds=5 * i)
        name = f"{stamp:%Y-%m-%dT%H-%M-%S}-{camera}-{i:07d}.jpeg"
        records.append(
            {
                "filepath": f"data/images/apm/{stamp:%Y/%m/%d}/{name}",
                "camera_id": camera,
                "terminal": "apm",
                "timestamp": stamp,
                "file_size": 40_000 + i % 5_000,
                "sha256": f"{i:064x}",
                "source_url": f"https://cdn.example.invalid/apm/{stamp:%Y-%m-%d}/{name}",
                "is_thumbnail": i % 10 == 0,
            }
        )
    return records


# --- fresh databases ------------------------------------------------------------


class Target:
    """Where the benchmark writes: a fresh SQLite file or PostgreSQL schema per way."""

    def __init__(self, url: str | None, workdir: Path) -> None:
        self.base = models.normalize_url(
            url or f"sqlite:///{workdir / 'bench.sqlite3'}"
        )
        self.dialect = self.base.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.dialect!r}")
        self.workdir = workdir
        self.tag = uuid.uuid4().hex[:12]

    @contextmanager
    def fresh(self, way: str) -> Iterator[str]:
        """A URL to an empty database for ``way``, removed afterwards."""
        if self.dialect == "sqlite":
            database = Path(self.base.database or "")
            path = database.with_name(f"{database.stem}-{self.tag}-{way}.sqlite3")
            try:
                yield self.base.set(database=str(path)).render_as_string(False)
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        import psycopg

        schema = f"bench_{self.tag}_{way}"
        admin = _psycopg_conninfo(self.base)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            query = dict(self.base.query)
            query["options"] = f"-csearch_path={schema}"
            yield self.base.set(query=query).render_as_string(False)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _psycopg_conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# --- the three ways -------------------------------------------------------------


def timed(operation: Callable[[], object]) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


def run_naive(url: str, records: Sequence[dict[str, Any]]) -> float:
    models.configure(url)
    models.init_db()

    def insert_each() -> None:
        for record in records:
            queries.insert_image(**record)

    seconds = timed(insert_each)
    stored = queries.count_images()
    models.get_engine().dispose()
    _check(stored, len(records), "naive")
    return seconds


def run_batch(url: str, records: Sequence[dict[str, Any]], chunk_size: int) -> float:
    models.configure(url)
    models.init_db()
    outcome: list[queries.BatchResult] = []
    seconds = timed(
        lambda: outcome.append(queries.insert_images(records, chunk_size=chunk_size))
    )
    stored = queries.count_images()
    models.get_engine().dispose()
    result = outcome[0]
    if result.failed or result.inserted != len(records):
        raise RuntimeError(
            f"batch stored {result.inserted} rows, {len(result.failed)} failed"
        )
    _check(stored, len(records), "batch")
    return seconds


def run_raw(url: str, records: Sequence[dict[str, Any]]) -> float:
    """The driver's executemany into a table created from the same metadata."""
    parsed = models.normalize_url(url)
    schema_engine = create_engine(parsed)
    models.Base.metadata.create_all(schema_engine)
    schema_engine.dispose()
    placeholders = ", ".join(
        ["?" if parsed.get_backend_name() == "sqlite" else "%s"] * len(INSERT_COLUMNS)
    )
    sql = f"INSERT INTO images ({', '.join(INSERT_COLUMNS)}) VALUES ({placeholders})"
    if parsed.get_backend_name() == "sqlite":
        return _raw_sqlite(parsed.database or "", sql, records)
    return _raw_postgres(_psycopg_conninfo(parsed), sql, records)


def _raw_sqlite(database: str, sql: str, records: Sequence[dict[str, Any]]) -> float:
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        # The same settings as the library's engine, so only the Python layers differ.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")

        def write() -> None:
            now = _naive_utc(models.utcnow())
            rows = [
                (
                    r["filepath"],
                    r["camera_id"],
                    r["terminal"],
                    _naive_utc(r["timestamp"]),
                    r["file_size"],
                    r["sha256"],
                    r["source_url"],
                    r["is_thumbnail"],
                    now,
                    None,
                    False,
                )
                for r in records
            ]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")

        seconds = timed(write)
        (stored,) = conn.execute("SELECT count(*) FROM images").fetchone()
    finally:
        conn.close()
    _check(int(stored), len(records), "raw")
    return seconds


def _naive_utc(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format, so the rows are the same.
    return (
        value.astimezone(timezone.utc)
        .replace(tzinfo=None)
        .isoformat(" ", timespec="microseconds")
    )


def _raw_postgres(conninfo: str, sql: str, records: Sequence[dict[str, Any]]) -> float:
    import psycopg

    with psycopg.connect(conninfo) as conn:

        def write() -> None:
            now = models.utcnow()
            rows = [
                (
                    r["filepath"],
                    r["camera_id"],
                    r["terminal"],
                    r["timestamp"],
                    r["file_size"],
                    r["sha256"],
                    r["source_url"],
                    r["is_thumbnail"],
                    now,
                    None,
                    False,
                )
                for r in records
            ]
            with conn.cursor() as cursor:
                cursor.executemany(sql, rows)
            conn.commit()

        seconds = timed(write)
        row = conn.execute("SELECT count(*) FROM images").fetchone()
    _check(int(row[0]) if row else 0, len(records), "raw")
    return seconds


def _check(stored: int, expected: int, way: str) -> None:
    if stored != expected:
        raise RuntimeError(f"{way}: {stored} rows stored, {expected} expected")


# --- main -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLite or PostgreSQL URL (default: a temporary SQLite file); "
        "SQLite gets sibling files, PostgreSQL fresh schemas, all removed afterwards",
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows (100000)")
    parser.add_argument(
        "--naive-rows",
        type=int,
        default=2_000,
        help="rows for the naive way, extrapolated (2000)",
    )
    parser.add_argument("--chunk-size", type=int, default=500, help="batch chunk (500)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of the three ways; the best time of each is kept (3)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.naive_rows < 1 or args.repeat < 1:
        parser.error("--rows, --naive-rows and --repeat must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    records = make_records(args.rows)
    naive_records = records[: min(args.naive_rows, args.rows)]
    with tempfile.TemporaryDirectory(prefix="draydog-bench-") as workdir:
        target = Target(args.db, Path(workdir))
        previous_url = models.database_url()
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        try:
            for attempt in range(1, args.repeat + 1):
                with target.fresh("naive") as url:
                    times["naive"].append(run_naive(url, naive_records))
                with target.fresh("batch") as url:
                    times["batch"].append(run_batch(url, records, args.chunk_size))
                with target.fresh("raw") as url:
                    times["raw"].append(run_raw(url, records))
                print(
                    f"run {attempt}/{args.repeat}: "
                    f"naive {len(naive_records)} rows in {times['naive'][-1]:.3f} s, "
                    f"batch {len(records)} rows in {times['batch'][-1]:.3f} s, "
                    f"raw {len(records)} rows in {times['raw'][-1]:.3f} s",
                    flush=True,
                )
        finally:
            models.configure(previous_url)
    # The best of the runs: the least disturbed by whatever else the machine does.
    naive_s, batch_s, raw_s = (min(times[way]) for way in WAYS)
    naive_rate = len(naive_records) / naive_s
    batch_rate = len(records) / batch_s
    raw_rate = len(records) / raw_s
    figures = {
        "rows": len(records),
        "db": target.dialect,
        "chunk_size": args.chunk_size,
        "naive_rows": len(naive_records),
        "repeat": args.repeat,
        "naive_rows_per_s": round(naive_rate, 1),
        "batch_rows_per_s": round(batch_rate, 1),
        "raw_rows_per_s": round(raw_rate, 1),
        "batch_vs_naive": round(batch_rate / naive_rate, 2),
        "batch_vs_raw": round(batch_s / raw_s, 2),
    }
    print(
        f"batch is {figures['batch_vs_naive']}x the naive rate "
        f"and takes {figures['batch_vs_raw']}x the raw time"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
