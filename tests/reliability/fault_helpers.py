"""Helpers of the reliability tests: the replica, what a fault should do, and the figures of a run.

The replica decides every fault from a hash of the URL path and the request's
number, so a test can say beforehand what each picture's fate must be
(:func:`predict_picture`) and count afterwards which faults were really served
(:func:`faults_served`). :func:`run_mixed_faults` is the mixed-fault scenario of
``test_faults.py``; ``python -m tests.reliability.fault_helpers`` runs it on its own
and prints the figures table that ``RELIABILITY.md`` quotes.
"""

from __future__ import annotations

import hashlib

import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

import pytest

from modules.database import models, queries
from modules.database.models import Image
from modules.downloader import DrayDogDownloader, build_image_url, parse_image_url
from modules.downloader.browser import find_browser
from modules.downloader.discovery import BrowserUnavailable
from modules.downloader.archive import read_picture_path
from modules.downloader.fetch import PART_SUFFIX
from modules.downloader.report import DownloadReport
from modules.replica import Fault, Faults, ReplicaServer
from modules.replica.jpeg import DEFAULT_SIZE, picture_bytes
from modules.replica.server import CDN_PREFIX

# The same replica day as the downloader tests, re-exported for the fault tests.
from tests.downloader.conftest import DAY as DAY
from tests.downloader.conftest import SCHEDULE as SCHEDULE
from tests.downloader.conftest import STREAM as STREAM
from tests.downloader.conftest import TERMINAL as TERMINAL
from tests.downloader.conftest import TODAY as TODAY
from tests.downloader.conftest import UNREACHABLE_DB as UNREACHABLE_DB
from tests.downloader.conftest import day_times as day_times
from tests.downloader.conftest import replica as replica
from tests.downloader.conftest import replica_server as replica_server
from tests.downloader.conftest import times_over_days as times_over_days

MiB = 1024 * 1024
SIZE_CAP = 1 * MiB
"""``max_image_bytes`` of the downloaders here: the endless and oversized bodies pass it."""
OVERSIZE_BYTES = 2 * MiB
TIMEOUT = 2.0
"""Seconds per request of the downloaders here (the hang fault lasts longer)."""
HANG_SECONDS = 2.6
MAX_RETRIES = 3
ATTEMPTS = MAX_RETRIES + 1
FOREVER = 1000
"""``errors_per_url`` for a fault that outlasts every retry. (Not 0: the replica's
429 lasts one request when ``errors_per_url`` is 0.)"""
PERMANENT_FAULTS = frozenset({Fault.HTML, Fault.ENDLESS, Fault.OVERSIZE})
"""Faults the downloader does not retry: the answer itself is wrong, not the network."""

Fate = Literal["full", "thumbnail", "failed"]


# --- the replica and its pictures -------------------------------------------------


def cdn_path(wall: datetime, stream: str = STREAM, thumbnail: bool = False) -> str:
    """The path the replica sees (and draws faults by) for a picture's ISO URL."""
    return CDN_PREFIX + build_image_url("", TERMINAL, stream, wall, thumbnail)


def url_of(
    server: ReplicaServer,
    wall: datetime,
    stream: str = STREAM,
    thumbnail: bool = False,
) -> str:
    """The replica URL of a picture (ISO form, as the downloader builds it)."""
    return build_image_url(server.cdn_url, TERMINAL, stream, wall, thumbnail)


def expected_bytes(
    wall: datetime, stream: str = STREAM, thumbnail: bool = False
) -> bytes:
    """What the replica serves for a picture when nothing goes wrong."""
    return picture_bytes(TERMINAL, stream, wall, thumbnail=thumbnail, size=DEFAULT_SIZE)


def new_downloader(
    server: ReplicaServer, root: Path, **overrides: object
) -> DrayDogDownloader:
    """A downloader on the replica with quick retries, short timeouts and a 1 MiB cap."""
    options: dict[str, object] = {
        "download_dir": root,
        "cdn_url": server.cdn_url,
        "app_url": server.app_url,
        "retry_delay": 0.01,
        "timeout": TIMEOUT,
        "max_retries": MAX_RETRIES,
        "max_image_bytes": SIZE_CAP,
    }
    options.update(overrides)
    return DrayDogDownloader(**options)  # type: ignore[arg-type]


