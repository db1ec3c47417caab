"""Faults injected into a real run: the database, the CDN, the disk and the browser.

Each test injects one fault (or, in ``test_mixed_cdn_faults``, all the CDN ones at
once) and checks the outcome the archiver promises: every picture that can be had
is kept with the replica's exact bytes, every one that cannot is reported and never
kept, no ``.part`` file stays, the database ends with one row per file, the run ends.

Seams used (the faults a test cannot cause for real on this machine):

* SQLite read-only: ``sqlite:///file:<path>?mode=ro&uri=true``. The tests run as
  root, for whom ``chmod 0444`` does not stop writes; ``mode=ro`` makes SQLite
  itself refuse them ("attempt to write a readonly database"), as a read-only file
  does for an ordinary user.
* A chunk failing mid-batch: ``modules.database.queries._insert_chunk`` wrapped to
  write half its rows and then fail (a transient "database is locked", or a real
  SQL error), inside the chunk's own transaction or savepoint.
* A full disk or an unwritable folder: ``open`` and ``os`` as seen by
  ``modules.downloader.fetch`` raise ENOSPC or EACCES for chosen pictures (as
  root a ``chmod 0555`` folder stays writable; for other users the real chmod is used).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from modules import cli
from modules.database import models, queries
from modules.downloader import fetch
from modules.downloader.discovery import DiscoveryError, DiscoveryResult
from modules.downloader.reindex import reindex_archive
from modules.downloader.selenium_client import DrayDogDownloader
from modules.replica import Fault, Faults, ReplicaServer
from modules.replica.page import PageOptions
from tests.reliability.fault_helpers import (  # noqa: F401  (fixtures)
    ATTEMPTS,
    DAY,
    FOREVER,
    HANG_SECONDS,
    MIXED_PICTURES,
    OVERSIZE_BYTES,
    SCHEDULE,
    STREAM,
    TERMINAL,
    UNREACHABLE_DB,
    cdn_path,
    check_one_row_per_file,
    day_times,
    new_downloader,
    part_files,
    profile_processes,
    replica,
    replica_server,
    require_browser,
    rows_under,
    run_mixed_faults,
    url_of,
    verify_archive,
)

slow = pytest.mark.slow


@pytest.fixture
def sqlite_db(sqlite_url: str) -> str:
    """This test's SQLite file as the archive, tables created, retries quick."""
    models.configure(sqlite_url, retry_attempts=3, retry_delay=0.01)
    models.init_db()
    return sqlite_url


