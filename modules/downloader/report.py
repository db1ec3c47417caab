"""What one download call did, in numbers a run summary and the database can use."""

from __future__ import annotations

from dataclasses import dataclass, field

UNUSABLE_ITEM = "History item "
"""How the reason of a History item that names no fetchable picture begins (another
host, an unknown URL form): the page, not the CDN, lacks it, so it stays so."""


@dataclass
class DownloadReport:
    """The outcome of downloading one stream's pictures (usually one day).

    ``downloaded`` counts pictures fetched now (thumbnails included), ``thumbnails``
    those of them that are thumbnails, ``already_present`` those found complete on
    disk. ``db_failed`` counts records whose row could not be written: their files
    are kept and ``draydog reindex`` (or the next run) recovers them.
    """

    files: list[str] = field(default_factory=list)
    downloaded: int = 0
    already_present: int = 0
    thumbnails: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes: int = 0
    db_inserted: int = 0
    db_duplicates: int = 0
    db_failed: int = 0
    db_refused: int = 0
    """How many of ``db_failed`` the database refused for themselves: not worth
    retrying, unlike rows the database could not take (down, locked)."""
    seconds: float = 0.0
    """Seconds fetching and recording the pictures."""
    discovery_seconds: float = 0.0
    """Seconds reading the day's list from the page (0 when no page was read)."""
    requested: int = 0
    run_id: int | None = None
    foreign_ignored: int = 0
    """Pictures on the page whose host is not the CDN's: never fetched."""
    error: str | None = None
    """Why the whole call failed (discovery for the day, say), else None."""
    empty: bool = False
    """The day has no pictures, as two independent reads of the page agreed; never
    set for a day whose page could not be read."""
    recorded: str | None = None
    """``complete`` or ``empty`` when the day was not read again because
    ``archive_days`` records it so (the counts are the record's); else None."""

    @property
    def ok(self) -> bool:
        """Every picture was had and recorded."""
        return self.error is None and not self.failed and self.db_failed == 0


def day_status(report: DownloadReport, *, day_over: bool) -> str:
    """The day's status in ``archive_days`` after a download of the whole day.

    Complete only once the day is over at the terminal (until then the site keeps
    listing new pictures), every listed picture is on disk and every row was
    written. A day whose rows failed is partial even with all its files: a done day
    is never read again (``days_to_read``, reruns, a Celery retry all skip it), so
    only a partial one gets the rerun that writes the missing rows from the files
    already there, without fetching them again.
    """
    if report.error is not None:
        return "failed"
    if report.db_failed:
        return "partial"
    if report.empty:
        return "empty" if day_over else "partial"
    # A list with no pictures that was not confirmed empty proves nothing.
    whole = report.requested > 0 and len(report.files) >= report.requested
    if day_over and whole and not report.failed:
        return "complete"
    return "partial"
