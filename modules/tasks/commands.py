"""``draydog enqueue``, ``draydog worker`` and ``draydog beat``.

Registered by :func:`add_task_commands` from :mod:`modules.cli`; Celery is imported
only when one of them runs. Bad input (days, names, queue, broker URL) is a
:class:`~modules.cli.UsageError`: one line, exit status 2, nothing sent.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from modules.cli import (
    EXIT_FAILURES,
    EXIT_OK,
    UsageError,
    _first_line,
    _one_line,
    _print_summary,
)
from modules.downloader.report import DownloadReport
from modules.site.urls import (
    DEFAULT_TIMEZONE,
    get_zone,
    parse_day,
    terminal_today,
    validate_name,
)
from modules.tasks import settings

logger = logging.getLogger(__name__)

EXIT_BROKEN = 3
"""``draydog worker``: this machine cannot archive (no browser, no database); the
same as :data:`modules.tasks.control.EXIT_BROKEN`, without importing Celery."""


def add_task_commands(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``enqueue``, ``worker`` and ``beat`` to the ``draydog`` subcommands."""
    enqueue = commands.add_parser(
        "enqueue",
        parents=parents,
        help="send one task per (terminal, stream, day) to the Celery workers",
    )
    when = enqueue.add_mutually_exclusive_group(required=True)
    when.add_argument("--date", help="one day, YYYY-MM-DD")
    when.add_argument("--start", help="first day of a range, YYYY-MM-DD (with --end)")
    enqueue.add_argument("--end", help="last day of the range, inclusive")
    enqueue.add_argument("--terminal", action="append", dest="terminals")
    enqueue.add_argument("--stream", action="append", dest="streams")
    _add_queue(enqueue)
    enqueue.add_argument(
        "--wait",
        action="store_true",
        help="wait for every task, print the summary table, exit 0 or 1",
    )
    enqueue.add_argument(
        "--refetch", action="store_true", help="read days recorded done again"
    )
    enqueue.add_argument("--timezone", default=DEFAULT_TIMEZONE)
    _add_broker(enqueue)
    enqueue.set_defaults(handler=_enqueue)

    worker = commands.add_parser(
        "worker",
        parents=parents,
        help="a Celery worker archiving the days sent by enqueue and beat",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="worker processes, each with its own browser (1-64)",
    )
    worker.add_argument(
        "--queue", action="append", dest="queues", help="queue to consume (repeatable)"
    )
    worker.add_argument(
        "--dir",
        help="archive folder or s3://bucket/prefix (default $DRAYDOG_ARCHIVE or data/images)",
    )
    worker.add_argument("--db", help="database URL (default: $DATABASE_URL or ./data/)")
    worker.add_argument("--app-url", help="default $DRAYDOG_APP_URL")
    worker.add_argument("--cdn-url", help="default $DRAYDOG_CDN_URL")
    worker.add_argument("--chromium", help="path of the chromium binary")
    worker.add_argument("--chromedriver", help="path of chromedriver")
    worker.add_argument(
        "--workers", type=int, help="parallel downloads within a task (1-64, 8)"
    )
    worker.add_argument(
        "--name", help="Celery node name (default draydog-<pid>@<host>)"
    )
    _add_broker(worker)
    worker.set_defaults(handler=_worker)

    beat = commands.add_parser(
        "beat",
        parents=parents,
        help="send each configured stream's watch cycle to the workers every interval",
    )
    beat.add_argument("--config", type=Path, help="TOML file of settings (as watch)")
    beat.add_argument("--terminal", action="append", dest="terminals")
    beat.add_argument("--stream", action="append", dest="streams")
    beat.add_argument("--interval", type=float, help="seconds between cycles (600)")
    beat.add_argument(
        "--backfill-days", type=int, help="days back on a new archive (7)"
    )
    _add_queue(beat)
    beat.add_argument(
        "--schedule-file",
        type=Path,
        help="where beat keeps its state (default: a file in the temporary folder)",
    )
    _add_broker(beat)
    beat.set_defaults(handler=_beat)


def _add_queue(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queue",
        default=settings.DEFAULT_QUEUE,
        help=f"Celery queue (default {settings.DEFAULT_QUEUE})",
    )


def _add_broker(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        help=f"broker URL (default ${settings.BROKER_ENV} or {settings.DEFAULT_BROKER_URL})",
    )


