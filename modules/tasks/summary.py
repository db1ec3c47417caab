"""A day's :class:`DownloadReport` as the task's JSON result, and back.

``draydog enqueue --wait`` turns each result back into a report and prints the same
table as ``draydog download``. The list of files is left out (a count is kept).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from modules.downloader.report import DownloadReport

_COUNTS = (
    "requested",
    "downloaded",
    "already_present",
    "thumbnails",
    "bytes",
    "db_inserted",
    "db_duplicates",
    "db_failed",
    "db_refused",
    "foreign_ignored",
)


def to_summary(
    terminal: str,
    stream: str,
    day: str,
    report: DownloadReport,
    *,
    attempts: int,
    worker: str | None,
    permanent: bool = False,
) -> dict[str, Any]:
    """The JSON-able result of one ``archive_day`` task."""
    summary: dict[str, Any] = {
        "terminal": terminal,
        "stream": stream,
        "day": day,
        "ok": report.ok,
        "stored": len(report.files),
        "failed": [list(item) for item in report.failed],
        "seconds": round(report.seconds, 3),
        "discovery_seconds": round(report.discovery_seconds, 3),
        "error": report.error,
        "empty": report.empty,
        "recorded": report.recorded,
        "attempts": attempts,
        "worker": worker,
        "permanent": permanent,
    }
    summary.update({name: getattr(report, name) for name in _COUNTS})
    return summary


def failure_summary(
    terminal: str,
    stream: str,
    day: str,
    error: str,
    *,
    attempts: int,
    worker: str | None,
    permanent: bool,
) -> dict[str, Any]:
    """The result of a task whose day could not be read at all."""
    report = DownloadReport(failed=[(day, error)], error=error)
    return to_summary(
        terminal,
        stream,
        day,
        report,
        attempts=attempts,
        worker=worker,
        permanent=permanent,
    )


def to_report(summary: dict[str, Any]) -> DownloadReport:
    """A report with the counts of ``summary`` (no file list)."""
    report = DownloadReport(
        failed=[(str(when), str(reason)) for when, reason in summary.get("failed", [])],
        seconds=float(summary.get("seconds", 0.0)),
        discovery_seconds=float(summary.get("discovery_seconds", 0.0)),
        error=summary.get("error"),
        empty=bool(summary.get("empty", False)),
        recorded=summary.get("recorded"),
    )
    for name in _COUNTS:
        setattr(report, name, int(summary.get(name, 0)))
    return report


def key_of(summary: dict[str, Any]) -> tuple[date, str]:
    """(day, stream), as ``draydog download``'s table is keyed."""
    return date.fromisoformat(summary["day"]), str(summary["stream"])
