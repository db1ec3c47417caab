"""The ``draydog`` command: argument parsing, logging, progress and exit codes; no archiving logic.

Exit status: 0 when everything went well, 1 when some pictures (or their rows)
failed, 2 on bad usage, 128 + the signal's number when a signal stopped it (130 for
SIGINT, Ctrl-C; 143 for SIGTERM), as a shell reports a process a signal killed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, NoReturn

from modules.database import migrations, models, queries
from modules.database.keys import AbsolutePaths, absolute_paths, convert_to_keys
from modules.downloader.report import DownloadReport
from modules.downloader.selenium_client import (
    DrayDogDownloader,
    PictureOutcome,
    Stopped,
)
from modules.site.urls import (
    DEFAULT_TIMEZONE,
    get_zone,
    parse_wall_clock,
    validate_name,
)

if TYPE_CHECKING:
    from modules.service.watch import CycleResult
    from modules.storage import Storage

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input on the command line: one line on stderr and exit status 2."""


class Interrupted(KeyboardInterrupt):
    """A stop signal unwinding the command; the exit status is 128 + its number."""

    def __init__(self, signum: int = signal.SIGINT, detail: str = "") -> None:
        super().__init__(signum, detail)
        self.signum = signum
        self.detail = detail


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``draydog``."""
    parser = _Parser(
        prog="draydog", description="Archive DrayDog gate-camera pictures."
    )
    _add_verbosity(parser, default_verbose=0, default_quiet=False)
    quiet_or_verbose = _Parser(add_help=False)
    _add_verbosity(quiet_or_verbose, argparse.SUPPRESS, argparse.SUPPRESS)
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    download = commands.add_parser(
        "download",
        parents=[quiet_or_verbose],
        help="download days of pictures (the main job)",
    )
    when = download.add_mutually_exclusive_group(required=True)
    when.add_argument("--date", help="one day, YYYY-MM-DD")
    when.add_argument("--start", help="first day of a range, YYYY-MM-DD (with --end)")
    download.add_argument("--end", help="last day of the range, inclusive")
    download.add_argument(
        "--stream", action="append", dest="streams", help="camera stream (repeatable)"
    )
    download.add_argument("--terminal", default="apm")
    download.add_argument(
        "--dir",
        default="data/images",
        help="archive folder, or s3://bucket/prefix (S3 by the AWS_* variables)",
    )
    _add_db(download)
    download.add_argument(
        "--workers", type=int, default=8, help="parallel downloads (1-64)"
    )
    download.add_argument(
        "--batch-size", type=int, default=500, help="rows per transaction"
    )
    download.add_argument(
        "--app-url",
        default=os.environ.get("DRAYDOG_APP_URL", "https://app.draydog.com"),
    )
    download.add_argument(
        "--cdn-url",
        default=os.environ.get("DRAYDOG_CDN_URL", "https://cdn.draydog.com"),
    )
    download.add_argument(
        "--timezone", default=DEFAULT_TIMEZONE, help="the terminal's zone"
    )
    download.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per request"
    )
    download.add_argument("--chromium", help="path of the chromium binary")
    download.add_argument("--chromedriver", help="path of chromedriver")
    download.add_argument(
        "--refetch",
        action="store_true",
        help="read days recorded complete or empty again (default: skip them)",
    )
    download.add_argument(
        "--no-overlap",
        action="store_true",
        help="read each day's page only after the day before has downloaded "
        "(default: the next page is read while the pictures download)",
    )
    download.add_argument(
        "--no-browser",
        action="store_true",
        help="skip discovery: use --timestamps-file",
    )
    download.add_argument(
        "--timestamps-file",
        type=Path,
        help="one ISO timestamp per line (with --no-browser)",
    )
    download.set_defaults(handler=_download)

    demo = commands.add_parser(
        "demo",
        parents=[quiet_or_verbose],
        help="an offline demo against the bundled replica",
    )
    demo.add_argument(
        "--dir", help="archive folder (default: a fresh temporary folder)"
    )
    _add_db(demo)
    demo.add_argument(
        "--days", type=int, default=1, help="how many days, ending yesterday"
    )
    demo.set_defaults(handler=_demo)

    reindex = commands.add_parser(
        "reindex",
        parents=[quiet_or_verbose],
        help="insert the rows missing for an archive folder",
    )
    reindex.add_argument(
        "--dir",
        required=True,
        help="archive folder, or s3://bucket/prefix (S3 by the AWS_* variables)",
    )
    _add_db(reindex)
    reindex.add_argument("--timezone", default=DEFAULT_TIMEZONE)
    reindex.add_argument("--cdn-url", default=os.environ.get("DRAYDOG_CDN_URL"))
    reindex.set_defaults(handler=_reindex)

    stats = commands.add_parser(
        "stats",
        parents=[quiet_or_verbose],
        help="pictures per day and stream, last runs",
    )
    _add_db(stats)
    stats.add_argument(
        "--timezone", default=DEFAULT_TIMEZONE, help="whose days to count by"
    )
    stats.add_argument(
        "--dir",
        help="also what the archive (a folder or s3://bucket/prefix) stores, by listing it",
    )
    stats.set_defaults(handler=_stats)
    _add_gaps_and_prune(commands, [quiet_or_verbose])

    db = commands.add_parser(
        "db",
        parents=[quiet_or_verbose],
        help="the database's schema revision: upgrade, current",
    )
    db_actions = db.add_subparsers(dest="action", required=True, parser_class=_Parser)
    for action, about in (
        ("upgrade", "bring the database to this draydog's schema (creating it if new)"),
        ("current", "show the database's schema revision"),
    ):
        _add_db(db_actions.add_parser(action, help=about))
    db_actions.choices["upgrade"].add_argument(
        "--dir",
        default=os.environ.get(models.ARCHIVE_ENV),
        help="archive root: stored absolute paths under it become keys "
        f"(default ${models.ARCHIVE_ENV})",
    )
    db.set_defaults(handler=_db)

    replica = commands.add_parser(
        "replica",
        parents=[quiet_or_verbose],
        help="serve the replica site until interrupted",
    )
    replica.add_argument("--port", type=int, default=0, help="0 picks a free port")
    replica.set_defaults(handler=_replica)
    _add_watch(commands, [quiet_or_verbose])
    from modules.tasks.commands import add_task_commands

    add_task_commands(commands, [quiet_or_verbose])  # enqueue, worker, beat (Celery)
    return parser


def _add_verbosity(
    parser: argparse.ArgumentParser, default_verbose: Any, default_quiet: Any
) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default_verbose,
        help="more log output",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default_quiet,
        help="only errors and the summary",
    )


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database URL (default: $DATABASE_URL or ./data/)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``draydog``; return the exit status."""
    try:
        args = build_parser().parse_args(argv)
        _configure_logging(args.verbose, args.quiet)
        _exit_cleanly_on_sigterm()
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except UsageError as exc:
        print(f"draydog: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        detail = exc.detail if isinstance(exc, Interrupted) else ""
        name = signal.Signals(signum).name
        print(f"draydog: interrupted by {name}{detail}", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:
        # The reader went away (`draydog stats | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURES
    except Exception as exc:
        logger.debug("unexpected failure", exc_info=True)
        print(
            f"draydog: failed: {type(exc).__name__}: {_first_line(exc)}",
            file=sys.stderr,
        )
        return EXIT_FAILURES


def _first_line(exc: BaseException) -> str:
    """Database drivers write several lines; a failure is reported in one."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    if verbose == 0 and not quiet:
        level = logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose < 2:
        logging.getLogger("urllib3").setLevel(logging.WARNING)
        logging.getLogger("selenium").setLevel(logging.WARNING)


def _exit_cleanly_on_sigterm() -> None:
    """Let SIGTERM unwind like Ctrl-C, so ``.part`` files are removed on the way out."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, interrupt)


class _StopOnSignals:
    """What :func:`_interrupt_on_signals` saw: the first stop signal, or None."""

    def __init__(self) -> None:
        self.signum: int | None = None


@contextlib.contextmanager
def _interrupt_on_signals(downloader: DrayDogDownloader) -> Iterator[_StopOnSignals]:
    """SIGINT and SIGTERM interrupt ``downloader`` rather than unwind the main thread.

    A KeyboardInterrupt would wait for every fetch in flight and its retries (minutes
    with a stalled CDN, past a service manager's grace period); ``interrupt()`` cuts
    them, and the call in progress raises ``Stopped`` once the rows of the complete
    pictures are written. It runs on a thread of its own: the handler runs on the
    main thread, which may hold a lock ``interrupt()`` takes. A second signal unwinds
    at once.
    """
    seen = _StopOnSignals()

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if seen.signum is not None:
            logger.warning("%s again: leaving without waiting", name)
            raise Interrupted(signum)
        seen.signum = signum
        logger.warning("%s: stopping the downloads in flight", name)
        threading.Thread(
            target=downloader.interrupt, name="draydog-interrupt", daemon=True
        ).start()

    previous = {number: signal.signal(number, handle) for number in _STOP_SIGNALS}
    try:
        yield seen
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _use_database(url: str | None) -> None:
    """Switch to ``url`` (if given) and refuse a database whose schema is not the code's."""
    if url is not None:
        try:
            models.configure(url)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    try:
        models.check_schema()
    except migrations.SchemaError as exc:
        raise UsageError(str(exc)) from exc
    except Exception:
        # Unreachable, say: not bad usage; each command reports it in its own way.
        logger.debug("the database is not available yet", exc_info=True)


# --- download -------------------------------------------------------------------


def _download(args: argparse.Namespace) -> int:
    streams = args.streams or ["in_gate"]
    try:
        for stream in streams:
            validate_name(stream, "stream")
        if args.start is not None and args.end is None:
            raise UsageError("--start needs --end")
        if args.date is not None and args.end is not None:
            raise UsageError("--end goes with --start, not --date")
        if args.no_browser != (args.timestamps_file is not None):
            raise UsageError("--no-browser and --timestamps-file go together")
        timestamps = _read_timestamps(args.timestamps_file) if args.no_browser else None
        _use_database(args.db)
        downloader = DrayDogDownloader(
            download_dir=_archive(args.dir),
            terminal=args.terminal,
            app_url=args.app_url,
            cdn_url=args.cdn_url,
            timeout=args.timeout,
            max_workers=args.workers,
            batch_size=args.batch_size,
            source_timezone=args.timezone,
            chromium_path=args.chromium,
            chromedriver_path=args.chromedriver,
        )
        with downloader, _interrupt_on_signals(downloader) as stop:
            first = args.date or args.start
            days = downloader.checked_range(first, args.end or first)
            if timestamps is not None:
                if len(streams) != 1:
                    raise UsageError("--timestamps-file takes exactly one --stream")
                by_day = _timestamps_by_day(timestamps, days, args.timezone)

                bars = _Bars(args.quiet)
                listed = (
                    (
                        day,
                        stream,
                        downloader.download_images_direct(
                            stream, by_day[day], progress=bars.open(day, stream)
                        ),
                    )
                    for day in days
                    for stream in streams
                )
                rows = _collect_days(listed, bars, args.quiet)
            else:
                bars = _Bars(args.quiet)
                discovered = downloader.download_days(
                    [(day, stream) for day in days for stream in streams],
                    progress_for=bars.open,
                    force=args.refetch,
                    overlap=not args.no_overlap,
                )
                rows = _collect_days(discovered, bars, args.quiet)
    except Stopped as exc:
        raise Interrupted(
            stop.signum or signal.SIGINT,
            ": the rows of the pictures complete are written, nothing half-fetched "
            "is kept; the same command again downloads the rest",
        ) from exc
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    _print_summary(rows)
    return EXIT_OK if all(report.ok for report in rows.values()) else EXIT_FAILURES


def _read_timestamps(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _timestamps_by_day(
    timestamps: list[str], days: list[date], timezone_name: str
) -> dict[date, list[str]]:
    """The listed timestamps grouped by wall-clock day; one outside the days is bad usage."""
    by_day: dict[date, list[str]] = {day: [] for day in days}
    for value in timestamps:
        day = parse_wall_clock(value, timezone_name).date()
        if day not in by_day:
            raise UsageError(f"timestamp {value} is not in {days[0]}..{days[-1]}")
        by_day[day].append(value)
    return by_day


def _collect_days(
    results: Iterable[tuple[date, str, DownloadReport]], bars: _Bars, quiet: bool
) -> dict[tuple[date, str], DownloadReport]:
    """The days' reports as they come, each day's bar closed and its line printed."""
    reports: dict[tuple[date, str], DownloadReport] = {}
    try:
        for day, stream, report in results:
            bars.close(day, stream)
            reports[(day, stream)] = report
            if not quiet and not _is_terminal(sys.stderr):
                print(_one_line(day, stream, report), flush=True)
    finally:
        bars.close_all()
    return reports


def _is_terminal(stream: IO[Any]) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


class _Progress:
    """A tqdm bar on a terminal, nothing otherwise (plain lines are printed per day)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.bar: Any = None
        self.enabled = enabled

    def __call__(self, outcome: PictureOutcome, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.label, unit="pic", leave=True)
        self.bar.update(1)
        if outcome.status == "failed":
            self.bar.set_postfix_str(f"last failure: {outcome.reason}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress(label: str, quiet: bool) -> _Progress:
    return _Progress(label, enabled=not quiet and _is_terminal(sys.stderr))


class _Bars:
    """One progress bar per (day, stream), opened when its downloads start."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.open_bars: dict[tuple[date, str], _Progress] = {}

    def open(self, day: date, stream: str) -> _Progress:
        bar = self.open_bars[(day, stream)] = _progress(f"{day} {stream}", self.quiet)
        return bar

    def close(self, day: date, stream: str) -> None:
        bar = self.open_bars.pop((day, stream), None)
        if bar is not None:
            bar.close()

    def close_all(self) -> None:
        for key in list(self.open_bars):
            self.close(*key)


def _one_line(day: date, stream: str, report: DownloadReport) -> str:
    if report.error:
        return f"{day} {stream}: FAILED {report.error}"
    if report.recorded is not None:
        return (
            f"{day} {stream}: already {report.recorded} ({report.already_present} "
            f"of {report.requested} stored), not read again (--refetch reads it)"
        )
    if report.empty:
        return f"{day} {stream}: empty (no pictures, confirmed by a second read)"
    return (
        f"{day} {stream}: {report.requested} found, {report.downloaded} downloaded "
        f"({report.thumbnails} thumbnails), {report.already_present} already present, "
        f"{len(report.failed)} failed, {report.db_inserted} rows inserted, "
        f"{report.db_failed} rows failed, {report.seconds:.1f}s"
    )


def _print_summary(reports: dict[tuple[date, str], DownloadReport]) -> None:
    header = (
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
    rows = [header]
    for (day, stream), report in reports.items():
        rows.append(
            (
                str(day),
                stream,
                report.recorded or ("empty" if report.empty else str(report.requested)),
                str(report.downloaded),
                str(report.thumbnails),
                str(report.already_present),
                str(len(report.failed)) if report.error is None else "day",
                str(report.db_inserted),
                str(report.db_failed),
                f"{report.bytes / 1e6:.1f}",
            )
        )
    _print_table(rows)
    for (day, stream), report in reports.items():
        for what, reason in report.failed[:5]:
            print(f"  {day} {stream} {what}: {reason}")
        if len(report.failed) > 5:
            print(f"  {day} {stream}: ... and {len(report.failed) - 5} more failures")
    if any(report.db_failed for report in reports.values()):
        print(
            "Some rows could not be written: run `draydog reindex --dir <archive>` later."
        )


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))


# --- demo, reindex, stats, replica --------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from modules.demo import run_demo

    if not 1 <= args.days <= 31:
        raise UsageError("--days must be from 1 to 31")
    result = run_demo(
        args.dir, args.db, days=args.days, on_day=_day_line_printer(args.quiet)
    )
    _print_summary(result.reports)
    print(f"Pictures: {result.archive}")
    print(f"Database: {result.database_url}")
    print(f"Rows in the database: {result.rows}")
    return (
        EXIT_OK
        if all(report.ok for report in result.reports.values())
        else EXIT_FAILURES
    )


def _day_line_printer(quiet: bool) -> Callable[[date, str, DownloadReport], None]:
    def on_day(day: date, stream: str, report: DownloadReport) -> None:
        if not quiet:
            print(_one_line(day, stream, report), flush=True)

    return on_day


def _reindex(args: argparse.Namespace) -> int:
    from modules.downloader.reindex import reindex_archive

    archive = _archive(args.dir)
    _use_database(args.db)
    try:
        report = reindex_archive(
            archive, source_timezone=args.timezone, cdn_url=args.cdn_url
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    except Exception as exc:
        print(f"draydog: reindex failed: {_first_line(exc)}", file=sys.stderr)
        return EXIT_FAILURES
    print(
        f"{report.scanned} pictures scanned, {report.missing} without a row, "
        f"{report.inserted} inserted, {report.duplicates} already there, "
        f"{len(report.failed)} failed"
    )
    return EXIT_OK if not report.failed else EXIT_FAILURES


def _stats(args: argparse.Namespace) -> int:
    try:
        get_zone(args.timezone)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    archive = None if args.dir is None else _archive(args.dir)
    _use_database(args.db)
    try:
        counts = queries.daily_counts(timezone_name=args.timezone)
        runs = queries.recent_runs(5)
    except Exception as exc:
        print(f"draydog: cannot read the database: {_first_line(exc)}", file=sys.stderr)
        return EXIT_FAILURES
    rows = [
        (f"day ({args.timezone})", "terminal", "stream", "pictures", "thumbs", "MB")
    ]
    for c in counts:
        rows.append(
            (
                str(c.day),
                c.terminal,
                c.camera_id,
                str(c.pictures),
                str(c.thumbnails),
                f"{c.bytes / 1e6:.1f}",
            )
        )
    _print_table(rows)
    total = sum(c.pictures for c in counts)
    thumbs = sum(c.thumbnails for c in counts)
    size = sum(c.bytes for c in counts)
    print(f"Total: {total} pictures ({thumbs} thumbnails), {size / 1e6:.1f} MB")
    if archive is not None:
        _print_stored(archive)
    if runs:
        print("Last runs:")
        for run in runs:
            print(
                f"  #{run.id} {run.started_at:%Y-%m-%d %H:%M:%S}Z {run.terminal} {run.camera_id}: "
                f"{run.status}, {run.downloaded} downloaded, {run.already_present} present, "
                f"{run.failed} failed, {run.db_failed} rows failed"
            )
    return EXIT_OK


def _print_stored(archive: Storage) -> None:
    """The pictures the archive stores per terminal and stream, with their sizes (a listing)."""
    from modules.downloader.archive import stored_totals

    totals = stored_totals(archive)
    rows = [("stored in", "terminal", "stream", "pictures", "MB")]
    for (terminal, stream), (count, size) in sorted(totals.items()):
        rows.append((str(archive), terminal, stream, str(count), f"{size / 1e6:.1f}"))
    _print_table(rows)
    count = sum(c for c, _ in totals.values())
    size = sum(b for _, b in totals.values())
    print(f"Stored: {count} pictures, {size / 1e6:.1f} MB in {archive}")


def _archive(location: str) -> Storage:
    """``--dir`` as a Storage: a folder, or ``s3://bucket/prefix`` whose bucket exists.

    A malformed URL or a missing bucket is bad usage; a store that cannot be reached
    is a failure (StorageError, one line).
    """
    from modules.storage import ArchiveNotFound, open_storage

    try:
        storage = open_storage(location)
        storage.check()
    except (ValueError, ArchiveNotFound) as exc:
        raise UsageError(f"--dir: {exc}") from exc
    return storage


# --- gaps and prune ---------------------------------------------------------------------


def _add_gaps_and_prune(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    gaps = commands.add_parser(
        "gaps",
        parents=parents,
        help="what the archive lacks (days, pictures, files, rows) and camera outages",
    )
    gaps.add_argument(
        "--start", help="first day, YYYY-MM-DD (default: each stream's first)"
    )
    gaps.add_argument(
        "--end", help="last day, inclusive (default: yesterday at the terminal)"
    )
    gaps.add_argument("--terminal", help="only this terminal")
    gaps.add_argument("--stream", help="only this stream")
    gaps.add_argument(
        "--dir",
        help="archive folder or s3://bucket/prefix, to compare files and rows "
        "(default data/images, if there)",
    )
    _add_db(gaps)
    gaps.add_argument("--json", action="store_true", help="one JSON object on stdout")
    gaps.add_argument("--plot", type=Path, help="draw a day-by-hour coverage PNG here")
    gaps.set_defaults(handler=_gaps)

    prune = commands.add_parser(
        "prune",
        parents=parents,
        help="remove pictures of days older than N days (files and rows together)",
    )
    prune.add_argument("--older-than", type=int, required=True, metavar="DAYS")
    prune.add_argument(
        "--thumbnails-only",
        action="store_true",
        help="only pictures kept as thumbnails",
    )
    prune.add_argument("--yes", action="store_true", help="remove (without: only show)")
    prune.add_argument(
        "--dir",
        default="data/images",
        help="archive folder, or s3://bucket/prefix (S3 by the AWS_* variables)",
    )
    _add_db(prune)
    prune.set_defaults(handler=_prune)


def _optional_day(value: str | None, option: str) -> date | None:
    from modules.site.urls import parse_day

    try:
        return None if value is None else parse_day(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from exc


def _archive_folder(value: str | None) -> Path | Storage | None:
    """``--dir`` as given (it must exist), else ``data/images`` when it exists."""
    if value is None:
        default = Path("data/images")
        return default if default.is_dir() else None
    if value.startswith("s3://"):
        return _archive(value)
    folder = Path(value)
    if not folder.is_dir():
        raise UsageError(f"--dir: no archive folder {folder}")
    return folder


def _gaps(args: argparse.Namespace) -> int:
    from modules.service.coverage_plot import PlotUnavailable, require_matplotlib
    from modules.service.gaps import NothingArchived, find_gaps

    start, end = _optional_day(args.start, "--start"), _optional_day(args.end, "--end")
    for name, value in (("terminal", args.terminal), ("stream", args.stream)):
        if value is not None:
            try:
                validate_name(value, name)
            except ValueError as exc:
                raise UsageError(str(exc)) from exc
    archive = _archive_folder(args.dir)
    if args.plot is not None:
        try:
            require_matplotlib()
        except PlotUnavailable as exc:
            raise UsageError(str(exc)) from exc
    _use_database(args.db)
    try:
        report = find_gaps(
            start=start,
            end=end,
            terminal=args.terminal,
            stream=args.stream,
            archive=archive,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    except NothingArchived as exc:
        print(f"draydog: {exc}", file=sys.stderr)
        return EXIT_FAILURES
    if args.plot is not None:
        from modules.service.coverage_plot import plot_coverage

        plot_coverage(report.streams, args.plot)
    if args.json:
        import json

        print(json.dumps(report.as_json(), indent=2))
    else:
        _print_gaps(report, archive)
    return EXIT_FAILURES if report.lacking else EXIT_OK


def _print_gaps(report: Any, archive: Path | Storage | None) -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(DEFAULT_TIMEZONE)
    rows = [("terminal", "stream", "from", "to", "days with pictures", "pictures")]
    for s in report.streams:
        rows.append(
            (
                s.terminal,
                s.stream,
                str(s.start),
                str(s.end),
                str(s.days_with_pictures),
                str(s.pictures),
            )
        )
    _print_table(rows)
    _print_list(
        "Days never archived",
        [f"{d.terminal} {d.stream} {d.day}" for d in report.never_archived],
    )
    _print_list(
        "Days short of what the site listed",
        [
            f"{d.terminal} {d.stream} {d.day} {d.status}: {d.listed} listed, "
            f"{d.stored} stored, {d.failed} failed, {d.rows} rows"
            for d in report.short_days
        ],
    )
    print(f"Pictures that failed: {report.failed_pictures}")
    _print_list(
        "Days with pictures kept only as thumbnails",
        [f"{d.terminal} {d.stream} {d.day}: {d.thumbnails}" for d in report.thumbnails],
    )
    if archive is None:
        print("Rows and files: not compared (no archive folder; give --dir)")
    else:
        _print_list("Rows whose file is gone", report.rows_without_files)
        _print_list("Files without a row", report.files_without_rows)
    _print_list(
        f"Camera outages (times at the terminal, {DEFAULT_TIMEZONE})",
        [
            f"{o.terminal} {o.stream} {o.last_before.astimezone(zone):%Y-%m-%d %H:%M:%S} -> "
            f"{o.first_after.astimezone(zone):%Y-%m-%d %H:%M:%S} "
            f"({_duration(o.length)}, usually {_duration(o.usual)})"
            for o in report.outages
        ],
    )
    if report.unverified:
        print(
            f"Days with pictures but no record of what the site listed: "
            f"{len(report.unverified)} (downloaded without discovery, or before records)"
        )
    print(
        "Result: the archive lacks what the site offers, or rows and files disagree"
        if report.lacking
        else "Result: nothing the site offers is missing"
    )


def _print_list(title: str, lines: Sequence[str], limit: int = 20) -> None:
    print(f"{title}: {len(lines)}")
    for line in lines[:limit]:
        print(f"  {line}")
    if len(lines) > limit:
        print(f"  ... and {len(lines) - limit} more (--json lists them all)")


def _duration(length: timedelta) -> str:
    minutes = round(length.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def _prune(args: argparse.Namespace) -> int:
    from modules.service.prune import cutoff_day, plan_prune, prune

    try:
        cutoff = cutoff_day(args.older_than)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    archive: Path | Storage | None
    if args.dir.startswith("s3://"):
        archive = _archive(args.dir)
    else:
        archive = Path(args.dir) if Path(args.dir).is_dir() else None
    _use_database(args.db)
    what = "thumbnails" if args.thumbnails_only else "pictures"
    if not args.yes:
        plan = plan_prune(cutoff, thumbnails_only=args.thumbnails_only, archive=archive)
        print(
            f"Would remove the {what} of the days before {cutoff}: "
            f"{plan.pictures} with rows ({plan.bytes / 1e6:.1f} MB), "
            f"{len(plan.files_without_rows)} files without a row, "
            f"{plan.day_records} day records"
        )
        for day in plan.days[:20]:
            print(f"  {day.terminal} {day.stream} {day.day}: {day.pictures}")
        if len(plan.days) > 20:
            print(f"  ... and {len(plan.days) - 20} more days")
        print("Nothing removed: run again with --yes to remove them.")
        return EXIT_OK
    report = prune(cutoff, thumbnails_only=args.thumbnails_only, archive=archive)
    print(
        f"Removed the {what} of the days before {cutoff}: {report.files_removed} files "
        f"({report.files_already_gone} already gone), {report.rows_removed} rows, "
        f"{report.day_records_removed} day records, {len(report.failed)} failed"
    )
    for path, reason in report.failed[:20]:
        print(f"  cannot remove {path}: {reason}")
    return EXIT_FAILURES if report.failed else EXIT_OK


def _db(args: argparse.Namespace) -> int:
    try:
        engine = models.build_engine(args.db or models.database_url())
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    where = engine.url.render_as_string(hide_password=True)
    head = migrations.head()
    try:
        if args.action == "upgrade":
            with engine.begin() as connection:
                before = migrations.upgrade(connection)
                converted = (
                    None if args.dir is None else convert_to_keys(connection, args.dir)
                )
                left = absolute_paths(connection)
            if before is None:
                print(f"{where}: created at revision {head}")
            elif before == head:
                print(f"{where}: already at revision {head}")
            else:
                print(f"{where}: upgraded from revision {before} to {head}")
            if converted is not None:
                print(
                    f"{converted[0]} stored paths under {args.dir} became keys"
                    + (
                        f", {converted[1]} kept (their key is taken)"
                        if converted[1]
                        else ""
                    )
                    + "; paths outside it stay absolute"
                )
            note = _absolute_paths_note(left, args.dir)
            if note:
                print(note)
        else:
            with engine.begin() as connection:
                revision = migrations.current_revision(connection)
                known = revision is not None and migrations.is_known(revision)
                left = absolute_paths(connection) if known else AbsolutePaths(0, ())
            print(f"{where}: {_describe_revision(revision, head)}")
            note = _absolute_paths_note(left, None)
            if note:
                print(note)
    finally:
        engine.dispose()
    return EXIT_OK


def _absolute_paths_note(left: AbsolutePaths, root: str | None) -> str | None:
    """What to do about the rows that still hold absolute paths, or None if none do.

    ``root``: the ``--dir`` this upgrade was given, not suggested again (its paths
    still absolute are those whose key another row has).
    """
    if not left.count:
        return None
    if left.count == 1:
        rows = "1 row still holds an absolute path"
    else:
        rows = f"{left.count} rows still hold absolute paths"
    given = None if root is None else os.path.abspath(root)
    others = [r for r in left.roots if os.path.abspath(r) != given][:3]
    if others:
        hint = f"by their folders, ROOT is {' or '.join(others)}"
    elif left.roots:
        hint = f"those under {root} stay: another row has their key"
    else:
        hint = (
            "none is in the archive's layout <terminal>/<stream>/<day>/<file>: "
            "a file outside any archive keeps its path"
        )
    return (
        f"{rows}, not keys: `draydog db upgrade --dir ROOT` turns those under the "
        f"archive root ROOT into keys ({hint})"
    )


def _describe_revision(revision: str | None, head: str) -> str:
    if revision is None:
        return f"no tables yet (any command creates them at revision {head})"
    if revision == head:
        return f"revision {revision} (the newest)"
    if migrations.is_known(revision):
        return f"revision {revision}, behind {head}: run `draydog db upgrade`"
    return f"revision {revision}, unknown to this draydog (revision {head})"


def _replica(args: argparse.Namespace) -> int:
    from modules.replica.__main__ import main as replica_main

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, not {args.port}")
    return replica_main(["--port", str(args.port)])


# --- watch ------------------------------------------------------------------------


def _add_watch(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``draydog watch``: every option defaults to None, so the config file's value shows."""
    watch = commands.add_parser(
        "watch",
        parents=parents,
        help="keep every stream current, cycle after cycle (the always-on service)",
    )
    watch.add_argument("--config", type=Path, help="TOML file of settings")
    watch.add_argument("--terminal", action="append", dest="terminals")
    watch.add_argument("--stream", action="append", dest="streams")
    watch.add_argument(
        "--interval", type=float, help="seconds between cycles (600, with jitter)"
    )
    watch.add_argument(
        "--backfill-days", type=int, help="days back on a new archive (7)"
    )
    watch.add_argument(
        "--metrics-port", type=int, help="serve /metrics and /healthz on 127.0.0.1"
    )
    watch.add_argument(
        "--max-lag", type=float, help="seconds of lag that make /healthz say 503"
    )
    watch.add_argument(
        "--stop-timeout", type=float, help="seconds to stop in on SIGTERM (10)"
    )
    watch.add_argument(
        "--once", action="store_true", help="one cycle, then exit 0 or 1 (for cron)"
    )
    watch.add_argument("--dir", help="archive folder, or s3://bucket/prefix")
    watch.add_argument("--db", help="database URL (default: $DATABASE_URL or ./data/)")
    watch.add_argument("--app-url")
    watch.add_argument("--cdn-url")
    watch.add_argument("--workers", type=int, help="parallel downloads (1-64)")
    watch.add_argument("--timeout", type=float, help="seconds per request")
    watch.add_argument("--timezone", help="the terminals' zone")
    watch.add_argument("--chromium", help="path of the chromium binary")
    watch.add_argument("--chromedriver", help="path of chromedriver")
    watch.set_defaults(handler=_watch)


def _watch(args: argparse.Namespace) -> int:
    from modules.service.config import (
        ConfigError,
        build_config,
        from_environment,
        read_file,
    )
    from modules.service.runner import serve
    from modules.service.watch import Watch

    given = {
        name: getattr(args, name)
        for name in (
            "terminals",
            "streams",
            "interval",
            "backfill_days",
            "metrics_port",
            "max_lag",
            "stop_timeout",
            "dir",
            "db",
            "app_url",
            "cdn_url",
            "workers",
            "timeout",
            "timezone",
            "chromium",
            "chromedriver",
        )
    }
    try:
        from_file = read_file(args.config) if args.config is not None else {}
        config = build_config({**from_environment(), **from_file}, given)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    _archive(config.dir)
    _use_database(config.db)

    def on_day(terminal: str, stream: str, day: date, report: DownloadReport) -> None:
        if not args.quiet:
            print(f"{terminal} {_one_line(day, stream, report)}", flush=True)

    def on_port(port: int) -> None:
        print(f"metrics: http://127.0.0.1:{port}/metrics and /healthz", flush=True)

    outcome = serve(
        Watch(config, on_day=on_day), once=args.once, on_metrics_port=on_port
    )
    if outcome.signalled:
        print("draydog: watch stopped", file=sys.stderr)
        return EXIT_OK if outcome.stopped_in_time else EXIT_FAILURES
    if outcome.result is None:
        return EXIT_FAILURES
    if args.once:
        print(_cycle_line(outcome.result))
        return EXIT_OK if outcome.result.ok else EXIT_FAILURES
    return EXIT_OK


def _cycle_line(result: CycleResult) -> str:
    reports = [report for _, _, report in result.reports]
    return (
        f"cycle: {len(reports)} days read, "
        f"{sum(r.downloaded for r in reports)} downloaded, "
        f"{sum(r.already_present for r in reports)} already present, "
        f"{sum(len(r.failed) for r in reports if r.error is None)} failed, "
        f"{sum(r.db_failed for r in reports)} rows failed, "
        f"{len(result.failed)} streams failed"
        + (f", {len(result.backing_off)} backing off" if result.backing_off else "")
    )