def require_browser() -> tuple[str, str]:
    """Chromium and chromedriver, or skip (fail under ``DRAYDOG_REQUIRE_BROWSER=1``)."""
    try:
        return find_browser()
    except BrowserUnavailable as exc:
        if os.environ.get("DRAYDOG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DRAYDOG_REQUIRE_BROWSER=1 but {exc}")
        pytest.skip(f"no browser ({exc}); apt-get install chromium chromium-driver")


def profile_processes(profile: str) -> list[int]:
    """The live (not zombie) processes started with ``--user-data-dir=<profile>``."""
    marker = f"--user-data-dir={profile}".encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker not in cmdline.read_bytes().split(b"\0"):
                continue
            state = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append(int(cmdline.parent.name))
    return found


# --- the archive and the database ----------------------------------------------------


def files_under(root: Path) -> list[Path]:
    """Every file below ``root``, hidden ones (``.part``) included."""
    if not root.exists():
        return []
    return sorted(path for path in root.rglob("*") if path.is_file())


def part_files(root: Path) -> list[Path]:
    """The ``.part`` files below ``root``: there must never be one after a run."""
    return [path for path in files_under(root) if path.name.endswith(PART_SUFFIX)]


def rows_under(root: Path) -> list[Image]:
    """The image rows whose files lie under ``root``, each with ``filepath`` read back as
    the file's full path (``queries.image_location``)."""
    base = root.resolve()
    rows = []
    for row in queries.list_images():
        full = queries.image_location(row, base)
        if full.is_relative_to(base):
            row.filepath = str(full)  # a detached copy: the row itself keeps its key
            rows.append(row)
    return rows


@dataclass(frozen=True)
class KeptPicture:
    """A file of the archive, checked against the replica's picture."""

    path: Path
    stream: str
    wall_time: datetime
    is_thumbnail: bool


def verify_archive(root: Path) -> list[KeptPicture]:
    """Every file under ``root``, each checked to be a layout picture with the replica's exact bytes.

    Raises AssertionError naming any ``.part`` file, stray file or picture whose
    bytes differ from what the replica serves for it.
    """
    kept: list[KeptPicture] = []
    bad: list[str] = []
    for path in files_under(root):
        found = read_picture_path(path)
        if found is None:
            bad.append(f"{path}: not a picture of the layout (a .part file?)")
            continue
        wanted = expected_bytes(found.wall_time, found.stream, found.is_thumbnail)
        if path.read_bytes() != wanted:
            bad.append(f"{path}: {path.stat().st_size} bytes, not the replica's")
            continue
        kept.append(
            KeptPicture(path, found.stream, found.wall_time, found.is_thumbnail)
        )
    assert not bad, "bad files in the archive:\n" + "\n".join(bad)
    return kept


def check_one_row_per_file(root: Path) -> int:
    """Assert the rows under ``root`` are exactly one per file, with its size and hash; their count."""
    files = {str(path.resolve()): path for path in files_under(root)}
    rows = rows_under(root)
    paths = [row.filepath for row in rows]
    assert len(paths) == len(set(paths)), "duplicate rows"
    assert set(paths) == set(files), (
        f"{len(set(files) - set(paths))} files without a row, "
        f"{len(set(paths) - set(files))} rows without a file"
    )
    for row in rows:
        body = files[row.filepath].read_bytes()
        assert row.file_size == len(body), row.filepath
        assert row.sha256 == hashlib.sha256(body).hexdigest(), row.filepath
    return len(rows)


# --- what the faults do -----------------------------------------------------------------


@dataclass
class SplitFaults(Faults):
    """Faults of which a ``persistent_rate`` share of URLs misbehave forever.

    The others misbehave for their first ``errors_per_url`` requests, as in
    :class:`Faults`: one run then has pictures that recover on a retry and
    pictures that never do.
    """

    persistent_rate: float = 0.0

    def _lasting(self, path: str) -> Faults:
        if self._picks(self.persistent_rate, "persistent", path):
            return replace(self, errors_per_url=FOREVER, persistent_rate=0.0)
        return self

    def fault_for(self, path: str, attempt: int) -> Fault | None:
        faults = self._lasting(path)
        if faults is self:
            return super().fault_for(path, attempt)
        return faults.fault_for(path, attempt)

    def hangs(self, path: str, attempt: int) -> bool:
        faults = self._lasting(path)
        if faults is self:
            return super().hangs(path, attempt)
        return faults.hangs(path, attempt)


