"""Benchmark of ``gaps`` and ``stats`` on large SQLite archives (not a test; issue 9, part c).

Two archives, each a fresh SQLite file at the code's schema filled in bulk with
synthetic rows (the driver's ``executemany``; the benchmark is about reading):

- ``year``: a year of two streams, a picture every 10 minutes (about 105,000 rows);
- ``big``: two years of 20 streams (10 terminals, two gates each; about 2,100,000 rows).

Each has a day record per stream and day, thumbnails on a few pictures and a
two-hour camera outage every 50 days, so ``gaps`` has something to find. Side by
side, in one run, on each archive:

(a) ``gaps``: ``find_gaps`` over every stream's whole range (no folder walk), against
    the plain alternative of one ``LAG`` window over every row to find the holes;
(b) ``stats``: ``daily_counts`` in the terminals' zone (``GROUP BY local_day`` on the
    index), in UTC (a day the database computes from the timestamp), and the
    previous implementation, which read every row into Python.

Each is run ``--repeat`` times after one warm-up run; the best time counts. The last
line printed is one JSON object. Target: gaps and stats under 1 s each at 2,000,000.

    python -m benchmarks.bench_gaps              # both archives in a temporary folder
    python -m benchmarks.bench_gaps --only year  # the small one
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

from sqlalchemy import select, text

from modules.database import models, queries
from modules.database.models import Image
from modules.service.gaps import find_gaps

TERMINAL_ZONE = ZoneInfo(models.LOCAL_DAY_TIMEZONE)
FIRST_DAY = date(2024, 1, 1)
SCENARIOS = {"year": (1, 365), "big": (10, 730)}
"""Terminals (two streams each) and days of each archive."""
INSERT = (
    "INSERT INTO images (filepath, camera_id, terminal, timestamp, file_size, "
    "is_thumbnail, downloaded_at, processed, local_day) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)"
)
RECORD = (
    "INSERT INTO archive_days (terminal, camera_id, day, status, listed, stored, "
    "failed, thumbnails, updated_at) VALUES (?, ?, ?, 'complete', ?, ?, 0, ?, ?)"
)


def synthetic_rows(terminals: int, days: int) -> Iterator[tuple[Any, ...]]:
    """Rows as SQLite stores them: a picture every 10 minutes (jitter up to 30 s).

    On days ``n`` with ``n % 50 == 17`` the camera is off from 10:00 to 12:00 at
    the terminal, a hole of two hours and ten minutes.
    """
    rng = random.Random(9)
    first = datetime(
        FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=TERMINAL_ZONE
    )
    start = first.astimezone(timezone.utc)
    end = (first + timedelta(days=days)).astimezone(timezone.utc)
    for t in range(terminals):
        terminal = f"t{t:02d}"
        for stream in ("in_gate", "out_gate"):
            slot = start
            while slot < end:
                moment = slot + timedelta(seconds=rng.randint(0, 30))
                slot += timedelta(minutes=10)
                local = moment.astimezone(TERMINAL_ZONE)
                n = (local.date() - FIRST_DAY).days
                if n % 50 == 17 and 10 <= local.hour < 12:
                    continue
                stored = moment.replace(tzinfo=None).isoformat(" ", "microseconds")
                yield (
                    f"/srv/archive/{terminal}/{stream}/{local:%Y-%m-%d}/"
                    f"{stream}_{local:%Y%m%dT%H%M%S%z}.jpg",
                    stream,
                    terminal,
                    stored,
                    60_000 + local.minute,
                    int(local.minute < 10 and local.hour % 12 == 5),
                    stored,
                    local.date().isoformat(),
                )


def build(path: Path, terminals: int, days: int) -> int:
    """A fresh archive at ``path``; how many rows it holds."""
    models.configure(f"sqlite:///{path}")
    models.init_db()
    models.configure(f"sqlite:///{path}")  # drop the engine before writing around it
    connection = sqlite3.connect(path)
    try:
        rows, batch = 0, []
        for row in synthetic_rows(terminals, days):
            batch.append(row)
            if len(batch) == 50_000:
                connection.executemany(INSERT, batch)
                rows += len(batch)
                batch = []
        connection.executemany(INSERT, batch)
        rows += len(batch)
        now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(" ")
        connection.executemany(
            RECORD,
            [
                (
                    f"t{t:02d}",
                    stream,
                    (FIRST_DAY + timedelta(days=n)).isoformat(),
                    144,
                    144,
                    1,
                    now,
                )
                for t in range(terminals)
                for stream in ("in_gate", "out_gate")
                for n in range(days)
            ],
        )
        connection.commit()
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return rows


# --- the alternatives ---------------------------------------------------------------------


def gaps_now(last_day: date) -> Callable[[], object]:
    return lambda: find_gaps(today=last_day + timedelta(days=1))


def window_over_every_row() -> object:
    """The plain way to the holes: ``LAG`` over every row of every stream, in SQL."""
    query = text(
        "SELECT terminal, camera_id, previous, timestamp FROM ("
        " SELECT terminal, camera_id, timestamp, LAG(timestamp) OVER ("
        "  PARTITION BY terminal, camera_id ORDER BY local_day, timestamp) AS previous"
        " FROM images) WHERE (julianday(timestamp) - julianday(previous)) * 86400 > 1800"
    )
    with models.read_scope() as session:
        return session.execute(query).all()


def stats_in_python() -> object:
    """The previous ``daily_counts``: every row read, its day computed in Python."""
    totals: dict[tuple[date, str, str], list[int]] = {}
    query = select(
        Image.timestamp,
        Image.terminal,
        Image.camera_id,
        Image.is_thumbnail,
        Image.file_size,
    )
    with models.read_scope() as session:
        for stamp, terminal, stream, thumb, size in session.execute(query).yield_per(
            5000
        ):
            entry = totals.setdefault(
                (stamp.astimezone(TERMINAL_ZONE).date(), terminal, stream), [0, 0, 0]
            )
            entry[0] += 1
            entry[1] += int(bool(thumb))
            entry[2] += int(size or 0)
    return totals


def best_of(operation: Callable[[], object], repeat: int) -> float:
    operation()  # warm-up: the file in the page cache, the statements compiled
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        operation()
        times.append(time.perf_counter() - started)
    return min(times)


def run_scenario(name: str, folder: Path, repeat: int) -> dict[str, Any]:
    terminals, days = SCENARIOS[name]
    path = folder / f"{name}.sqlite3"
    started = time.perf_counter()
    rows = build(path, terminals, days)
    print(f"{name}: {rows:,} rows built in {time.perf_counter() - started:.0f} s")
    report = find_gaps(today=FIRST_DAY + timedelta(days=days))
    expected_outages = 2 * terminals * len(range(17, days, 50))
    assert len(report.outages) == expected_outages, len(report.outages)
    assert not report.lacking
    figures: dict[str, Any] = {"rows": rows, "streams": 2 * terminals, "days": days}
    ways: dict[str, Callable[[], object]] = {
        "gaps": gaps_now(FIRST_DAY + timedelta(days=days - 1)),
        "gaps_window_every_row": window_over_every_row,
        "stats": lambda: queries.daily_counts(timezone_name=models.LOCAL_DAY_TIMEZONE),
        "stats_utc": lambda: queries.daily_counts(timezone_name="UTC"),
        "stats_python_scan": stats_in_python,
    }
    for way, operation in ways.items():
        seconds = best_of(operation, repeat)
        figures[f"{way}_s"] = round(seconds, 3)
        print(f"  {way:24s} {seconds:7.3f} s")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="one archive only")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each way")
    parser.add_argument("--dir", type=Path, help="where the archives are built")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [args.only] if args.only else list(SCENARIOS)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        scenarios = {
            name: run_scenario(name, Path(folder), args.repeat) for name in names
        }
    met = all(s["gaps_s"] < 1.0 and s["stats_s"] < 1.0 for s in scenarios.values())
    figures: dict[str, Any] = {
        **scenarios,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "target_s": 1.0,
        "met": met,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
