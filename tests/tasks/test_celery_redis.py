"""Redis as the broker (and its result backend): a real worker archives a range.

RabbitMQ is the default; a ``redis://`` broker URL must work as well, with the
same guarantees, so this runs the whole path on the Redis server of this machine.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import redis

from modules.database import models
from tests.reliability.workers_helpers import reaped, wait_until
from tests.tasks.helpers import (
    broker_answers,
    check_archive,
    enqueue_args,
    expected_pictures,
    running_replica,
    start,
    stop,
    summary_rows,
    wait_ready,
    worker_args,
)

REDIS_PORT = 6379
REDIS_DB = 15
"""A database of the Redis server kept apart from anything else on it."""


def _require_redis() -> None:
    """Redis on 127.0.0.1:6379, started (``redis-server --daemonize yes``) when down."""
    if broker_answers(port=REDIS_PORT):
        return
    try:
        subprocess.run(
            ["redis-server", "--daemonize", "yes"], check=False, capture_output=True
        )
        wait_until(lambda: broker_answers(port=REDIS_PORT), 30, "Redis to answer")
        return
    except (OSError, pytest.fail.Exception):
        pass
    if os.environ.get("CI") or os.environ.get("DRAYDOG_REQUIRE_BROWSER") == "1":
        pytest.fail("Redis does not answer on 127.0.0.1:6379")
    pytest.skip("Redis does not answer on 127.0.0.1:6379")


@pytest.fixture
def redis_queue() -> Iterator[tuple[str, str]]:
    """A broker URL on this machine's Redis and a queue name of this test's own."""
    _require_redis()
    url = f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}"
    yield url, f"test-redis-{uuid.uuid4().hex[:10]}"
    redis.Redis.from_url(url).flushdb()  # the queues' bindings and the results


@pytest.mark.slow
@pytest.mark.browser
def test_a_redis_broker_archives_a_range(
    redis_queue: tuple[str, str], tmp_path: Path
) -> None:
    broker, queue = redis_queue
    env = {"DRAYDOG_BROKER_URL": broker}
    days, streams = [date(2025, 9, 5), date(2025, 9, 6)], ["in_gate", "out_gate"]
    archive, logs = tmp_path / "archive", tmp_path / "logs"
    db_url = f"sqlite:///{tmp_path / 'archive.sqlite3'}"
    with running_replica() as server:
        worker = start(
            "w1",
            worker_args(queue, db_url, archive, server, name="w1", concurrency=2),
            logs,
            env=env,
        )
        with reaped([worker]):
            wait_ready([worker])
            client = start("enqueue", enqueue_args(queue, days, streams), logs, env=env)
            with reaped([client]):
                code = client.wait(150)
            assert stop(worker) == 0, worker.output()
    assert code == 0, client.output() + worker.output()
    assert "Traceback" not in worker.err(), worker.output()
    models.configure(db_url)
    expected = expected_pictures(archive, days, streams)
    assert check_archive(archive, expected) == len(expected) == 2 * 2 * 24
    table = summary_rows(client.stdout.read_text())
    assert sorted((row.day, row.stream) for row in table) == sorted(
        (day.isoformat(), stream) for day in days for stream in streams
    )
    assert all(row.new == 24 and row.rows == 24 for row in table)
    # The tasks went through Redis: the queue is bound there and the results are kept.
    stored = redis.Redis.from_url(broker)
    assert stored.exists(f"_kombu.binding.{queue}")
    assert len(stored.keys("celery-task-meta-*")) >= len(days) * len(streams)