def _use_broker(value: str | None) -> Any:
    """The Celery app on the checked broker URL (a bad one is bad usage)."""
    try:
        url = settings.broker_url(value)
        settings.retry_policy()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    os.environ[settings.BROKER_ENV] = url
    from modules.tasks.app import configure

    return configure(url)


def _checked(value: str, check: Any) -> str:
    try:
        result: str = check(value)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return result


# --- enqueue ----------------------------------------------------------------------


def days_of(args: argparse.Namespace) -> list[date]:
    """The days ``--date`` or ``--start``/``--end`` give; none in the future at the terminal."""
    if args.start is not None and args.end is None:
        raise UsageError("--start needs --end")
    if args.date is not None and args.end is not None:
        raise UsageError("--end goes with --start, not --date")
    try:
        get_zone(args.timezone)
        first = parse_day(args.date or args.start)
        last = parse_day(args.end) if args.end is not None else first
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if last < first:
        raise UsageError(f"reversed range: {first} is after {last}")
    today = terminal_today(args.timezone)
    if last > today:
        raise UsageError(f"{last} is in the future (today at the terminal is {today})")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _enqueue(args: argparse.Namespace) -> int:
    days = days_of(args)
    terminals = [
        _checked(t, lambda v: validate_name(v, "terminal"))
        for t in args.terminals or ["apm"]
    ]
    streams = [
        _checked(s, lambda v: validate_name(v, "stream"))
        for s in args.streams or ["in_gate"]
    ]
    queue = _checked(args.queue, settings.check_queue)
    app = _use_broker(args.broker)
    # A broker that does not answer is said within seconds, not after kombu's
    # default of retrying the connection for about 12 s.
    patient = dict(app.conf.broker_transport_options)
    app.conf.broker_transport_options = {
        **patient,
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 1,
    }
    from modules.tasks.app import ARCHIVE_DAY

    sent: list[tuple[str, str, date, Any]] = []
    try:
        with app.producer_or_acquire() as producer:
            for terminal in terminals:
                for day in days:
                    for stream in streams:
                        result = app.send_task(
                            ARCHIVE_DAY,
                            args=[terminal, stream, day.isoformat()],
                            kwargs={"force": bool(args.refetch)},
                            queue=queue,
                            producer=producer,
                        )
                        sent.append((terminal, stream, day, result))
    except Exception as exc:
        print(
            f"draydog: cannot send to the broker: {type(exc).__name__}: {_first_line(exc)}",
            file=sys.stderr,
        )
        return EXIT_FAILURES
    app.conf.broker_transport_options = patient  # waiting for results may be long
    if not args.quiet:
        print(f"enqueued {len(sent)} tasks on queue {queue}", flush=True)
    if not args.wait:
        return EXIT_OK
    return _wait(sent, terminals, args.quiet)


def _wait(
    sent: list[tuple[str, str, date, Any]], terminals: list[str], quiet: bool
) -> int:
    from modules.tasks.summary import to_report

    reports: dict[tuple[date, str], DownloadReport] = {}
    several = len(terminals) > 1
    for terminal, stream, day, result in sent:
        outcome = result.get(propagate=False)
        if result.successful() and isinstance(outcome, dict):
            report = to_report(outcome)
        else:
            error = f"{type(outcome).__name__}: {outcome}"
            report = DownloadReport(failed=[(day.isoformat(), error)], error=error)
        label = f"{terminal}/{stream}" if several else stream
        reports[(day, label)] = report
        if not quiet:
            print(_one_line(day, label, report), flush=True)
    _print_summary(reports)
    return EXIT_OK if all(report.ok for report in reports.values()) else EXIT_FAILURES


# --- worker -----------------------------------------------------------------------