@pytest.fixture
def sigterm_kept() -> Iterator[None]:
    """``cli.main`` installs a SIGTERM handler: give pytest its own back afterwards."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


# --- the database unavailable for a whole run ------------------------------------------


@dataclass(frozen=True)
class Outage:
    """A database URL that fails every write, and a working one to recover into."""

    down: str
    up: str


@pytest.fixture(
    params=[
        pytest.param(("closed-port", "sqlite"), id="closed-port-then-sqlite"),
        pytest.param(
            ("closed-port", "postgres"),
            id="closed-port-then-postgres",
            marks=pytest.mark.postgres,
        ),
        pytest.param(("read-only", "sqlite"), id="read-only-sqlite"),
    ]
)
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Outage:
    kind, backend = request.param
    if kind == "closed-port":
        up = request.getfixturevalue(f"{backend}_url")
        assert isinstance(up, str)
        return Outage(UNREACHABLE_DB, up)
    # An existing archive database (tables and all) that can only be read.
    path = tmp_path / "read-only.sqlite3"
    up = f"sqlite:///{path}"
    models.configure(up)
    models.init_db()
    models.configure(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        queries.insert_image("/probe.jpg", STREAM)
    except Exception as exc:
        assert "readonly" in str(exc)
    else:
        raise AssertionError("the read-only database accepted a write")
    return Outage(f"sqlite:///file:{path}?mode=ro&uri=true", up)


def test_database_down_for_a_whole_run_keeps_every_picture(
    outage: Outage, replica: ReplicaServer, tmp_path: Path
) -> None:
    models.configure(outage.down, retry_attempts=2, retry_delay=0.01)
    root = tmp_path / "images"
    times = day_times()[:24]
    with new_downloader(replica, root, batch_size=10) as downloader:
        report = downloader.download_images_direct(STREAM, times)
        # One picture by URL too, into its folder of the layout (reindex reads names).
        single = downloader.download_image(
            url_of(replica, day_times()[30]),
            root / TERMINAL / STREAM / DAY.isoformat(),
            STREAM,
        )
        assert downloader.db_failures == 24 + 1
    assert report.downloaded == len(report.files) == 24 and not report.failed
    assert report.db_failed == len(report.files) and report.db_inserted == 0
    assert report.run_id is None and not report.ok
    assert single is not None and Path(single).is_file()
    kept = verify_archive(root)
    assert len(kept) == 25 and not part_files(root)

    models.configure(outage.up)
    recovered = reindex_archive(root)
    assert (recovered.scanned, recovered.inserted, recovered.failed) == (25, 25, [])
    assert check_one_row_per_file(root) == 25
    again = reindex_archive(root)
    assert (again.missing, again.inserted) == (0, 0)
    assert check_one_row_per_file(root) == 25


def _summary_row(out: str, day: date) -> dict[str, str]:
    lines = out.splitlines()
    header = next(
        line.split() for line in lines if line.split()[:2] == ["day", "stream"]
    )
    header = [h for h in header if h != "fail"]  # "db fail" is one column
    row = next(line.split() for line in lines if line.startswith(str(day)))
    return dict(zip(header, row))


def test_database_down_cli_says_so_then_reindex_recovers(
    outage: Outage,
    replica: ReplicaServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sigterm_kept: None,
) -> None:
    root = tmp_path / "images"
    times = day_times()[:12]
    listing = tmp_path / "timestamps.txt"
    listing.write_text("".join(f"{t.isoformat()}\n" for t in times))
    models.configure(retry_attempts=2, retry_delay=0.01)
    status = cli.main(
        [
            "-q",
            "download",
            "--date",
            DAY.isoformat(),
            "--no-browser",
            "--timestamps-file",
            str(listing),
            "--dir",
            str(root),
            "--db",
            outage.down,
            "--cdn-url",
            replica.cdn_url,
            "--app-url",
            replica.app_url,
            "--timeout",
            "5",
            "--workers",
            "4",
            "--batch-size",
            "5",
        ]
    )
    out = capsys.readouterr().out
    assert status == cli.EXIT_FAILURES, out
    row = _summary_row(out, DAY)
    assert (row["found"], row["new"], row["failed"]) == ("12", "12", "0")
    assert (row["rows+"], row["db"]) == ("0", "12")
    assert "draydog reindex" in out
    assert len(verify_archive(root)) == 12 and not part_files(root)

    status = cli.main(["reindex", "--dir", str(root), "--db", outage.up])
    out = capsys.readouterr().out
    assert status == cli.EXIT_OK, out
    assert "12 pictures scanned, 12 without a row, 12 inserted" in out
    assert check_one_row_per_file(root) == 12
    assert cli.main(["reindex", "--dir", str(root), "--db", outage.up]) == 0
    assert "0 without a row, 0 inserted" in capsys.readouterr().out
    assert check_one_row_per_file(root) == 12


# --- the database failing in the middle of a batch -------------------------------------


def locked(session: Session) -> None:
    """A transient failure, as SQLite's busy database raises it."""
    raise OperationalError(
        "INSERT INTO images ...", {}, sqlite3.OperationalError("database is locked")
    )


def sql_error(session: Session) -> None:
    """A real, permanent SQL error in the chunk's transaction (which PostgreSQL then aborts)."""
    session.execute(text("SELECT no_such_column FROM no_such_table"))