def predict_url(
    faults: Faults, path: str, attempts: int = ATTEMPTS, timeout: float = TIMEOUT
) -> bool:
    """Whether the downloader gets an existing picture's URL within ``attempts`` requests.

    Mirrors the replica (hang, then the fault of that request) and the documented
    policy: timeouts, resets, 5xx, 429 and truncated bodies are retried; HTML, an
    endless or an oversized body are not.
    """
    for attempt in range(1, attempts + 1):
        if faults.hangs(path, attempt) and faults.hang_seconds >= timeout:
            continue
        fault = effective_fault(faults, path, attempt)
        if fault is None:
            return True
        if fault in PERMANENT_FAULTS:
            return False
    return False


def effective_fault(faults: Faults, path: str, attempt: int) -> Fault | None:
    """The fault the replica really serves: ``oversize`` leaves a thumbnail as it is.

    (The replica builds thumbnails at their own 5-8 KB whatever the size asked for.)
    """
    fault = faults.fault_for(path, attempt)
    if fault is Fault.OVERSIZE and path.endswith("-thumbnail.jpeg"):
        return None
    return fault


def predict_picture(
    faults: Faults,
    wall: datetime,
    stream: str = STREAM,
    attempts: int = ATTEMPTS,
    timeout: float = TIMEOUT,
) -> Fate:
    """What must become of a scheduled picture: kept full-size, kept as its thumbnail, or failed."""
    if faults.is_missing(TERMINAL, stream, wall, thumbnail=False):
        if faults.is_missing(TERMINAL, stream, wall, thumbnail=True):
            return "failed"
        thumbnail = cdn_path(wall, stream, thumbnail=True)
        return (
            "thumbnail"
            if predict_url(faults, thumbnail, attempts, timeout)
            else "failed"
        )
    full = cdn_path(wall, stream)
    return "full" if predict_url(faults, full, attempts, timeout) else "failed"


def faults_served(
    server: ReplicaServer, faults: Faults, timeout: float = TIMEOUT
) -> Counter[str]:
    """The faults the replica served since its counters were reset, by kind.

    Replays the request log with the replica's own rule. A hang longer than the
    client's timeout counts as ``timeout`` (the client never sees what follows it);
    404s of missing pictures count as ``missing`` (a state, not a fault).
    """
    attempts: Counter[str] = Counter()
    served: Counter[str] = Counter()
    for record in server.request_log:
        if not record.path.startswith(CDN_PREFIX + "/"):
            continue
        attempts[record.path] += 1
        attempt = attempts[record.path]
        ref = parse_image_url(record.path, SCHEDULE.source_timezone)
        if faults.is_missing(
            ref.terminal, ref.stream, ref.local_time, ref.is_thumbnail
        ):
            served["missing"] += 1
            continue
        if faults.hangs(record.path, attempt):
            if faults.hang_seconds >= timeout:
                served["timeout"] += 1
                continue
            served["slow"] += 1
        fault = effective_fault(faults, record.path, attempt)
        if fault is not None:
            served[fault.value] += 1
    return served


# --- the figures of a run -----------------------------------------------------------------


@dataclass
class Figures:
    """What a fault-injection run did, in the numbers RELIABILITY.md reports."""

    pictures_expected: int
    faults_injected: int
    faults_by_kind: dict[str, int]
    requests: int
    obtainable: int
    """Pictures the faults let through within the retries (full-size or thumbnail)."""
    kept: int
    kept_thumbnails: int
    reported_failed: int
    rows: int
    lost: int
    """Obtainable pictures not kept, kept pictures without a row, or bad files: must be 0."""
    bad_files: int
    seconds: float
    failure_reasons: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        """The figures as a Markdown table."""
        kinds = ", ".join(
            f"{k} {v}" for k, v in sorted(self.faults_by_kind.items()) if k != "missing"
        )
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.failure_reasons.items()))
        lines = [
            "| figure | value |",
            "| --- | --- |",
            f"| pictures expected | {self.pictures_expected} |",
            f"| faults injected | {self.faults_injected} ({kinds}) |",
            f"| 404 answers (picture or full-size missing: a state, not a fault) "
            f"| {self.faults_by_kind.get('missing', 0)} |",
            f"| requests to the CDN | {self.requests} |",
            f"| pictures obtainable within the retries | {self.obtainable} |",
            f"| pictures kept (bytes identical to the replica's) | {self.kept} "
            f"({self.kept_thumbnails} thumbnails) |",
            f"| pictures reported failed | {self.reported_failed} ({reasons}) |",
            f"| rows in the database | {self.rows} |",
            f"| bad files (.part, wrong bytes) | {self.bad_files} |",
            f"| lost | {self.lost} |",
            f"| seconds | {self.seconds:.1f} |",
        ]
        return "\n".join(lines)


