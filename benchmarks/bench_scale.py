"""Benchmark of the archive at scale, on SQLite and PostgreSQL (not a test; issue 10).

Each database gets ``--rows`` synthetic rows (2,000,000 by default) written in bulk
by the driver (SQLite ``executemany``, PostgreSQL ``COPY``; the benchmark is about
reading): 10 terminals of two streams each, a picture every 10 minutes, a few
thumbnails, the last 10 days not yet processed, a day record per stream and day.
PostgreSQL gets a database of its own (``draydog_bench_scale``, dropped after), so
the server's other databases are left alone.

Timed on each, best of ``--repeat`` after one warm-up run:

- ``stats``: ``daily_counts`` in the terminals' zone (what ``draydog stats`` prints);
- ``gaps_month``: ``find_gaps`` of every stream over one month (no folder walk);
- ``list_images_day``: ``list_images`` of one day of every stream (2,880 rows);
- ``unprocessed_1000``: ``get_unprocessed_images(1000)``.

Then ``reindex``: a tree of ``--files`` tiny pictures (100,000 by default, made once
in a temporary folder) is indexed once by ``reindex_archive``; a second
``reindex_archive`` of the already indexed tree is timed against a bare recursive
``os.scandir`` walk of the same tree, the two in turns. On PostgreSQL twice: as the
first reindex left the table (its new rows not yet in the visibility map, so the
index-only scan of their keys checks the table), then after ``VACUUM (ANALYZE)``,
as autovacuum leaves it once due (``reindex_ratio_vacuumed``; whether it is due,
and whether the server runs it, is printed). The rows loaded by ``COPY`` are
vacuumed at once, as autovacuum would within its naptime.

Targets: each query under 1 s on SQLite; the reindex at most 2x the walk. The last
line printed is one JSON object.

    python -m benchmarks.bench_scale                       # SQLite and PostgreSQL
    python -m benchmarks.bench_scale --rows 200000 --files 10000 --no-postgres
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy.engine import make_url

from modules.database import models, queries
from modules.downloader.archive import picture_path
from modules.downloader.reindex import reindex_archive
from modules.service.gaps import find_gaps

ZONE_NAME = models.LOCAL_DAY_TIMEZONE
ZONE = ZoneInfo(ZONE_NAME)
TERMINALS = 10
STREAMS = ("in_gate", "out_gate")
PER_DAY = 144
"""Pictures a stream takes a day: one every 10 minutes."""
FIRST_DAY = date(2024, 1, 1)
UNPROCESSED_DAYS = 10
BENCH_DATABASE = "draydog_bench_scale"
DEFAULT_POSTGRES = os.environ.get(
    "DRAYDOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
COLUMNS = (
    "filepath",
    "camera_id",
    "terminal",
    "timestamp",
    "file_size",
    "is_thumbnail",
    "downloaded_at",
    "processed",
    "local_day",
)
RECORD_COLUMNS = (
    "terminal",
    "camera_id",
    "day",
    "status",
    "listed",
    "stored",
    "failed",
    "thumbnails",
    "updated_at",
)


def days_for(rows: int) -> int:
    """Days of pictures that make at least ``rows`` rows over all streams."""
    per_day = TERMINALS * len(STREAMS) * PER_DAY
    return -(-rows // per_day)


def synthetic_rows(rows: int) -> Iterator[tuple[Any, ...]]:
    """``rows`` pictures as (key, stream, terminal, UTC instant, size, thumbnail, day).

    Each stream in turn, oldest first, a picture every 10 minutes with up to 30 s
    of jitter; a thumbnail now and then.
    """
    rng = random.Random(10)
    days = days_for(rows)
    per_stream = -(-rows // (TERMINALS * len(STREAMS)))
    made = 0
    start = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=ZONE)
    start_utc = start.astimezone(timezone.utc)
    for t in range(TERMINALS):
        terminal = f"t{t:02d}"
        for stream in STREAMS:
            for n in range(min(per_stream, days * PER_DAY)):
                if made == rows:
                    return
                moment = start_utc + timedelta(
                    minutes=10 * n, seconds=rng.randint(0, 30)
                )
                local = moment.astimezone(ZONE)
                key = (
                    f"{terminal}/{stream}/{local:%Y-%m-%d}/"
                    f"{stream}_{local:%Y%m%dT%H%M%S%z}.jpg"
                )
                thumbnail = local.minute < 10 and local.hour % 12 == 5
                yield (
                    key,
                    stream,
                    terminal,
                    moment,
                    60_000 + local.minute,
                    thumbnail,
                    local.date(),
                )
                made += 1


def _records(days: int, now: datetime) -> list[tuple[Any, ...]]:
    return [
        (
            f"t{t:02d}",
            stream,
            FIRST_DAY + timedelta(days=n),
            "complete",
            PER_DAY,
            PER_DAY,
            0,
            1,
            now,
        )
        for t in range(TERMINALS)
        for stream in STREAMS
        for n in range(days)
    ]


def fill_sqlite(path: Path, rows: int) -> int:
    models.configure(f"sqlite:///{path}")
    models.init_db()
    models.configure(f"sqlite:///{path}")  # drop the engine before writing around it
    last_processed = FIRST_DAY + timedelta(days=days_for(rows) - UNPROCESSED_DAYS)
    insert = (
        f"INSERT INTO images ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(COLUMNS))})"
    )
    connection = sqlite3.connect(path)
    try:
        batch: list[tuple[Any, ...]] = []
        for key, stream, terminal, moment, size, thumb, day in synthetic_rows(rows):
            stored = moment.replace(tzinfo=None).isoformat(" ", "microseconds")
            batch.append(
                (
                    key,
                    stream,
                    terminal,
                    stored,
                    size,
                    int(thumb),
                    stored,
                    int(day < last_processed),
                    day.isoformat(),
                )
            )
            if len(batch) == 50_000:
                connection.executemany(insert, batch)
                batch = []
        connection.executemany(insert, batch)
        now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(" ")
        connection.executemany(
            f"INSERT INTO archive_days ({', '.join(RECORD_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})",
            [
                (*r[:2], r[2].isoformat(), *r[3:8], now)
                for r in _records(days_for(rows), datetime.now())
            ],
        )
        connection.commit()
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return int(connection_count(f"sqlite:///{path}"))


def connection_count(url: str) -> int:
    models.configure(url)
    return queries.count_images()


def postgres_bench_url(base: str) -> tuple[str, str]:
    """The libpq URL of the server's maintenance database and the benchmark's own URL."""
    url = make_url(base)
    admin = url.set(drivername="postgresql", database="postgres")
    bench = url.set(database=BENCH_DATABASE)
    return (
        admin.render_as_string(hide_password=False),
        bench.render_as_string(hide_password=False),
    )


def recreate_postgres(admin: str) -> None:
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")


def drop_postgres(admin: str) -> None:
    models.configure("sqlite://")  # let go of the benchmark database's connections
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")


def fill_postgres(url: str, rows: int) -> int:
    models.configure(url)
    models.init_db()
    models.configure(url)
    libpq = make_url(url).set(drivername="postgresql")
    last_processed = FIRST_DAY + timedelta(days=days_for(rows) - UNPROCESSED_DAYS)
    with psycopg.connect(libpq.render_as_string(hide_password=False)) as connection:
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY images ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for key, stream, terminal, moment, size, thumb, day in synthetic_rows(
                    rows
                ):
                    copy.write_row(
                        (
                            key,
                            stream,
                            terminal,
                            moment,
                            size,
                            thumb,
                            moment,
                            day < last_processed,
                            day,
                        )
                    )
            with cursor.copy(
                f"COPY archive_days ({', '.join(RECORD_COLUMNS)}) FROM STDIN"
            ) as copy:
                for record in _records(days_for(rows), datetime.now(timezone.utc)):
                    copy.write_row(record)
        connection.commit()
        # What autovacuum does to a table loaded in bulk, within its naptime (an
        # insert-only vacuum, PostgreSQL 13 on), done here since a server may run
        # without it: the statistics, and the visibility map of index-only scans.
        connection.autocommit = True
        connection.execute("VACUUM (ANALYZE)")
    return connection_count(url)


# --- what is timed ------------------------------------------------------------------


def best_of(operation: Callable[[], object], repeat: int) -> float:
    operation()  # warm-up: the pages in the cache, the statements compiled
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        operation()
        times.append(time.perf_counter() - started)
    return min(times)


def queries_timed(rows: int, repeat: int) -> dict[str, float]:
    days = days_for(rows)
    last_day = FIRST_DAY + timedelta(days=days - 1)
    month = FIRST_DAY + timedelta(days=days // 2)
    month_start = month.replace(day=1)
    month_end = min(
        last_day,
        (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1),
    )
    one_day = datetime(month.year, month.month, month.day, tzinfo=ZONE)

    def gaps_month() -> object:
        report = find_gaps(
            start=month_start, end=month_end, today=last_day + timedelta(days=1)
        )
        assert not report.lacking, report.as_json()
        assert len(report.streams) == TERMINALS * len(STREAMS)
        return report

    def list_day() -> object:
        page = queries.list_images(
            start=one_day.astimezone(timezone.utc),
            end=(one_day + timedelta(days=1)).astimezone(timezone.utc),
            limit=10_000,
        )
        assert len(page) >= TERMINALS * len(STREAMS) * (PER_DAY - 2), len(page)
        return page

    def unprocessed() -> object:
        found = queries.get_unprocessed_images(1000)
        assert len(found) == 1000
        return found

    ways: dict[str, Callable[[], object]] = {
        "stats": lambda: queries.daily_counts(timezone_name=ZONE_NAME),
        "gaps_month": gaps_month,
        "list_images_day": list_day,
        "unprocessed_1000": unprocessed,
    }
    figures = {}
    for name, operation in ways.items():
        seconds = best_of(operation, repeat)
        figures[f"{name}_s"] = round(seconds, 3)
        print(f"  {name:20s} {seconds:7.3f} s", flush=True)
    return figures


# --- reindex against a bare walk ------------------------------------------------------


def make_tree(root: Path, files: int) -> None:
    """``files`` tiny pictures in the archive's layout (two streams of one terminal)."""
    start = datetime(2025, 1, 1, tzinfo=ZONE).astimezone(timezone.utc)
    body = b"\xff\xd8\xff\xe0" + bytes(12) + b"\xff\xd9"
    made_folders: set[Path] = set()
    for n in range(files):
        stream = STREAMS[n % 2]
        moment = start + timedelta(minutes=10 * (n // 2))
        path = picture_path(root, "rx", stream, moment, source_timezone=ZONE_NAME)
        if path.parent not in made_folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            made_folders.add(path.parent)
        path.write_bytes(body)


def bare_walk(root: Path) -> int:
    """Every file below ``root``, by ``os.scandir`` alone."""
    count = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    count += 1
    return count


def reindex_timed(
    root: Path,
    files: int,
    repeat: int,
    vacuum: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The first reindex, then the indexed tree's reindex against the walk (taken in
    turns, best of ``repeat`` each after a warm-up). With ``vacuum`` (PostgreSQL),
    again after it: first the table as the first reindex left it (its new rows not
    yet in the visibility map, their index entries checked against the table), then
    as autovacuum leaves it."""
    started = time.perf_counter()
    first = reindex_archive(root, source_timezone=ZONE_NAME)
    first_s = time.perf_counter() - started
    assert first.inserted == files and not first.failed, first

    def again() -> object:
        report = reindex_archive(root, source_timezone=ZONE_NAME)
        assert report.scanned == files and report.missing == 0, report
        return report

    def in_turns(label: str) -> tuple[float, float]:
        bare_walk(root)
        again()  # warm-up
        walks, reindexes = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            bare_walk(root)
            walks.append(time.perf_counter() - started)
            started = time.perf_counter()
            again()
            reindexes.append(time.perf_counter() - started)
        walk, reindex = min(walks), min(reindexes)
        print(
            f"  reindex of {files:,} files{label}: indexed {reindex:.3f} s "
            f"against a bare walk of {walk:.3f} s: {reindex / walk:.2f}x",
            flush=True,
        )
        return walk, reindex

    print(f"  reindex of {files:,} files: first {first_s:.2f} s", flush=True)
    walk, reindex = in_turns("")
    assert bare_walk(root) == files
    figures: dict[str, Any] = {
        "reindex_first_s": round(first_s, 2),
        "reindex_indexed_s": round(reindex, 3),
        "bare_walk_s": round(walk, 3),
        "reindex_ratio": round(reindex / walk, 2),
    }
    if vacuum is not None:
        figures.update(vacuum())
        walk, reindex = in_turns(", after VACUUM")
        figures.update(
            {
                "reindex_vacuumed_s": round(reindex, 3),
                "bare_walk_vacuumed_s": round(walk, 3),
                "reindex_ratio_vacuumed": round(reindex / walk, 2),
            }
        )
    return figures


def autovacuum_state(url: str, inserted: int) -> dict[str, Any]:
    """Whether autovacuum would vacuum ``images`` now, ``inserted`` rows after its last
    vacuum, by revision 0005's scale factor and by the default's. (From the catalog:
    the server's count of inserts lags behind, by up to 10 s, in the statistics.)"""
    libpq = make_url(url).set(drivername="postgresql")
    with psycopg.connect(libpq.render_as_string(hide_password=False)) as connection:
        row = connection.execute(
            "SELECT current_setting('autovacuum'), reltuples, reloptions, "
            "current_setting('autovacuum_vacuum_insert_threshold'), "
            "current_setting('autovacuum_vacuum_insert_scale_factor') "
            "FROM pg_class WHERE oid = 'images'::regclass"
        ).fetchone()
    assert row is not None
    running, tuples, options, base, default_factor = row
    factor = float(default_factor)
    for option in options or []:
        name, _, value = option.partition("=")
        if name == "autovacuum_vacuum_insert_scale_factor":
            factor = float(value)
    threshold = int(base) + factor * max(tuples, 0)
    default = int(base) + float(default_factor) * max(tuples, 0)
    print(
        f"  autovacuum {running} on this server; images: {inserted:,} rows inserted "
        f"since its last vacuum, an insert vacuum due after {threshold:,.0f} "
        f"(scale factor {factor}; {default:,.0f} at the default {default_factor})",
        flush=True,
    )
    return {
        "autovacuum": running,
        "inserted_since_vacuum": inserted,
        "insert_vacuum_threshold": round(threshold),
        "insert_vacuum_threshold_default": round(default),
    }


def vacuum_postgres(url: str, inserted: int) -> dict[str, Any]:
    """What autovacuum does to ``images`` once it is due: the visibility map, the
    statistics. Returns the state before, as :func:`autovacuum_state` tells it."""
    state = autovacuum_state(url, inserted)
    libpq = make_url(url).set(drivername="postgresql")
    with psycopg.connect(
        libpq.render_as_string(hide_password=False), autocommit=True
    ) as connection:
        connection.execute("VACUUM (ANALYZE) images")
    return state


def run_backend(
    name: str,
    fill: Callable[[], int],
    rows: int,
    tree: Path,
    args: argparse.Namespace,
    vacuum: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    count = fill()
    print(
        f"{name}: {count:,} rows in {time.perf_counter() - started:.0f} s", flush=True
    )
    figures: dict[str, Any] = {"rows": count}
    figures.update(queries_timed(rows, args.repeat))
    if args.files:
        figures.update(reindex_timed(tree, args.files, args.repeat, vacuum))
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument(
        "--files", type=int, default=100_000, help="pictures of the reindex (0: none)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each")
    parser.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES,
        help="a server's URL; the benchmark makes and drops a database of its own",
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--dir", type=Path, help="where the temporary folder goes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        tree = Path(folder) / "archive"
        if args.files:
            started = time.perf_counter()
            make_tree(tree, args.files)
            print(
                f"{args.files:,} files made in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
        path = Path(folder) / "scale.sqlite3"
        results["sqlite"] = run_backend(
            "sqlite", lambda: fill_sqlite(path, args.rows), args.rows, tree, args
        )
        if not args.no_postgres:
            admin, url = postgres_bench_url(args.postgres)
            recreate_postgres(admin)
            try:
                results["postgresql"] = run_backend(
                    "postgresql",
                    lambda: fill_postgres(url, args.rows),
                    args.rows,
                    tree,
                    args,
                    lambda: vacuum_postgres(url, args.files),
                )
            finally:
                drop_postgres(admin)
    sqlite = results["sqlite"]
    queries_met = all(
        sqlite[f"{name}_s"] < 1.0
        for name in ("stats", "gaps_month", "list_images_day", "unprocessed_1000")
    )
    reindex_met = all(
        backend.get("reindex_ratio", 0.0) <= 2.0 for backend in results.values()
    )
    reindex_met_vacuumed = all(
        backend.get("reindex_ratio_vacuumed", backend.get("reindex_ratio", 0.0)) <= 2.0
        for backend in results.values()
    )
    summary = {
        **results,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "targets": {"sqlite_query_s": 1.0, "reindex_ratio": 2.0},
        "queries_met": queries_met,
        "reindex_met": reindex_met,
        "reindex_met_vacuumed": reindex_met_vacuumed,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
