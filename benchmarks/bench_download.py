"""Benchmark of picture downloads from the replica CDN (not a test).

In one run, against a replica that answers every request after ``--latency``
seconds (50 ms by default) with pictures of ``--picture-bytes`` (60 KB):

(a) naive: one ``requests.get`` per picture without a session (a new connection
    each time), one after another, each body written to a file: what the
    original code did;
(b) direct: ``DrayDogDownloader.download_images_direct`` with ``--workers``
    workers (8), persistence on, into a fresh SQLite database and folder.

It prints pictures per second for each, their ratio, and the ratio of (b)'s time to
the latency bound (``pictures * latency / workers``: no client can beat it). Then
it runs (b) again, traced by ``tracemalloc``, for ``--pictures`` and for
``--memory-pictures`` (4,000, over several days of the schedule), and prints the
peak of Python memory of each: it must not grow with the number of pictures.
Targets: (b) at least 6 times (a)'s rate, within 1.3 times the latency bound, peak
memory flat (the larger run's peak at most 1.5 times the smaller's).

Method. The replica runs in a child process, as the real CDN is another machine:
its picture generation (pure Python) then does not compete with the client for the
GIL, and its memory is not the client's. It generates the first 1,024 pictures
(its cache) before the clock starts, as a CDN serves from its cache. The timed run
of (b) is not traced (``tracemalloc`` slows every allocation by about a third);
each traced run is a fresh process of its own. CPython's table of interned
strings, which ``pathlib`` adds every file name to, is reallocated (about 2 MB)
after some thousands of names; tracemalloc sees that allocation but not the
release of the table it replaces (allocated before tracing began), so it would
show as 2 MB of "growth" in whichever run crosses the threshold. Each traced child
therefore interns ``INTERN_HEADROOM`` strings of its own before tracing, so that the
table has room for the run and is not reallocated during it. ``os.sync()`` runs
before each timed phase so that neither pays for the other's dirty pages when it
``fsync``s.

    .venv/bin/python benchmarks/bench_download.py [--pictures 1000] [--latency 0.05]
        [--workers 8] [--memory-pictures 4000] [--naive-pictures N]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import requests

from modules.database import models, queries
from modules.downloader import DrayDogDownloader, build_image_url
from modules.replica.jpeg import picture_bytes
from modules.replica.schedule import Schedule
from modules.replica.server import Faults, ReplicaServer

TERMINAL = "apm"
STREAM = "in_gate"
TODAY = date(2025, 9, 20)
CACHE_ENTRIES = 1024
"""How many pictures the replica keeps generated (``modules.replica.jpeg``)."""
TARGET_SPEEDUP = 6.0
TARGET_VS_BOUND = 1.3
TARGET_MEMORY_GROWTH = 1.5
"""Peak memory with ``--memory-pictures`` at most this many times the peak with ``--pictures``."""
MiB = 1024 * 1024
INTERN_HEADROOM = 100_000
"""Strings a traced child interns (and keeps) before tracing: see the method above."""


def capture_times(count: int, schedule: Schedule) -> list[datetime]:
    """``count`` capture times of the schedule, from as many days before its today as needed."""
    days = count // 100 + 2
    first = TODAY - timedelta(days=days)
    found: list[datetime] = []
    day = first
    while len(found) < count and day <= TODAY:
        found.extend(schedule.timestamps(TERMINAL, STREAM, day))
        day += timedelta(days=1)
    if len(found) < count:
        raise ValueError(f"the schedule has only {len(found)} pictures to offer")
    return found[:count]


def _serve(
    latency: float, size: int, warm: list[datetime], pipe: Connection
) -> None:  # pragma: no cover - runs in the child process
    """The replica in a child process: warm its cache, send the CDN URL, serve until told."""
    for wall in warm:
        picture_bytes(TERMINAL, STREAM, wall, size=size)
    faults = Faults(latency=latency, picture_bytes=size)
    with ReplicaServer(schedule=Schedule(today=TODAY), faults=faults) as server:
        pipe.send(server.cdn_url)
        pipe.recv()


@dataclass
class Replica:
    """A replica in a child process, stopped on exit."""

    latency: float
    size: int
    warm: list[datetime]

    def __enter__(self) -> str:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(self.latency, self.size, self.warm, child_end),
            daemon=True,
        )
        self._process.start()
        while not self._pipe.poll(0.1):
            if not self._process.is_alive():
                raise RuntimeError("the replica did not start")
        cdn_url = self._pipe.recv()
        assert isinstance(cdn_url, str)
        return cdn_url

    def __exit__(self, *exc: object) -> None:
        try:
            self._pipe.send("stop")
        except OSError:
            pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


def naive(cdn_url: str, walls: list[datetime], folder: Path) -> float:
    """(a): ``requests.get`` per picture, no session, sequential; seconds taken."""
    folder.mkdir(parents=True)
    started = time.perf_counter()
    for wall in walls:
        url = build_image_url(cdn_url, TERMINAL, STREAM, wall)
        response = requests.get(url, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"naive download of {url}: HTTP {response.status_code}")
        with open(folder / f"{STREAM}_{wall:%Y%m%dT%H%M%S}.jpg", "wb") as out:
            out.write(response.content)
    return time.perf_counter() - started


@dataclass
class DirectRun:
    """What one run of (b) measured."""

    seconds: float
    peak_bytes: int | None
    rows: int


def direct(
    cdn_url: str,
    walls: list[datetime],
    workdir: Path,
    workers: int,
    *,
    trace_memory: bool = False,
) -> DirectRun:
    """(b): ``download_images_direct`` into a fresh folder and SQLite database."""
    workdir.mkdir(parents=True)
    models.configure(f"sqlite:///{workdir / 'archive.sqlite3'}")
    models.init_db()
    with DrayDogDownloader(
        download_dir=workdir / "images",
        cdn_url=cdn_url,
        max_workers=workers,
        persist=True,
        timeout=30,
    ) as downloader:
        if trace_memory:
            tracemalloc.start()
        started = time.perf_counter()
        report = downloader.download_images_direct(STREAM, walls)
        seconds = time.perf_counter() - started
        peak = None
        if trace_memory:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    if report.failed or report.downloaded != len(walls):
        raise RuntimeError(f"direct download incomplete: {report.failed[:3]}")
    rows = queries.count_images()
    if rows != len(walls) or report.db_inserted != len(walls):
        raise RuntimeError(f"{rows} rows for {len(walls)} pictures")
    return DirectRun(seconds, peak, rows)


def _traced_direct(
    cdn_url: str, walls: list[datetime], workdir: Path, workers: int, pipe: Connection
) -> None:  # pragma: no cover - runs in the child process
    headroom = [sys.intern(f"bench-headroom-{n}") for n in range(INTERN_HEADROOM)]
    pipe.send(direct(cdn_url, walls, workdir, workers, trace_memory=True))
    del headroom


def traced_direct_in_child(
    cdn_url: str, walls: list[datetime], workdir: Path, workers: int
) -> DirectRun:
    """(b) traced by tracemalloc in a fresh process (see the method above)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_traced_direct, args=(cdn_url, walls, workdir, workers, sender)
    )
    process.start()
    sender.close()
    try:
        run = receiver.recv()
    except EOFError:
        raise RuntimeError(f"the traced run failed (exit code {process.exitcode})")
    finally:
        process.join()
    assert isinstance(run, DirectRun)
    return run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pictures", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--picture-bytes", type=int, default=60_000)
    parser.add_argument(
        "--memory-pictures",
        type=int,
        default=4000,
        help="pictures of the second traced run (0 skips it)",
    )
    parser.add_argument(
        "--naive-pictures",
        type=int,
        default=None,
        help="time the naive path on the first N pictures only (default: all)",
    )
    args = parser.parse_args(argv)
    if args.pictures < 1 or args.workers < 1 or args.latency < 0:
        parser.error("pictures and workers must be positive, latency not negative")
    if args.memory_pictures < 0 or (args.naive_pictures or 1) < 1:
        parser.error("--memory-pictures and --naive-pictures must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    schedule = Schedule(today=TODAY)
    walls = capture_times(max(args.pictures, args.memory_pictures), schedule)
    pictures = walls[: args.pictures]
    naive_walls = pictures[: args.naive_pictures or args.pictures]
    bound = args.pictures * args.latency / args.workers
    print(
        f"{args.pictures} pictures of {args.picture_bytes:,} bytes, "
        f"{args.latency * 1000:.0f} ms latency, {args.workers} workers "
        f"(latency bound {bound:.2f} s)",
        flush=True,
    )
    peaks: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        work = Path(tmp)
        with Replica(args.latency, args.picture_bytes, pictures[:CACHE_ENTRIES]) as cdn:
            os.sync()
            naive_s = naive(cdn, naive_walls, work / "naive")
            naive_rate = len(naive_walls) / naive_s
            print(
                f"(a) naive:  {len(naive_walls)} pictures in {naive_s:.2f} s, "
                f"{naive_rate:.1f} pictures/s",
                flush=True,
            )
            os.sync()
            run = direct(cdn, pictures, work / "direct", args.workers)
            direct_rate = args.pictures / run.seconds
            print(
                f"(b) direct: {args.pictures} pictures in {run.seconds:.2f} s, "
                f"{direct_rate:.1f} pictures/s, {run.rows} rows",
                flush=True,
            )
            sizes = [args.pictures] + (
                [args.memory_pictures] if args.memory_pictures else []
            )
            for size in sizes:
                os.sync()
                traced = traced_direct_in_child(
                    cdn, walls[:size], work / f"traced-{size}", args.workers
                )
                assert traced.peak_bytes is not None
                peaks[size] = traced.peak_bytes
                print(
                    f"(b) traced: {size} pictures in {traced.seconds:.2f} s, "
                    f"{traced.rows} rows, peak Python memory "
                    f"{traced.peak_bytes / MiB:.2f} MiB",
                    flush=True,
                )
    speedup = direct_rate / naive_rate
    vs_bound = run.seconds / bound if bound else float("inf")
    figures: dict[str, Any] = {
        "pictures": args.pictures,
        "latency_s": args.latency,
        "workers": args.workers,
        "picture_bytes": args.picture_bytes,
        "naive_pictures": len(naive_walls),
        "naive_seconds": round(naive_s, 3),
        "naive_pics_per_s": round(naive_rate, 2),
        "direct_seconds": round(run.seconds, 3),
        "direct_pics_per_s": round(direct_rate, 2),
        "speedup": round(speedup, 2),
        "latency_bound_s": round(bound, 3),
        "vs_latency_bound": round(vs_bound, 3),
    }
    for size, peak in peaks.items():
        figures[f"peak_mem_mb_{size}"] = round(peak / MiB, 2)
    figures["max_rss_mb_main"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    met = {
        "speedup": speedup >= TARGET_SPEEDUP,
        "vs_latency_bound": vs_bound <= TARGET_VS_BOUND,
    }
    print(
        f"speedup {speedup:.1f}x (target >= {TARGET_SPEEDUP:g}), "
        f"{vs_bound:.2f}x the latency bound (target <= {TARGET_VS_BOUND:g})"
    )
    if args.memory_pictures and args.memory_pictures != args.pictures:
        small, large = peaks[args.pictures], peaks[args.memory_pictures]
        growth = large / small
        per_picture = (large - small) / (args.memory_pictures - args.pictures)
        figures["peak_mem_growth"] = round(growth, 2)
        figures["peak_mem_bytes_per_extra_picture"] = round(per_picture)
        met["peak_memory_flat"] = growth <= TARGET_MEMORY_GROWTH
        print(
            f"peak memory, {args.memory_pictures} vs {args.pictures} pictures: "
            f"{growth:.2f}x (target <= {TARGET_MEMORY_GROWTH:g}), "
            f"{per_picture:.0f} bytes per extra picture"
        )
    figures["targets_met"] = met
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