MIXED_FAULTS = SplitFaults(
    seed=5,
    errors_per_url=2,
    persistent_rate=0.3,
    error_rate=0.12,
    retry_after_rate=0.05,
    retry_after=1.0,
    reset_rate=0.06,
    truncated_rate=0.06,
    html_rate=0.04,
    hang_rate=0.04,
    hang_seconds=HANG_SECONDS,
    endless_rate=0.03,
    oversize_rate=0.03,
    oversize_bytes=OVERSIZE_BYTES,
    missing_full_rate=0.06,
    missing_rate=0.03,
)
"""Every CDN fault at once: bursts that heal after two requests, and a third that never heal."""
MIXED_PICTURES = 150


@dataclass
class MixedRun:
    """The mixed-fault scenario's outcome: the report, each picture's predicted fate, the figures."""

    report: DownloadReport
    fates: dict[datetime, Fate]
    kept: list[KeptPicture]
    figures: Figures


_REASONS = (
    ("not a JPEG", "HTML"),
    ("too large", "too large"),
    ("404", "404 full-size and thumbnail"),
    ("HTTP 429", "429"),
    ("HTTP 503", "503"),
    ("Timeout", "timeout"),
    ("truncated", "truncated"),
    ("interrupted", "truncated"),
    ("connection failed", "reset"),
)


def _reason_kind(reason: str) -> str:
    """A failure reason of the report, as the kind of fault that caused it."""
    for words, kind in _REASONS:
        if words in reason:
            return kind
    return reason


def run_mixed_faults(
    server: ReplicaServer,
    root: Path,
    count: int = MIXED_PICTURES,
    faults: Faults = MIXED_FAULTS,
) -> MixedRun:
    """Download ``count`` pictures through ``faults`` into ``root`` (the database as configured)."""
    times = times_over_days(count)
    fates = {wall: predict_picture(faults, wall) for wall in times}
    server.faults = faults
    server.reset_counters()
    started = time.monotonic()
    with new_downloader(server, root) as downloader:
        report = downloader.download_images_direct(STREAM, times)
    seconds = time.monotonic() - started
    bad_files = len(part_files(root))
    try:
        kept = verify_archive(root)
    except AssertionError:
        kept = []
        bad_files = max(bad_files, 1)
    kept_by_time = {picture.wall_time: picture for picture in kept}
    rows = {row.filepath for row in rows_under(root)}
    lost = sum(
        1
        for wall, fate in fates.items()
        if fate != "failed"
        and (
            wall not in kept_by_time
            or kept_by_time[wall].is_thumbnail != (fate == "thumbnail")
        )
    )
    lost += sum(1 for picture in kept if str(picture.path.resolve()) not in rows)
    served = faults_served(server, faults)
    injected = {kind: n for kind, n in served.items() if kind != "missing"}
    figures = Figures(
        pictures_expected=len(times),
        faults_injected=sum(injected.values()),
        faults_by_kind=dict(served),
        requests=sum(
            1 for r in server.request_log if r.path.startswith(CDN_PREFIX + "/")
        ),
        obtainable=sum(1 for fate in fates.values() if fate != "failed"),
        kept=len(kept),
        kept_thumbnails=sum(1 for picture in kept if picture.is_thumbnail),
        reported_failed=len(report.failed),
        rows=len(rows),
        lost=lost,
        bad_files=bad_files,
        seconds=seconds,
        failure_reasons=dict(Counter(_reason_kind(r) for _, r in report.failed)),
    )
    return MixedRun(report, fates, kept, figures)


def main() -> int:
    """Run the mixed-fault scenario in a temporary folder and SQLite file; print the figures."""
    folder = Path(tempfile.mkdtemp(prefix="draydog-faults-"))
    try:
        models.configure(
            f"sqlite:///{folder / 'archive.sqlite3'}",
            retry_attempts=3,
            retry_delay=0.01,
        )
        with ReplicaServer(schedule=SCHEDULE) as server:
            run = run_mixed_faults(server, folder / "images")
        print(run.figures.table())
        return 0 if run.figures.lost == 0 and run.figures.bad_files == 0 else 1
    finally:
        if not os.environ.get("DRAYDOG_KEEP_FAULTS_RUN"):
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
