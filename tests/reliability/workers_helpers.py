"""Helpers of the several-workers tests: the replica, ``draydog`` processes, and archive checks.

The replica runs in the test process (so its request counters see every worker),
the workers are real ``python -m modules download`` processes, and the checks read
the archive folder and the database the workers share.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from modules.database import queries
from modules.database.models import DownloadRun, Image, session_scope
from modules.downloader.archive import picture_path
from modules.downloader.fetch import HOST_TAG, PART_SUFFIX
from modules.site.urls import build_image_url
from modules.replica import Faults, ReplicaServer, Schedule
from modules.replica.jpeg import picture_bytes

TODAY = date(2025, 9, 20)
SCHEDULE = Schedule(today=TODAY)
TERMINAL = "apm"
PICTURE_SIZE = Faults().picture_bytes
REQUIRE_BROWSER_ENV = "DRAYDOG_REQUIRE_BROWSER"


# --- the replica --------------------------------------------------------------------


@contextmanager
def running_replica(latency: float) -> Iterator[ReplicaServer]:
    """The replica on a free port with every CDN answer delayed by ``latency`` seconds."""
    with ReplicaServer(schedule=SCHEDULE, faults=Faults(latency=latency)) as server:
        yield server


def day_times(stream: str, day: date) -> list[datetime]:
    """The replica's capture times of one stream and day (naive wall-clock times)."""
    return SCHEDULE.timestamps(TERMINAL, stream, day)


def full_url(server: ReplicaServer, stream: str, wall: datetime) -> str:
    """The full-size URL the downloader asks for (ISO form)."""
    return build_image_url(server.cdn_url, TERMINAL, stream, wall, False)


def replica_bytes(stream: str, wall: datetime) -> bytes:
    """What the replica serves for a full-size picture."""
    return picture_bytes(TERMINAL, stream, wall, size=PICTURE_SIZE)


def write_timestamps(path: Path, walls: Iterable[datetime]) -> Path:
    """A ``--timestamps-file``: one ISO wall-clock time per line."""
    path.write_text("".join(f"{wall.isoformat()}\n" for wall in walls), "utf-8")
    return path


def expected_pictures(
    root: Path, stream: str, walls: Iterable[datetime]
) -> dict[Path, bytes]:
    """Where each full-size picture must end up under ``root``, with its bytes."""
    return {
        picture_path(root, TERMINAL, stream, wall).resolve(): replica_bytes(
            stream, wall
        )
        for wall in walls
    }


# --- worker processes ---------------------------------------------------------------


GATED_MAIN = """
import sys, time
from pathlib import Path
from modules.cli import main
ready, gate = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not gate.exists():
    time.sleep(0.005)
sys.exit(main(sys.argv[3:]))
"""
"""``draydog`` behind a gate: imports done, it says it is ready and waits for the gate
file, so that processes started one after another on a busy machine begin together."""


@dataclass
class Worker:
    """A ``draydog`` process whose stdout and stderr go to files."""

    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    ready: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float) -> int:
        """The exit status; fails the test (after killing it) if it runs past ``timeout``."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"worker {self.name} ran past {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL, then reap: the process gets no chance to clean up."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def output(self) -> str:
        return (
            f"--- {self.name} stdout ---\n{self.stdout.read_text(errors='replace')}"
            f"--- {self.name} stderr ---\n{self.stderr.read_text(errors='replace')}"
        )

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")


def start_draydog(
    name: str, args: Sequence[str], logs: Path, *, gate: Path | None = None
) -> Worker:
    """Start ``draydog <args>`` (``python -m modules``) in ``logs``, its working folder.

    With ``gate`` the process runs the same ``main`` once that file exists (see
    :func:`open_gate`).
    """
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    ready = None if gate is None else logs / f"{name}.ready"
    if ready is None or gate is None:
        command = [sys.executable, "-m", "modules", *args]
    else:
        command = [sys.executable, "-c", GATED_MAIN, str(ready), str(gate), *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        # A session of its own: the browser a killed worker leaves behind can be
        # found (its process group) and cleaned up once the test is over.
        process = subprocess.Popen(
            command, stdout=out, stderr=err, cwd=logs, env=env, start_new_session=True
        )
    return Worker(name, process, stdout, stderr, ready)


def open_gate(workers: Sequence[Worker], gate: Path, timeout: float = 90) -> None:
    """Once every gated worker is ready (or has died), let them all go at once."""
    wait_until(
        lambda: all(
            w.ready is not None and (w.ready.exists() or w.process.poll() is not None)
            for w in workers
        ),
        timeout,
        "the workers to be ready",
    )
    gate.touch()


@contextmanager
def reaped(workers: list[Worker]) -> Iterator[list[Worker]]:
    """Kill whatever is still running on the way out (a failing test leaves no process),
    including the browsers of workers killed mid-run."""
    try:
        yield workers
    finally:
        for worker in workers:
            worker.kill()
            try:
                os.killpg(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> float:
    """Poll ``condition`` until true; the seconds it took. Fails the test after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


