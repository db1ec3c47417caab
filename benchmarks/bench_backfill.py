"""A backfill of 30 days of two streams on the replica (CDN latency 50 ms): Celery
workers with 1 and with 2 worker processes, and optionally ``draydog download``.

Targets (issue 11): 2 worker processes at least 1.6x one (this machine has 2 cores).
``draydog download --start --end`` in one process is measured with ``--download``
(its default arguments), or with ``--download-run NAME=ARGS`` for each variant:
the overlap of the next day's page read with the current day's downloads is
another change's, so ``--download-run serial=--no-overlap --download-run overlap=``
compares the two once it exists (``overlap_over_serial`` in the JSON).

Each run starts from an empty archive and database, on a queue of its own on the
broker (``$DRAYDOG_BROKER_URL``, RabbitMQ on 127.0.0.1 by default), with the replica
in this process on the real widget page (render delay 0.1-0.3 s). The time of a
Celery run is from the first task sent to the last result received, the workers
already started and consuming (``draydog enqueue --wait``).

    .venv/bin/python benchmarks/bench_backfill.py [--days 30] [--latency 0.05]
        [--interval-minutes 10] [--db URL] [--download] [--download-run NAME=ARGS ...]
        [--download-bound]

Prints one line per run, then a last line that is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from functools import partial
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modules.replica.page import PageOptions
from modules.replica.schedule import Schedule
from modules.replica.server import Faults, ReplicaServer

STREAMS = ("in_gate", "out_gate")
TODAY = date(2025, 9, 20)
PAGE = PageOptions(render_delay=(0.1, 0.3))
ENV = dict(os.environ, SE_OFFLINE="true", PYTHONUNBUFFERED="1")
DRAYDOG = [sys.executable, "-m", "modules"]


def _days(count: int) -> tuple[date, date]:
    return TODAY - timedelta(days=count), TODAY - timedelta(days=1)


def _fresh(work: Path, name: str, db: str | None) -> tuple[Path, str]:
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder / "archive", db or f"sqlite:///{folder}/draydog.sqlite3"


def _pictures(archive: Path) -> int:
    return sum(1 for _ in archive.rglob("*.jpg"))


def run_celery(
    server: ReplicaServer, work: Path, processes: int, days: int, db: str | None
) -> dict[str, float]:
    """``draydog worker --concurrency processes`` and ``enqueue --wait`` of the range."""
    archive, db_url = _fresh(work, f"celery-{processes}", db)
    queue = f"bench-{uuid.uuid4().hex[:10]}"
    logs = archive.parent
    first, last = _days(days)
    worker = subprocess.Popen(
        DRAYDOG
        + ["worker", "--concurrency", str(processes), "--queue", queue, "-q"]
        + ["--dir", str(archive), "--db", db_url]
        + ["--app-url", server.app_url, "--cdn-url", server.cdn_url],
        env=ENV,
        stdout=open(logs / "worker.out", "wb"),
        stderr=open(logs / "worker.err", "wb"),
        start_new_session=True,
    )
    try:
        _wait_for_consumer(queue, processes, worker)
        started = time.monotonic()
        enqueue = subprocess.run(
            DRAYDOG
            + ["enqueue", "--start", first.isoformat(), "--end", last.isoformat()]
            + [arg for stream in STREAMS for arg in ("--stream", stream)]
            + ["--queue", queue, "--wait", "-q"],
            env=ENV,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        _delete_queue(queue)
    if enqueue.returncode != 0:
        raise SystemExit(
            f"enqueue failed ({enqueue.returncode}):\n{enqueue.stdout}{enqueue.stderr}"
        )
    return {"seconds": round(seconds, 2), "pictures": _pictures(archive)}


def _wait_for_consumer(
    queue: str, processes: int, worker: subprocess.Popen[bytes]
) -> None:
    """Until the worker consumes from ``queue`` (its pool processes started)."""
    from kombu import Connection

    from modules.tasks.settings import broker_url

    deadline = time.monotonic() + 180
    with Connection(broker_url()) as connection:
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}")
            channel: Any = connection.channel()
            try:
                _, _, consumers = channel.queue_declare(queue, passive=True)
                if consumers >= 1:
                    time.sleep(1.0)  # the pool's processes fork in this second
                    return
            except Exception:
                pass
            finally:
                try:
                    channel.close()
                except Exception:
                    pass
            time.sleep(0.2)
    raise SystemExit("the worker did not start consuming in 180 s")


def _delete_queue(queue: str) -> None:
    from kombu import Connection

    from modules.tasks.settings import broker_url

    try:
        with Connection(broker_url()) as connection:
            channel: Any = connection.channel()
            channel.queue_delete(queue)
    except Exception:
        pass


def run_download(
    server: ReplicaServer,
    work: Path,
    days: int,
    db: str | None,
    extra: list[str],
    name: str,
) -> dict[str, float]:
    """``draydog download --start --end`` of the range, in one process."""
    archive, db_url = _fresh(work, name, db)
    first, last = _days(days)
    started = time.monotonic()
    result = subprocess.run(
        DRAYDOG
        + ["download", "--start", first.isoformat(), "--end", last.isoformat()]
        + [arg for stream in STREAMS for arg in ("--stream", stream)]
        + ["--dir", str(archive), "--db", db_url, "-q"]
        + ["--app-url", server.app_url, "--cdn-url", server.cdn_url]
        + extra,
        env=ENV,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(
            f"download failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return {"seconds": round(seconds, 2), "pictures": _pictures(archive)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--interval-minutes", type=int, default=10)
    parser.add_argument(
        "--db", help="database URL for every run (default: a SQLite file each)"
    )
    parser.add_argument(
        "--download", action="store_true", help="also time draydog download"
    )
    parser.add_argument(
        "--celery-processes",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[1, 2],
        metavar="N,N",
        help="worker processes of each Celery run (default 1,2; empty: none)",
    )
    parser.add_argument(
        "--download-run",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="time draydog download with these extra arguments as download_NAME",
    )
    parser.add_argument(
        "--download-bound",
        action="store_true",
        help="also time the pictures alone (draydog download --no-browser with the "
        "replica's timestamps): what an overlap can at best come down to",
    )
    parser.add_argument(
        "--work", type=Path, help="folder for the archives (default: temporary)"
    )
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    schedule = Schedule(today=TODAY, interval_minutes=args.interval_minutes)
    first, last = _days(args.days)
    expected = sum(
        len(schedule.timestamps("apm", stream, first + timedelta(days=n)))
        for n in range(args.days)
        for stream in STREAMS
    )
    results: dict[str, Any] = {
        "days": args.days,
        "streams": len(STREAMS),
        "pictures": expected,
        "latency_seconds": args.latency,
        "cpus": os.cpu_count(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    print(
        f"{args.days} days x {len(STREAMS)} streams, {expected} pictures, latency {args.latency} s"
    )
    with ReplicaServer(
        schedule=schedule, faults=Faults(latency=args.latency), page_options=PAGE
    ) as server:
        runs: list[tuple[str, Callable[[], dict[str, float]]]] = []
        variants = [run.partition("=") for run in args.download_run]
        if args.download and not variants:
            variants = [("default", "=", "")]
        for name, _, extra in variants:
            runs.append(
                (
                    f"download_{name}",
                    partial(
                        run_download,
                        server,
                        work,
                        args.days,
                        args.db,
                        extra.split(),
                        f"download-{name}",
                    ),
                )
            )
        if args.download_bound:
            runs.append(
                (
                    "download_bound",
                    partial(
                        run_download_bound, server, schedule, work, args.days, args.db
                    ),
                )
            )
        for processes in args.celery_processes:
            runs.append(
                (
                    f"celery_{processes}",
                    partial(run_celery, server, work, processes, args.days, args.db),
                )
            )
        for name, run in runs:
            outcome = run()
            if outcome["pictures"] != expected:
                raise SystemExit(
                    f"{name}: {outcome['pictures']} pictures, expected {expected}"
                )
            results[name] = outcome["seconds"]
            print(
                f"{name}: {outcome['seconds']:.1f} s, {expected / outcome['seconds']:.1f} pictures/s",
                flush=True,
            )
    if "celery_1" in results and "celery_2" in results:
        results["celery_2_over_1"] = round(
            float(results["celery_1"]) / float(results["celery_2"]), 2
        )
    if "download_overlap" in results and "download_serial" in results:
        results["overlap_over_serial"] = round(
            float(results["download_serial"]) / float(results["download_overlap"]), 2
        )
    if "download_overlap" in results and "download_bound" in results:
        results["overlap_over_bound"] = round(
            float(results["download_overlap"]) / float(results["download_bound"]), 2
        )
        print(
            f"download overlap / pictures alone: {results['overlap_over_bound']}x "
            "(1.0: the page reads wholly hidden)"
        )
    if "celery_2_over_1" in results:
        print(f"2 worker processes / 1: {results['celery_2_over_1']}x (target 1.6x)")
    if "overlap_over_serial" in results:
        print(
            f"download overlap / serial: {results['overlap_over_serial']}x (target 1.4x)"
        )
    print(json.dumps(results))


def run_download_bound(
    server: ReplicaServer, schedule: Schedule, work: Path, days: int, db: str | None
) -> dict[str, float]:
    """The range's pictures alone: ``draydog download --no-browser`` with the
    replica's own timestamps, one stream after the other, no page read at all."""
    archive, db_url = _fresh(work, "download-bound", db)
    first, last = _days(days)
    seconds = 0.0
    for stream in STREAMS:
        listed = archive.parent / f"{stream}.txt"
        listed.write_text(
            "".join(
                f"{moment.isoformat()}\n"
                for n in range(days)
                for moment in schedule.timestamps(
                    "apm", stream, first + timedelta(days=n)
                )
            ),
            encoding="utf-8",
        )
        started = time.monotonic()
        result = subprocess.run(
            DRAYDOG
            + ["download", "--start", first.isoformat(), "--end", last.isoformat()]
            + ["--stream", stream, "--no-browser", "--timestamps-file", str(listed)]
            + ["--dir", str(archive), "--db", db_url, "-q"]
            + ["--app-url", server.app_url, "--cdn-url", server.cdn_url],
            env=ENV,
            capture_output=True,
            text=True,
        )
        seconds += time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(
                f"download --no-browser failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
    return {"seconds": round(seconds, 2), "pictures": _pictures(archive)}


if __name__ == "__main__":
    main()
