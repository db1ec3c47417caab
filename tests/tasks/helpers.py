"""Helpers of the Celery tests: the broker, real ``draydog worker`` processes, the
replica on small days, a database that can be cut off, and archive checks.

The replica runs in the test process (its counters see every worker); workers are
``python -m modules worker`` processes in sessions of their own, so a test can
SIGKILL a whole worker (its pool processes and browser too), as a machine lost.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from modules.database import queries
from modules.downloader.archive import picture_path
from modules.replica import Faults, ReplicaServer, Schedule
from modules.replica.page import PageOptions
from modules.replica.jpeg import picture_bytes
from modules.tasks.settings import DEFAULT_BROKER_URL
from tests.reliability.workers_helpers import (
    Worker,
    decodes,
    image_rows,
    scan_archive,
    wait_until,
)

TODAY = date(2025, 9, 20)
SMALL = Schedule(today=TODAY, interval_minutes=60)
"""24 pictures a stream a day: days that take a second or two."""
TERMINAL = "apm"
PICTURE_SIZE = Faults().picture_bytes
BROKER = os.environ.get("DRAYDOG_TEST_BROKER_URL", DEFAULT_BROKER_URL)
FAST_PAGE = PageOptions(render_delay=(0.05, 0.1))


# --- the broker ---------------------------------------------------------------------


def broker_answers(host: str = "127.0.0.1", port: int = 5672) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_rabbitmq() -> None:
    """RabbitMQ on 127.0.0.1:5672, started (``rabbitmq-server -detached``) when down."""
    if broker_answers():
        return
    try:
        subprocess.run(
            ["rabbitmq-server", "-detached"], check=False, capture_output=True
        )
    except OSError:
        pass
    else:
        try:
            wait_until(broker_answers, 60, "RabbitMQ to answer", interval=0.5)
            return
        except pytest.fail.Exception:
            pass
    if os.environ.get("CI") or os.environ.get("DRAYDOG_REQUIRE_BROWSER") == "1":
        pytest.fail("RabbitMQ does not answer on 127.0.0.1:5672")
    pytest.skip("RabbitMQ does not answer on 127.0.0.1:5672")


def unique_queue(label: str) -> str:
    return f"test-{label}-{uuid.uuid4().hex[:10]}"


def delete_queues(names: Sequence[str]) -> None:
    """Remove a test's queues from the broker (they are durable)."""
    from kombu import Connection

    with Connection(BROKER, connect_timeout=5) as connection:
        for name in names:
            channel: Any = connection.channel()
            try:
                channel.queue_delete(name)
            except Exception:
                pass
            finally:
                channel.close()


# --- the replica ----------------------------------------------------------------------


@contextmanager
def running_replica(
    latency: float = 0.01, schedule: Schedule = SMALL, faults: Faults | None = None
) -> Iterator[ReplicaServer]:
    chosen = faults if faults is not None else Faults(latency=latency)
    with ReplicaServer(
        schedule=schedule, faults=chosen, page_options=FAST_PAGE
    ) as server:
        yield server


def day_times(stream: str, day: date, schedule: Schedule = SMALL) -> list[datetime]:
    return schedule.timestamps(TERMINAL, stream, day)


def expected_pictures(
    root: Path, days: Sequence[date], streams: Sequence[str], schedule: Schedule = SMALL
) -> dict[Path, bytes]:
    """Every full-size picture of ``days`` x ``streams`` under ``root``, with its bytes."""
    return {
        picture_path(root, TERMINAL, stream, wall).resolve(): picture_bytes(
            TERMINAL, stream, wall, size=PICTURE_SIZE
        )
        for day in days
        for stream in streams
        for wall in day_times(stream, day, schedule)
    }


def full_requests(server: ReplicaServer) -> Counter[str]:
    """Full-size picture requests per CDN path."""
    return Counter(
        record.path
        for record in server.request_log
        if record.path.startswith("/cdn/")
        and not record.path.endswith("-thumbnail.jpeg")
    )


# --- processes ------------------------------------------------------------------------


TEST_ENV = {
    "SE_OFFLINE": "true",
    "PYTHONUNBUFFERED": "1",
    "DRAYDOG_TASK_RETRY_DELAY": "0.3",
    "DRAYDOG_TASK_RETRIES": "8",
    "DRAYDOG_BROKER_URL": BROKER,
}


def start(
    name: str,
    args: Sequence[str],
    logs: Path,
    *,
    env: dict[str, str] | None = None,
    command: Sequence[str] | None = None,
) -> Worker:
    """``python -m modules <args>`` (or ``command``) in a session of its own."""
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    full_env = {**os.environ, **TEST_ENV, **(env or {})}
    argv = list(command) if command is not None else [sys.executable, "-m", "modules"]
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            [*argv, *args],
            stdout=out,
            stderr=err,
            cwd=logs,
            env=full_env,
            start_new_session=True,
        )
    return Worker(name, process, stdout, stderr)