def _worker(args: argparse.Namespace) -> int:
    from modules.database import models
    from modules.downloader.browser import CHROMEDRIVER_ENV, CHROMIUM_ENV
    from modules.tasks.process import APP_URL_ENV, CDN_URL_ENV

    if not 1 <= args.concurrency <= 64:
        raise UsageError(f"--concurrency must be from 1 to 64, not {args.concurrency}")
    if args.workers is not None and not 1 <= args.workers <= 64:
        raise UsageError(f"--workers must be from 1 to 64, not {args.workers}")
    queues = [
        _checked(q, settings.check_queue)
        for q in args.queues or [settings.DEFAULT_QUEUE]
    ]
    if args.db is not None:
        try:
            models.normalize_url(args.db)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    if args.dir is not None:
        from modules.storage import open_storage

        try:
            open_storage(args.dir)  # a folder or s3://bucket/prefix; reached at start
        except ValueError as exc:
            raise UsageError(f"--dir: {exc}") from exc
    for option, value in (("--app-url", args.app_url), ("--cdn-url", args.cdn_url)):
        if value is not None and not value.startswith(("http://", "https://")):
            raise UsageError(f"{option} must be an http(s) URL, not {value!r}")
    # The pool's processes (and a `celery` worker) read their settings from here.
    for env, value in (
        ("DATABASE_URL", args.db),
        (models.ARCHIVE_ENV, args.dir),
        (APP_URL_ENV, args.app_url),
        (CDN_URL_ENV, args.cdn_url),
        (CHROMIUM_ENV, args.chromium),
        (CHROMEDRIVER_ENV, args.chromedriver),
        (
            settings.FETCH_WORKERS_ENV,
            None if args.workers is None else str(args.workers),
        ),
    ):
        if value is not None:
            os.environ[env] = value
    app = _use_broker(args.broker)
    from modules.tasks.preflight import (
        EnvironmentBroken,
        check_environment,
        mark_checked,
    )

    try:
        check_environment()
    except EnvironmentBroken as exc:
        print(
            f"draydog: error: this worker cannot archive, so it takes no task: {exc}",
            file=sys.stderr,
        )
        return EXIT_BROKEN
    mark_checked()
    name = args.name or f"draydog-{os.getpid()}@{socket.gethostname()}"
    level = "ERROR" if args.quiet else ("DEBUG" if args.verbose > 1 else "INFO")
    argv = [
        "worker",
        "--queues",
        ",".join(queues),
        "--concurrency",
        str(args.concurrency),
        "--pool",
        "prefork",
        "--hostname",
        name,
        "--loglevel",
        level,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    return _run_celery(app, argv)


def _run_celery(app: Any, argv: list[str]) -> int:
    """``celery <argv>`` on ``app``, with its exit status.

    ``app.worker_main`` drops the status (click returns it rather than raising in
    non-standalone mode), and a worker stopped as broken must exit nonzero.
    """
    from celery.bin.celery import celery as celery_command
    from click.exceptions import Exit

    celery_command.params[0].default = app
    try:
        code = celery_command.main(args=argv, standalone_mode=False)
    except Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:
        code = exc.code
    finally:
        celery_command.params[0].default = None
    return code if isinstance(code, int) else EXIT_OK


# --- beat -------------------------------------------------------------------------


def _beat(args: argparse.Namespace) -> int:
    import tempfile

    from modules.service.config import (
        ConfigError,
        build_config,
        from_environment,
        read_file,
    )
    from modules.tasks.app import WATCH_STREAM

    given = {
        "terminals": args.terminals,
        "streams": args.streams,
        "interval": args.interval,
        "backfill_days": args.backfill_days,
    }
    try:
        from_file = read_file(args.config) if args.config is not None else {}
        config = build_config({**from_environment(), **from_file}, given)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    queue = _checked(args.queue, settings.check_queue)
    app = _use_broker(args.broker)
    app.conf.beat_schedule = {
        f"watch {terminal} {stream}": {
            "task": WATCH_STREAM,
            "schedule": config.interval,
            "args": (terminal, stream, config.backfill_days, queue, config.timezone),
            "options": {"queue": queue},
        }
        for terminal in config.terminals
        for stream in config.streams
    }
    schedule = (
        args.schedule_file or Path(tempfile.gettempdir()) / f"draydog-beat-{queue}"
    )
    level = "ERROR" if args.quiet else ("DEBUG" if args.verbose > 1 else "INFO")
    if not args.quiet:
        print(
            f"beat: {len(app.conf.beat_schedule)} streams every {config.interval:g} s "
            f"to queue {queue}",
            flush=True,
        )
    try:
        app.Beat(
            schedule=str(schedule),
            loglevel=level,
            max_interval=min(config.interval, 300),
        ).run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_FAILURES
    return EXIT_OK