def dead_part_name(final: Path, pid: int) -> Path:
    """A ``.part`` beside ``final`` as process ``pid`` of this host would name it."""
    return final.with_name(f".{final.name}.{HOST_TAG}-{pid}-deadbeef{PART_SUFFIX}")


# --- what is on disk and in the database --------------------------------------------


@dataclass(frozen=True)
class ArchiveState:
    """The files under an archive root: pictures by resolved path, and ``.part`` leftovers."""

    pictures: dict[Path, bytes]
    parts: list[Path]
    others: list[Path]


def scan_archive(root: Path) -> ArchiveState:
    pictures: dict[Path, bytes] = {}
    parts: list[Path] = []
    others: list[Path] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        if path.name.endswith(PART_SUFFIX):
            parts.append(path)
        elif path.suffix == ".jpg" and not path.name.startswith("."):
            pictures[path.resolve()] = path.read_bytes()
        else:
            others.append(path)
    return ArchiveState(pictures, parts, others)


def jpgs_in(folder: Path) -> set[Path]:
    """The complete pictures in one day folder (``.part`` files are hidden names)."""
    if not folder.is_dir():
        return set()
    return {path.resolve() for path in folder.glob("*.jpg")}


def image_rows() -> list[Image]:
    with session_scope() as session:
        return list(session.execute(select(Image).order_by(Image.id)).scalars())


def run_rows() -> list[DownloadRun]:
    with session_scope() as session:
        query = select(DownloadRun).order_by(DownloadRun.id)
        return list(session.execute(query).scalars())


def decodes(data: bytes) -> bool:
    """Whether Pillow decodes these bytes as a whole JPEG."""
    try:
        with PILImage.open(io.BytesIO(data)) as picture:
            picture.load()
            return bool(picture.format == "JPEG")
    except Exception:
        return False


@dataclass(frozen=True)
class Figures:
    """What a test saw, for the report: pictures expected and kept, rows, duplicates, leftovers."""

    expected: int
    files: int
    rows: int
    duplicate_rows: int
    parts: int

    def __str__(self) -> str:
        return (
            f"pictures expected {self.expected}, files {self.files}, rows {self.rows}, "
            f"duplicate rows {self.duplicate_rows}, .part left {self.parts}"
        )


def check_archive(root: Path, expected: dict[Path, bytes]) -> Figures:
    """Every expected picture exactly once on disk with the replica's bytes, one row
    each whose size and SHA-256 match, nothing else on disk, no ``.part`` left."""
    state = scan_archive(root)
    assert state.parts == [], f".part files left: {state.parts}"
    assert state.others == []
    missing = set(expected) - set(state.pictures)
    extra = set(state.pictures) - set(expected)
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} extra"
    wrong = [path for path, data in state.pictures.items() if data != expected[path]]
    assert wrong == [], f"{len(wrong)} pictures differ from the replica's"
    assert all(decodes(data) for data in state.pictures.values())

    rows = image_rows()
    base = root.resolve()
    paths = Counter(str(queries.image_location(row, base)) for row in rows)
    duplicates = sum(count - 1 for count in paths.values())
    assert duplicates == 0
    assert set(paths) == {str(path) for path in expected}
    for row in rows:
        data = expected[queries.image_location(row, base)]
        assert row.file_size == len(data)
        assert row.sha256 == hashlib.sha256(data).hexdigest()
        assert row.terminal == TERMINAL and not row.is_thumbnail
    return Figures(len(expected), len(state.pictures), len(rows), duplicates, 0)


def check_finished_run(run: DownloadRun) -> None:
    """A finished run's statistics add up: every picture asked for is accounted for
    once on disk and once in the database, and nothing failed."""
    assert run.finished_at is not None and run.status == "ok", (run.id, run.status)
    assert run.downloaded + run.already_present + run.failed == run.requested
    stored = run.downloaded + run.already_present
    assert run.db_inserted + run.db_duplicates + run.db_failed == stored
    assert run.failed == 0 and run.db_failed == 0
    assert run.bytes == run.downloaded * PICTURE_SIZE


def runs_overlap(runs: Sequence[DownloadRun]) -> timedelta:
    """How long every run was going at once (negative: they did not all overlap)."""
    finished = [run.finished_at for run in runs if run.finished_at is not None]
    assert len(finished) == len(runs)
    return min(finished) - max(run.started_at for run in runs)


def cdn_requests(server: ReplicaServer) -> Counter[str]:
    """Requests per CDN path (pictures and thumbnails) the replica received."""
    return Counter(
        record.path for record in server.request_log if record.path.startswith("/cdn/")
    )


def is_thumbnail_path(path: str) -> bool:
    return path.endswith("-thumbnail.jpeg")


def path_of(url: str) -> str:
    """The path a replica counter is keyed by."""
    return urlsplit(url).path


def require_browser() -> None:
    """Skip without Chromium and chromedriver, or fail when ``DRAYDOG_REQUIRE_BROWSER=1``."""
    from modules.downloader.browser import find_browser
    from modules.downloader.discovery import BrowserUnavailable

    try:
        find_browser()
    except BrowserUnavailable as exc:
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{REQUIRE_BROWSER_ENV}=1 but {exc}")
        pytest.skip(str(exc))
