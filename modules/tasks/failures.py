"""Which failures of a day are worth another attempt.

* **Permanent**, recorded and not retried: the page does not offer the day
  (:class:`DayNotAvailable`), bad input (a day in the future, a bad name: a
  ValueError), pictures the CDN has in neither size (``404``/``403: no
  picture, no thumbnail``) and History items that name no fetchable picture
  (another host, an unknown URL form; all of them: :class:`UnusableHistory`):
  another attempt would find the same.
* **Transient**, retried with exponential backoff: the page failed
  (:class:`DiscoveryError`, a browser that crashed, a network error), pictures that
  failed for another reason (timeouts, 5xx, truncated bodies), rows the database
  could not take (it is down): the next attempt skips what is stored and writes
  the missing rows. Rows the database refused for themselves (a constraint, a
  trigger) would be refused again: not retried.
* **The environment**, not the day: no browser (:class:`BrowserUnavailable`). The
  task goes back to the queue for a healthy worker and this worker stops.
"""

from __future__ import annotations

from modules.downloader.discovery_errors import BrowserUnavailable, UnusableHistory
from modules.downloader.report import UNUSABLE_ITEM, DownloadReport

ABSENT_REASONS = ("404: no picture, no thumbnail", "403: no picture, no thumbnail")

PERMANENT, TRANSIENT, ENVIRONMENT = "permanent", "transient", "environment"


def classify_exception(exc: BaseException) -> str:
    """How to treat a day whose download raised ``exc``."""
    if isinstance(exc, BrowserUnavailable):
        return ENVIRONMENT
    if isinstance(exc, (ValueError, UnusableHistory)):  # DayNotAvailable, bad input
        return PERMANENT
    return TRANSIENT


def transient_trouble(report: DownloadReport) -> str | None:
    """Why a finished day deserves another attempt, or None (done, or only permanent failures)."""
    if report.db_failed > report.db_refused:
        return f"{report.db_failed - report.db_refused} rows not written (the database)"
    retryable = [
        reason
        for _, reason in report.failed
        if reason not in ABSENT_REASONS and not reason.startswith(UNUSABLE_ITEM)
    ]
    if retryable:
        return f"{len(retryable)} pictures failed ({retryable[0]})"
    return None
