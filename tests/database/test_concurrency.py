"""Many writers at once: threads and processes inserting overlapping filepaths.

Whatever the interleaving, each filepath ends up in exactly one row, every writer
learns that row's id, the counts add up, and no writer sees "database is locked".
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from modules.database import models, queries
from modules.database.models import Image, session_scope

THREADS = 8
PROCESSES = 3
T0 = datetime(2024, 6, 1, tzinfo=timezone.utc)


def make_records(paths: list[str]) -> list[dict[str, Any]]:
    """One picture per path: its folder is its stream, its number its second."""
    return [
        {
            "filepath": path,
            "camera_id": path.split("/", 1)[0],
            "timestamp": T0 + timedelta(seconds=int(path.rsplit("/", 1)[-1])),
            "file_size": 100,
        }
        for path in paths
    ]


def stored_ids() -> dict[str, int]:
    with session_scope() as session:
        return {
            path: int(image_id)
            for path, image_id in session.execute(select(Image.filepath, Image.id))
        }


def paths_stored_more_than_once() -> list[str]:
    with session_scope() as session:
        query = (
            select(Image.filepath)
            .group_by(Image.filepath)
            .having(func.count(Image.id) > 1)
        )
        return list(session.execute(query).scalars())


def run_in_threads(work: Callable[[int], Any], count: int) -> list[Any]:
    """Run ``work(n)`` for n < count in ``count`` threads that start together."""
    barrier = threading.Barrier(count)

    def started_together(n: int) -> Any:
        barrier.wait(timeout=30)
        return work(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(started_together, n) for n in range(count)]
        return [future.result(timeout=120) for future in futures]


def thread_paths(n: int) -> list[str]:
    """Thread n's 150 paths out of 400: each path is shared by two or three threads."""
    return sorted(f"t/{(n * 50 + k) % 400:04d}" for k in range(150))


# --- threads ------------------------------------------------------------------


def test_threads_batch_inserting_overlapping_paths(database: str) -> None:
    def work(n: int) -> tuple[list[dict[str, Any]], queries.BatchResult]:
        paths = thread_paths(n)
        batch = make_records(paths + paths[::10])  # and a few repeats in the batch
        return batch, queries.insert_images(batch, chunk_size=20)

    outcomes = run_in_threads(work, THREADS)

    unique = {path for n in range(THREADS) for path in thread_paths(n)}
    assert len(unique) == 400
    ids = stored_ids()
    assert set(ids) == unique
    assert paths_stored_more_than_once() == []
    assert sum(result.inserted for _, result in outcomes) == len(unique)
    for batch, result in outcomes:
        assert result.failed == []
        assert result.inserted + result.duplicates == len(batch)
        assert result.ids == {path: ids[path] for path in result.ids}
        assert set(result.ids) == {record["filepath"] for record in batch}


def test_threads_mixing_single_and_batch_inserts(database: str) -> None:
    def work(n: int) -> dict[str, int]:
        paths = thread_paths(n)
        if n % 2:
            result = queries.insert_images(make_records(paths), chunk_size=25)
            assert result.failed == []
            return result.ids
        return {
            record["filepath"]: queries.insert_image(**record)
            for record in make_records(paths)
        }

    seen = run_in_threads(work, THREADS)

    ids = stored_ids()
    assert len(ids) == 400
    assert paths_stored_more_than_once() == []
    for n, thread_ids in enumerate(seen):
        assert set(thread_ids) == set(thread_paths(n))
        assert thread_ids == {path: ids[path] for path in thread_ids}


def test_threads_inserting_the_same_paths_one_by_one(database: str) -> None:
    paths = [f"s/{k:04d}" for k in range(60)]

    def work(n: int) -> dict[str, int]:
        order = paths[n * 7 :] + paths[: n * 7]  # each thread starts elsewhere
        return {path: queries.insert_image(path, "in_gate") for path in order}

    seen = run_in_threads(work, THREADS)
    ids = stored_ids()
    assert set(ids) == set(paths)
    assert all(thread_ids == ids for thread_ids in seen)


# --- processes ------------------------------------------------------------------


def process_paths(n: int) -> list[str]:
    """Process n's 2,000 batch paths out of 4,000: neighbours share half of theirs."""
    return [f"p/{k:05d}" for k in range(n * 1000, n * 1000 + 2000)]


def single_paths(n: int) -> list[str]:
    return [f"q/{k:05d}" for k in range(n * 40, n * 40 + 80)]


def process_worker(url: str, n: int, barrier: Any, results: Any) -> None:
    """One writer process: create the schema if needed, batch-insert, then one by one."""
    try:
        barrier.wait(timeout=120)
        started = time.time()
        models.configure(url, retry_attempts=5, retry_delay=0.05)
        models.init_db()
        batch = queries.insert_images(make_records(process_paths(n)), chunk_size=100)
        singles = {
            record["filepath"]: queries.insert_image(**record)
            for record in make_records(single_paths(n))
        }
        finished = time.time()
        models.get_engine().dispose()
        results.put(
            (
                n,
                batch.inserted,
                batch.duplicates,
                batch.failed,
                batch.ids,
                singles,
                (started, finished),
            )
        )
    except BaseException:
        results.put((n, "error", traceback.format_exc()))
        raise


@pytest.mark.slow
def test_processes_inserting_overlapping_paths(db_url: str) -> None:
    """Several processes on one SQLite file (WAL) or PostgreSQL schema, starting at once.

    The schema is not created beforehand: the processes race to create it too.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=process_worker, args=(db_url, n, barrier, results))
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes: list[tuple[Any, ...]] = []
    try:
        for _ in workers:
            outcomes.append(results.get(timeout=240))
    except queue.Empty:
        pytest.fail(f"a writer process gave no result; got {outcomes!r}")
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
                worker.join()
    errors = [outcome[2] for outcome in outcomes if outcome[1] == "error"]
    assert errors == []
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    models.configure(db_url)
    ids = stored_ids()
    batch_paths = {p for n in range(PROCESSES) for p in process_paths(n)}
    singles = {p for n in range(PROCESSES) for p in single_paths(n)}
    assert set(ids) == batch_paths | singles
    assert paths_stored_more_than_once() == []

    # They really wrote at the same time: some instant falls in every writing phase.
    phases = [outcome[6] for outcome in outcomes]
    assert max(start for start, _ in phases) < min(end for _, end in phases)

    assert sum(outcome[1] for outcome in outcomes) == len(batch_paths)
    for n, inserted, duplicates, failed, batch_ids, single_ids, _ in outcomes:
        assert failed == []  # in particular, never "database is locked"
        assert inserted + duplicates == len(process_paths(n))
        assert batch_ids == {path: ids[path] for path in process_paths(n)}
        assert single_ids == {path: ids[path] for path in single_paths(n)}
