"""Camera outages: holes in a stream's capture rhythm longer than a few times its usual interval.

A stream's usual interval is the median time between consecutive pictures of a
day, measured on up to 14 days spread over the range. Finding the holes then
needs no pass over every picture in Python, nor a window over every row:

- between days, the database's first and last picture of each day suffice;
- within a day, time is cut into slices of half the threshold: if every slice from
  the day's first picture to its last holds one (a count the database makes from
  its index, in the same pass as the day's other counts), no two consecutive
  pictures are as far apart as the threshold. Only days with an empty slice are
  read picture by picture, with a window (``LAG``) over those days alone.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate

from modules.database import coverage
from modules.database.coverage import DayCoverage

logger = logging.getLogger(__name__)

DEFAULT_FACTOR = 3.0
"""A hole is an outage when it is longer than this many usual intervals."""
SAMPLE_DAYS = 14


@dataclass(frozen=True)
class Rhythm:
    """A stream's usual interval and the hole length that makes an outage."""

    usual: timedelta
    threshold: float
    """Seconds: a hole longer than this is an outage."""

    @property
    def slice_seconds(self) -> int:
        """Slices this wide leave no hole over the threshold unseen (see the module)."""
        return max(1, int(self.threshold // 2))


@dataclass(frozen=True)
class Outage:
    """No picture between ``last_before`` and ``first_after``."""

    terminal: str
    stream: str
    last_before: datetime
    first_after: datetime
    usual: timedelta

    @property
    def length(self) -> timedelta:
        return self.first_after - self.last_before


def measure_rhythm(
    terminal: str,
    stream: str,
    days: Sequence[date],
    factor: float = DEFAULT_FACTOR,
) -> Rhythm | None:
    """The rhythm on up to 14 of ``days``, evenly spread; None without two pictures in a day."""
    step = max(1, len(days) // SAMPLE_DAYS)
    sample = list(days)[::step][:SAMPLE_DAYS]
    usual = _median(coverage.interval_counts(terminal, stream, sample))
    if usual is None or usual <= 0:
        return None
    return Rhythm(timedelta(seconds=usual), factor * usual)


def _median(histogram: dict[int, int]) -> float | None:
    """The median of the values a histogram counts (the lower one of an even count)."""
    if not histogram:
        return None
    values = sorted(histogram)
    running = list(accumulate(histogram[value] for value in values))
    return float(values[bisect_left(running, running[-1] / 2)])


def find_outages(
    terminal: str,
    stream: str,
    days: Sequence[DayCoverage],
    rhythm: Rhythm,
    *,
    not_the_cameras: Collection[date] = (),
    empty_days: Collection[date] = (),
) -> list[Outage]:
    """The holes longer than the rhythm's threshold, oldest first.

    ``days`` are the stream's days with pictures, oldest first, counted with the
    rhythm's ``slice_seconds``. A hole touching a day in ``not_the_cameras`` (the
    archive lacks pictures of it) is the archive's, not the camera's, and is left
    out; a hole across days without pictures counts only when every one of them is
    in ``empty_days`` (the site confirmed it empty).
    """
    skipped = set(not_the_cameras)
    suspects = [
        day.day
        for day in days
        if day.day not in skipped and _has_empty_slice(day, rhythm.slice_seconds)
    ]
    logger.debug(
        "%s %s: %d of %d days have an empty %d-second slice",
        terminal,
        stream,
        len(suspects),
        len(days),
        rhythm.slice_seconds,
    )
    holes = coverage.holes_within(terminal, stream, suspects, rhythm.threshold)
    outages = [
        Outage(terminal, stream, before, after, rhythm.usual) for before, after in holes
    ]
    empty = set(empty_days)
    for earlier, later in zip(days, days[1:]):
        if (
            (later.first - earlier.last).total_seconds() > rhythm.threshold
            and not {earlier.day, later.day} & skipped
            and set(_days_between(earlier.day, later.day)) <= empty
        ):
            outages.append(
                Outage(terminal, stream, earlier.last, later.first, rhythm.usual)
            )
    return sorted(outages, key=lambda outage: outage.last_before)


def _has_empty_slice(day: DayCoverage, width: int) -> bool:
    if day.filled_slices is None:
        raise ValueError("the days must be counted with the rhythm's slice_seconds")
    spanned = _slice(day.last, width) - _slice(day.first, width) + 1
    return day.filled_slices < spanned


def _slice(moment: datetime, width: int) -> int:
    """The slice of ``moment``, as the database numbers it (whole seconds, floored)."""
    return int(moment.timestamp()) // width


def _days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range(1, (last - first).days)]
