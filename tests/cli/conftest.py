"""Fixtures and helpers of the ``draydog`` command tests.

The command runs as a real subprocess (``python -m modules ...``) in the test's
``tmp_path``, against a replica served from this process on 127.0.0.1. The replica
is shared by a test module; every test gets it back with no faults and zeroed
request counters. Its "today" is pinned in the past (the command refuses days after
the real today at the terminal), and its page renders fast so the browser tests
stay quick.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from modules import cli
from modules.database import models
from modules.database.keys import path_for
from modules.database.models import DownloadRun, Image
from modules.downloader.archive import picture_path
from modules.site.urls import build_image_url
from modules.replica import Faults, ReplicaServer, Schedule
from modules.replica.page import PageOptions

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2025, 9, 20)
SCHEDULE = Schedule(today=TODAY)
TERMINAL = "apm"
FAST_PAGE = PageOptions(render_delay=(0.05, 0.15), image_stagger=0.001)
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/x"
"""A PostgreSQL URL on a closed port: every connection is refused at once."""
CLOSED_SITE = "http://127.0.0.1:9"
"""Where a command that should never reach a site is pointed, just in case."""
REQUIRE_BROWSER_ENV = "DRAYDOG_REQUIRE_BROWSER"
SUMMARY_COLUMNS = (
    "day",
    "stream",
    "found",
    "new",
    "thumbs",
    "present",
    "failed",
    "rows+",
    "db fail",
    "MB",
)
_SUMMARY_ROW = re.compile(
    r"\d{4}-\d{2}-\d{2} +[a-z0-9_-]+( +\d+){4} +(\d+|day)( +\d+){2} +\d+\.\d"
)
"""A row of the summary table (a failure listed under it starts with two spaces)."""


# --- running the command ------------------------------------------------------------


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, importing the repository, without site URLs set."""
    env = dict(os.environ)
    for name in ("DRAYDOG_APP_URL", "DRAYDOG_CDN_URL"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO), env.get("PYTHONPATH", "")) if part
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "modules", *args]


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run ``draydog ARGS`` in ``cwd`` and wait for it (stdout and stderr are pipes: no TTY)."""
    return subprocess.run(
        cli_command(*args),
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``draydog ARGS`` in ``cwd`` without waiting."""
    return subprocess.Popen(
        cli_command(*args),
        cwd=cwd,
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_clean_exit(
    result: subprocess.CompletedProcess[str], expected: int = 0
) -> None:
    """The command ended with ``expected`` and printed no traceback."""
    assert result.returncode == expected, (
        f"exit {result.returncode}, expected {expected}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr + result.stdout


@dataclass
class MainResult:
    """What an in-process ``modules.cli.main`` call returned and printed."""

    code: int
    out: str
    err: str


RunMain = Callable[..., MainResult]


@pytest.fixture
def run_main(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[RunMain]:
    """Calls ``modules.cli.main(args)`` in this process, in ``tmp_path``.

    ``main`` installs a SIGTERM handler, configures logging and may switch the
    database: all of that is put back afterwards.
    """
    monkeypatch.chdir(tmp_path)
    for name in ("DRAYDOG_APP_URL", "DRAYDOG_CDN_URL"):
        monkeypatch.delenv(name, raising=False)
    sigterm = signal.getsignal(signal.SIGTERM)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def run(*args: str) -> MainResult:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return MainResult(code, out, err)

    yield run
    signal.signal(signal.SIGTERM, sigterm)
    root.handlers[:] = handlers
    root.setLevel(level)


# --- the browser ----------------------------------------------------------------------


def browser_missing_reason() -> str | None:
    """Why browser discovery cannot run here, or None when it can."""
    try:
        from modules.downloader.browser import find_browser
    except ImportError as exc:  # pragma: no cover - only while discovery is missing
        return f"browser discovery is not available: {exc}"
    try:
        find_browser()
    except Exception as exc:
        return str(exc)
    return None


@pytest.fixture
def require_browser() -> None:
    """Skip the test when there is no Chromium/chromedriver, unless they are required."""
    reason = browser_missing_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(f"{REQUIRE_BROWSER_ENV}=1 but no browser: {reason}")
    pytest.skip(f"no headless Chromium: {reason}")


# --- the replica ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replica_server() -> Iterator[ReplicaServer]:
    with ReplicaServer(schedule=SCHEDULE, page_options=FAST_PAGE) as server:
        yield server


@pytest.fixture
def replica(replica_server: ReplicaServer) -> Iterator[ReplicaServer]:
    """The module's replica with no faults and zeroed counters for this test."""
    replica_server.schedule = SCHEDULE
    replica_server.faults = Faults()
    replica_server.page_options = FAST_PAGE
    replica_server.reset_counters()
    yield replica_server
    replica_server.faults = Faults()


def site_options(replica: ReplicaServer) -> list[str]:
    return ["--app-url", replica.app_url, "--cdn-url", replica.cdn_url]


def day_times(day: date, stream: str = "in_gate") -> list[datetime]:
    """The replica's capture times of one day (naive wall-clock times)."""
    return SCHEDULE.timestamps(TERMINAL, stream, day)


def picture_url(
    replica: ReplicaServer, wall: datetime, stream: str = "in_gate", thumb: bool = False
) -> str:
    return build_image_url(replica.cdn_url, TERMINAL, stream, wall, thumb)


def write_timestamps(path: Path, times: Sequence[datetime]) -> Path:
    """A ``--timestamps-file``: one ISO time a line, with a comment and a blank line."""
    lines = ["# timestamps of the test", ""] + [t.isoformat() for t in times]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the archive and the database --------------------------------------------------------


def sqlite_file_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def expected_paths(
    root: Path,
    times: Sequence[datetime],
    stream: str = "in_gate",
    thumbnails: frozenset[datetime] = frozenset(),
) -> set[Path]:
    """Where the archive keeps these pictures (a thumbnail for the times in ``thumbnails``)."""
    return {
        picture_path(root.resolve(), TERMINAL, stream, t, thumbnail=t in thumbnails)
        for t in times
    }


def pictures_under(root: Path) -> set[Path]:
    """Every ``.jpg`` file below ``root`` (absolute, resolved)."""
    return {path.resolve() for path in root.rglob("*.jpg") if path.is_file()}


def part_files(root: Path) -> list[str]:
    """Leftover ``.part`` files (hidden ones included) below ``root``."""
    return [
        os.path.join(folder, name)
        for folder, _, names in os.walk(root)
        for name in names
        if name.endswith(".part")
    ]


def _session(url: str) -> tuple[Session, Callable[[], None]]:
    engine = create_engine(models.normalize_url(url))
    session = Session(engine, expire_on_commit=False)

    def close() -> None:
        session.close()
        engine.dispose()

    return session, close


def read_images(url: str) -> list[Image]:
    """Every image row of the database at ``url`` (its own engine, closed again)."""
    session, close = _session(url)
    try:
        rows = list(session.scalars(select(Image).order_by(Image.filepath)))
        session.expunge_all()
        return rows
    finally:
        close()


def row_paths(url: str, root: Path) -> list[Path]:
    """The full path of every image row's file in the archive at ``root`` (duplicates
    kept, to be counted)."""
    return [path_for(row.filepath, root.resolve()) for row in read_images(url)]


def read_runs(url: str) -> list[DownloadRun]:
    session, close = _session(url)
    try:
        rows = list(session.scalars(select(DownloadRun).order_by(DownloadRun.id)))
        session.expunge_all()
        return rows
    finally:
        close()


def delete_rows(url: str, filepaths: Sequence[str]) -> None:
    session, close = _session(url)
    try:
        for row in session.scalars(select(Image).where(Image.filepath.in_(filepaths))):
            session.delete(row)
        session.commit()
    finally:
        close()


# --- the command's output ------------------------------------------------------------------


def parse_summary(stdout: str) -> dict[tuple[str, str], dict[str, str]]:
    """The summary table's rows by (day, stream), each cell by its column name."""
    lines = stdout.splitlines()
    header = [
        i
        for i, line in enumerate(lines)
        if line.split()[:3] == ["day", "stream", "found"]
    ]
    assert len(header) == 1, f"no single summary table in:\n{stdout}"
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for line in lines[header[0] + 1 :]:
        if not _SUMMARY_ROW.fullmatch(line):
            break
        cells = dict(zip(SUMMARY_COLUMNS, line.split()))
        key = (cells["day"], cells["stream"])
        assert key not in rows, f"{key} twice in the summary:\n{stdout}"
        rows[key] = cells
    return rows