def worker_args(
    queue: str,
    db_url: str,
    archive: Path,
    server: ReplicaServer,
    *,
    name: str,
    concurrency: int = 1,
    fetch_workers: int = 4,
    extra: Sequence[str] = (),
) -> list[str]:
    return [
        "worker",
        "--queue",
        queue,
        "--concurrency",
        str(concurrency),
        "--workers",
        str(fetch_workers),
        "--name",
        f"{name}@%h",
        "--db",
        db_url,
        "--dir",
        str(archive),
        "--app-url",
        server.app_url,
        "--cdn-url",
        server.cdn_url,
        *extra,
    ]


def enqueue_args(
    queue: str, days: Sequence[date], streams: Sequence[str], *, wait: bool = True
) -> list[str]:
    args = ["enqueue", "--start", days[0].isoformat(), "--end", days[-1].isoformat()]
    for stream in streams:
        args += ["--stream", stream]
    return args + ["--queue", queue] + (["--wait"] if wait else [])


def wait_ready(workers: Sequence[Worker], timeout: float = 90) -> None:
    """Until each worker consumes (Celery logs ``<name> ready.``); fails if one died."""

    def ready() -> bool:
        for worker in workers:
            if worker.process.poll() is not None:
                pytest.fail(f"worker {worker.name} exited:\n{worker.output()}")
        return all(" ready." in worker.err() for worker in workers)

    wait_until(ready, timeout, "the workers to be ready", interval=0.1)


def stop(worker: Worker, timeout: float = 60) -> int:
    """SIGTERM (Celery's warm shutdown) and the exit status."""
    if worker.process.poll() is None:
        worker.process.send_signal(signal.SIGTERM)
    return worker.wait(timeout)


def stop_all(workers: Sequence[Worker], timeout: float = 60) -> list[int]:
    """:func:`stop` for several workers at once: SIGTERM to each, then their exit
    statuses in order (each shuts down in a few seconds; one after another adds up)."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    return [worker.wait(timeout) for worker in workers]


def kill_session(worker: Worker) -> None:
    """SIGKILL the worker, its pool processes and its browser: a machine lost."""
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    worker.process.wait(30)


def tasks_done_by(worker: Worker) -> list[str]:
    """The task ids a worker's log says succeeded."""
    return re.findall(
        r"Task draydog\.archive_day\[([0-9a-f-]+)\] succeeded", worker.err()
    )


def tasks_received_by(worker: Worker) -> list[str]:
    return re.findall(
        r"Task draydog\.archive_day\[([0-9a-f-]+)\] received", worker.err()
    )


# --- the summary table ----------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRow:
    day: str
    stream: str
    found: str
    new: int
    thumbs: int
    present: int
    failed: str
    rows: int
    db_failed: int


def summary_rows(stdout: str) -> list[SummaryRow]:
    """The rows of the table ``download`` and ``enqueue --wait`` print."""
    rows: list[SummaryRow] = []
    lines = stdout.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.split()[:2] == ["day", "stream"]
    )
    for line in lines[header + 1 :]:
        cells = line.split()
        if len(cells) != 10 or not re.fullmatch(r"\d{4}-\d\d-\d\d", cells[0]):
            break
        rows.append(
            SummaryRow(
                cells[0],
                cells[1],
                cells[2],
                int(cells[3]),
                int(cells[4]),
                int(cells[5]),
                cells[6],
                int(cells[7]),
                int(cells[8]),
            )
        )
    return rows


# --- the archive ----------------------------------------------------------------------


def check_archive(root: Path, expected: dict[Path, bytes]) -> int:
    """Every expected picture once with the replica's bytes, one row each (size and
    SHA-256), nothing else on disk, no ``.part``; the number of rows."""
    state = scan_archive(root)
    assert state.parts == [], f".part files left: {state.parts}"
    assert [p for p in state.others if not p.name.startswith(".draydog-check-")] == []
    missing = set(expected) - set(state.pictures)
    extra = set(state.pictures) - set(expected)
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} extra"
    assert all(data == expected[path] for path, data in state.pictures.items())
    assert all(decodes(data) for data in state.pictures.values())
    rows = image_rows()
    base = root.resolve()
    located = Counter(queries.image_location(row, base) for row in rows)
    assert all(count == 1 for count in located.values()), "a picture has two rows"
    assert set(located) == set(expected)
    for row in rows:
        data = expected[queries.image_location(row, base)]
        assert row.file_size == len(data)
        assert row.sha256 == hashlib.sha256(data).hexdigest()
    return len(rows)


# --- a database that can be cut off -----------------------------------------------------


class CuttableProxy:
    """A TCP proxy to the database: :meth:`cut` drops every connection and refuses
    new ones (accepted, then closed at once) until :meth:`restore`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                self.refused += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()