class ChunkSaboteur:
    """``queries._insert_chunk`` that writes half of chunk ``number`` and then fails.

    It fails ``times`` times (None: every time); ``calls`` lists the chunk number
    of every call, retries included, and ``chunks`` the filepaths of each chunk.
    """

    def __init__(
        self,
        real: Callable[[Session, list[dict[str, Any]]], tuple[int, dict[str, int]]],
        number: int,
        times: int | None,
        failure: Callable[[Session], None],
    ) -> None:
        self.real = real
        self.number = number
        self.times = times
        self.failure = failure
        self.failures = 0
        self.active = True
        self.calls: list[int] = []
        self.chunks: list[tuple[str, ...]] = []

    def __call__(
        self, session: Session, chunk: list[dict[str, Any]]
    ) -> tuple[int, dict[str, int]]:
        key = tuple(row["filepath"] for row in chunk)
        if key not in self.chunks:
            self.chunks.append(key)
        number = self.chunks.index(key) + 1
        self.calls.append(number)
        failing = self.times is None or self.failures < self.times
        if self.active and number == self.number and failing:
            self.failures += 1
            self.real(session, chunk[: len(chunk) // 2])
            self.failure(session)
            raise AssertionError("the failure did not raise")
        return self.real(session, chunk)


@pytest.fixture
def saboteur_factory(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., ChunkSaboteur]:
    def install(
        number: int = 2,
        times: int | None = 1,
        failure: Callable[[Session], None] = locked,
    ) -> ChunkSaboteur:
        saboteur = ChunkSaboteur(queries._insert_chunk, number, times, failure)
        monkeypatch.setattr(queries, "_insert_chunk", saboteur)
        return saboteur

    return install


def test_chunk_failing_once_is_rolled_back_and_retried(
    database: str,
    replica: ReplicaServer,
    tmp_path: Path,
    saboteur_factory: Callable[..., ChunkSaboteur],
) -> None:
    saboteur = saboteur_factory(number=2, times=1, failure=locked)
    root = tmp_path / "images"
    with new_downloader(replica, root, batch_size=10) as downloader:
        report = downloader.download_images_direct(STREAM, day_times()[:35])
    assert saboteur.calls == [1, 2, 2, 3, 4]
    # Half of chunk 2 went in before the failure: had it survived the rollback,
    # the retry would have found those rows and counted them as duplicates.
    assert (report.db_inserted, report.db_duplicates, report.db_failed) == (35, 0, 0)
    assert report.ok
    assert check_one_row_per_file(root) == 35
    run = queries.recent_runs(1)[0]
    assert (run.status, run.db_inserted, run.db_failed) == ("ok", 35, 0)


@pytest.mark.parametrize(
    ("failure", "tries", "recovery"),
    [
        pytest.param(sql_error, 1, "rerun", id="sql-error-then-rerun"),
        pytest.param(locked, 3, "reindex", id="locked-forever-then-reindex"),
    ],
)
def test_chunk_failing_for_good_is_rolled_back_whole(
    database: str,
    replica: ReplicaServer,
    tmp_path: Path,
    saboteur_factory: Callable[..., ChunkSaboteur],
    failure: Callable[[Session], None],
    tries: int,
    recovery: str,
) -> None:
    saboteur = saboteur_factory(number=2, times=None, failure=failure)
    root = tmp_path / "images"
    times = day_times()[:35]
    with new_downloader(replica, root, batch_size=10) as downloader:
        report = downloader.download_images_direct(STREAM, times)
    # tries: not retried (a real SQL error) or up to the policy's 3 attempts (locked).
    assert saboteur.calls == [1] + [2] * tries + [3, 4]
    assert (report.db_inserted, report.db_failed) == (25, 10)
    assert report.downloaded == 35 and not report.failed and not report.ok
    assert len(verify_archive(root)) == 35
    rows = {row.filepath for row in rows_under(root)}
    assert len(rows) == 25
    assert not rows & set(saboteur.chunks[1]), "chunk 2 is half written"
    assert queries.recent_runs(1)[0].status == "db_failed"

    saboteur.active = False
    if recovery == "rerun":
        with new_downloader(replica, root, batch_size=10) as downloader:
            again = downloader.download_images_direct(STREAM, times)
        assert (again.already_present, again.downloaded) == (35, 0)
        assert (again.db_inserted, again.db_duplicates, again.db_failed) == (10, 25, 0)
    else:
        result = reindex_archive(root)
        assert (result.missing, result.inserted, result.failed) == (10, 10, [])
    assert check_one_row_per_file(root) == 35


def test_chunk_failing_inside_a_transaction_rolls_back_to_its_savepoint(
    database: str, saboteur_factory: Callable[..., ChunkSaboteur]
) -> None:
    saboteur = saboteur_factory(number=2, times=None, failure=sql_error)
    records = [
        {"filepath": f"/archive/p{n:02d}.jpg", "camera_id": STREAM} for n in range(30)
    ]
    with models.session_scope() as session:
        result = queries.insert_images(records, chunk_size=10, session=session)
        # The outer transaction is still usable after the failed chunk (PostgreSQL
        # would refuse every statement had the error not been rolled back to its savepoint).
        run = queries.start_run(TERMINAL, STREAM, 30, session=session)
    assert saboteur.calls == [1, 2, 3]
    assert (result.inserted, len(result.failed)) == (20, 10)
    assert {path for path, _ in result.failed} == set(saboteur.chunks[1])
    stored = {row.filepath for row in queries.list_images()}
    assert stored == {r["filepath"] for r in records} - set(saboteur.chunks[1])
    assert queries.recent_runs(1)[0].id == run.id


# --- the CDN ------------------------------------------------------------------------------

RETRIED = {
    "error": "HTTP 503",
    "retry_after": "HTTP 429",
    "reset": "connection failed",
    "truncated": "(body interrupted|truncated)",
    "hang": "Timeout",
}
"""Faults of the network: retried, then reported with this reason."""
NOT_RETRIED = {
    "html": r"not a JPEG \(text/html",
    "endless": "too large: over the cap",
    "oversize": f"too large: {OVERSIZE_BYTES} bytes declared",
}
"""Faults of the answer itself: reported at once, never retried."""


def _faults(kind: str, errors_per_url: int) -> Faults:
    base = Faults(
        seed=11,
        errors_per_url=errors_per_url,
        retry_after=0.05,
        hang_seconds=HANG_SECONDS,
        oversize_bytes=OVERSIZE_BYTES,
    )
    rate: dict[str, Any] = {f"{kind}_rate": 0.5}
    return replace(base, **rate)


@pytest.mark.parametrize(
    ("kind", "lasting"),
    [
        pytest.param(
            kind,
            lasting,
            id=f"{kind}-{lasting}",
            marks=[slow] if kind == "hang" else [],
        )
        for kind in [*RETRIED, *NOT_RETRIED]
        for lasting in ("burst", "forever")
    ],
)
def test_cdn_fault(
    kind: str,
    lasting: str,
    sqlite_db: str,
    replica: ReplicaServer,
    tmp_path: Path,
) -> None:
    """Half the pictures misbehave for 2 requests (burst) or for good (forever)."""
    faults = _faults(kind, errors_per_url=2 if lasting == "burst" else FOREVER)
    times = day_times()[:16]
    picked = {
        wall
        for wall in times
        if faults.fault_for(cdn_path(wall), 1) is not None
        or faults.hangs(cdn_path(wall), 1)
    }
    assert 3 <= len(picked) <= 13, "the seed should pick some pictures, not all"
    replica.faults = faults
    root = tmp_path / "images"
    started = time.monotonic()
    with new_downloader(replica, root) as downloader:
        report = downloader.download_images_direct(STREAM, times)
    seconds = time.monotonic() - started

    retried = kind in RETRIED
    recovers = retried and lasting == "burst"
    failed = {datetime.fromisoformat(when) for when, _ in report.failed}
    assert failed == (set() if recovers else picked)
    for _, reason in report.failed:
        assert re.search((RETRIED | NOT_RETRIED)[kind], reason), reason
    for wall in times:
        expected = 1
        if wall in picked:
            expected = (3 if recovers else ATTEMPTS) if retried else 1
        assert replica.requests_for(cdn_path(wall)) == expected, wall
        assert replica.requests_for(cdn_path(wall, thumbnail=True)) == 0
    kept = verify_archive(root)
    assert {picture.wall_time for picture in kept} == set(times) - failed
    assert not any(picture.is_thumbnail for picture in kept)
    assert (report.downloaded, len(report.files)) == (len(kept), len(kept))
    assert check_one_row_per_file(root) == len(kept)
    assert seconds < 30


def test_retry_after_is_honoured(
    sqlite_db: str, replica: ReplicaServer, tmp_path: Path
) -> None:
    replica.faults = Faults(retry_after_rate=1.0, retry_after=1.0, errors_per_url=1)
    times = day_times()[:3]
    root = tmp_path / "images"
    with new_downloader(replica, root, retry_delay=0.01) as downloader:
        report = downloader.download_images_direct(STREAM, times)
    assert report.ok and report.downloaded == 3
    for wall in times:
        moments = [r.monotonic for r in replica.request_log if r.path == cdn_path(wall)]
        assert len(moments) == 2
        assert moments[1] - moments[0] >= 1.0, "retried before Retry-After: 1"
    assert len(verify_archive(root)) == 3


@slow
def test_mixed_cdn_faults(
    sqlite_db: str, replica: ReplicaServer, tmp_path: Path
) -> None:
    """Every CDN fault over 150 pictures: some heal after two requests, some never do."""
    root = tmp_path / "images"
    run = run_mixed_faults(replica, root)
    figures = run.figures
    print("\nmixed CDN faults, last run:\n" + figures.table())

    assert figures.pictures_expected == run.report.requested == MIXED_PICTURES
    kinds = {kind for kind, n in figures.faults_by_kind.items() if n}
    assert kinds >= {
        Fault.ERROR.value,
        Fault.RETRY_AFTER.value,
        Fault.RESET.value,
        Fault.TRUNCATED.value,
        Fault.HTML.value,
        Fault.ENDLESS.value,
        Fault.OVERSIZE.value,
        "timeout",
        "missing",
    }
    kept = {picture.wall_time: picture for picture in run.kept}
    failed = {datetime.fromisoformat(when) for when, _ in run.report.failed}
    for wall, fate in run.fates.items():
        if fate == "failed":
            assert wall in failed and wall not in kept, wall
        else:
            assert wall in kept and wall not in failed, wall
            assert kept[wall].is_thumbnail == (fate == "thumbnail"), wall
    assert figures.kept == figures.obtainable == len(run.report.files)
    assert figures.kept + figures.reported_failed == figures.pictures_expected
    assert figures.rows == figures.kept
    assert (figures.lost, figures.bad_files) == (0, 0)
    assert 0 < figures.reported_failed < figures.pictures_expected
    assert figures.kept_thumbnails > 0
    assert check_one_row_per_file(root) == figures.kept
    assert figures.seconds < 60


# --- the disk -------------------------------------------------------------------------------


class _FailingFile:
    """A real ``.part`` file whose write puts half the data down and then fails."""

    def __init__(self, handle: IO[bytes], error: OSError) -> None:
        self.handle = handle
        self.error = error

    def __enter__(self) -> _FailingFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.handle.close()

    def write(self, data: bytes) -> int:
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise self.error

    def flush(self) -> None:
        self.handle.flush()

    def fileno(self) -> int:
        return self.handle.fileno()


class _OsWithFailingFsync:
    """``os`` for fetch.py, whose fsync fails for the doomed pictures' ``.part`` files."""

    def __init__(self, doomed: Callable[[str], bool]) -> None:
        self.doomed = doomed

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fsync(self, fd: int) -> None:
        if self.doomed(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(fd)


def _no_space(where: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), where)


@pytest.mark.parametrize("fault", ["no-space-on-write", "no-space-on-fsync", "denied"])
def test_disk_fault(
    fault: str,
    sqlite_db: str,
    replica: ReplicaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "images"
    first, second = day_times(DAY)[:10], day_times(DAY + timedelta(days=1))[:10]
    times = first + second
    if fault == "denied":
        # The first day's folder cannot be written to; the second day's can.
        doomed_times = set(first)
        forbidden = root / TERMINAL / STREAM / DAY.isoformat()
        forbidden.mkdir(parents=True)

        def doomed(path: str) -> bool:
            return Path(path).parent == forbidden

    else:
        doomed_times = set(times[::4])
        names = {f"{STREAM}_{w:%Y%m%dT%H%M%S}.jpg" for w in doomed_times}

        def doomed(path: str) -> bool:
            return any(Path(path).name.startswith(f".{n}.") for n in names)

    real_open = open
    seen_parts: list[str] = []

    def fake_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        seen_parts.append(str(path))
        if fault == "denied" and doomed(str(path)) and os.geteuid() == 0:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        handle = real_open(path, mode, *args, **kwargs)
        if fault == "no-space-on-write" and doomed(str(path)):
            return _FailingFile(handle, _no_space(str(path)))
        return handle

    monkeypatch.setattr(fetch, "open", fake_open, raising=False)
    if fault == "no-space-on-fsync":
        monkeypatch.setattr(fetch, "os", _OsWithFailingFsync(doomed))
    if fault == "denied" and os.geteuid() != 0:
        forbidden.chmod(0o555)  # for real where permissions apply (not as root)
    try:
        with new_downloader(replica, root) as downloader:
            report = downloader.download_images_direct(STREAM, times)
    finally:
        if fault == "denied":
            forbidden.chmod(0o755)

    assert seen_parts and all(p.endswith(fetch.PART_SUFFIX) for p in seen_parts)
    failed = {datetime.fromisoformat(when): reason for when, reason in report.failed}
    assert set(failed) == doomed_times
    wanted = "Permission denied" if fault == "denied" else "No space left on device"
    assert all("cannot write" in r and wanted in r for r in failed.values()), failed
    for wall in doomed_times:
        assert replica.requests_for(cdn_path(wall)) == 1, "a disk error is not retried"
    assert not part_files(root)
    kept = verify_archive(root)
    assert {picture.wall_time for picture in kept} == set(times) - doomed_times
    assert report.downloaded == len(kept) == len(times) - len(doomed_times)
    assert check_one_row_per_file(root) == len(kept)


# --- the browser ---------------------------------------------------------------------------


class FlakyDiscovery:
    """Stands in for BrowserDiscovery: the replica's schedule, but one day fails."""

    def __init__(self, failing: date, error: Exception) -> None:
        self.failing = failing
        self.error = error
        self.calls: list[date] = []

    def timestamps_for_date(self, day: date, stream: str) -> DiscoveryResult:
        self.calls.append(day)
        if day == self.failing:
            raise self.error
        stamps = [t.isoformat() for t in SCHEDULE.timestamps(TERMINAL, stream, day)]
        return DiscoveryResult(day=day, stream=stream, timestamps=stamps)

    def close(self) -> None:
        pass


def test_discovery_failing_for_one_day_the_range_goes_on(
    sqlite_db: str,
    replica: ReplicaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    fake = FlakyDiscovery(days[1], DiscoveryError("the browser failed (crashed)"))
    root = tmp_path / "images"
    with new_downloader(replica, root, max_workers=16) as downloader:
        monkeypatch.setattr(downloader, "_browser", lambda: fake)
        seen: list[date] = []
        reports = downloader.download_date_range(
            days[0], days[-1], [STREAM], on_day=lambda d, s, r: seen.append(d)
        )
    assert fake.calls == seen == days
    bad = reports[(days[1], STREAM)]
    assert bad.error == "DiscoveryError: the browser failed (crashed)"
    assert bad.failed == [(days[1].isoformat(), "the browser failed (crashed)")]
    assert not bad.files and not bad.ok
    for day in (days[0], days[2]):
        good = reports[(day, STREAM)]
        assert good.ok and good.downloaded == len(day_times(day)), day
    kept = verify_archive(root)
    assert {p.wall_time.date() for p in kept} == {days[0], days[2]}
    assert check_one_row_per_file(root) == len(kept)


def _current_profile(downloader: DrayDogDownloader) -> str:
    discovery = downloader._discovery
    assert discovery is not None and discovery.driver is not None
    profile = discovery.driver.capabilities["chrome"]["userDataDir"]
    assert isinstance(profile, str)
    return profile


@pytest.mark.browser
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("crash", id="crash", marks=slow),
        pytest.param("hang", id="hang", marks=slow),
    ],
)
def test_browser_failing_during_discovery_is_restarted_for_the_next_day(
    fault: str, sqlite_db: str, replica: ReplicaServer, tmp_path: Path
) -> None:
    """Chromium killed (crash) or stopped (hang) after day 1: day 2's read finds it
    dead, quits it and reads again in a new browser; nothing of the range is lost."""
    chromium, chromedriver = require_browser()
    replica.page_options = PageOptions(render_delay=(0.0, 0.05))
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    root = tmp_path / "images"
    profiles: list[str] = []
    victims: list[int] = []
    timings: dict[date, float] = {}
    last = [time.monotonic()]

    def after_day(day: date, stream: str, report: Any) -> None:
        now = time.monotonic()
        timings[day] = now - last[0]
        if day == days[0] or day == days[2]:
            profiles.append(_current_profile(downloader))
        if day == days[0]:
            victims.extend(profile_processes(profiles[0]))
            assert victims, "no Chromium process found for the profile"
            for pid in victims:
                os.kill(pid, signal.SIGKILL if fault == "crash" else signal.SIGSTOP)
        last[0] = time.monotonic()

    try:
        with new_downloader(
            replica,
            root,
            timeout=4,
            max_workers=16,
            chromium_path=chromium,
            chromedriver_path=chromedriver,
        ) as downloader:
            reports = downloader.download_date_range(
                days[0], days[-1], [STREAM], on_day=after_day
            )
    finally:
        replica.page_options = PageOptions()
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    for day in days:
        good = reports[(day, STREAM)]
        assert good.ok and good.downloaded == len(day_times(day)), (day, good.error)
    assert profiles[0] != profiles[1], "day 2 should have started a new browser"
    # A hung browser is given up within the command timeout (timeout + 5 s), once
    # for the read and once for the check that it still answers, plus the time it
    # takes to stop its driver and start a new one.
    assert timings[days[1]] < 2 * (4 + 5) + 15
    assert not profile_processes(profiles[0]), "the failed browser was left running"
    assert not profile_processes(profiles[1]), "close() left the browser running"
    kept = verify_archive(root)
    assert {p.wall_time.date() for p in kept} == set(days)
    assert check_one_row_per_file(root) == len(kept)
