"""Which pictures the replica's cameras took, deterministically.

The real cameras take a picture about every 10 minutes at irregular seconds. The
replica derives every capture time from a hash of ``(seed, terminal, stream, day)``,
so a test, a benchmark and the server agree on the same pictures without storing
any. Capture times are *naive wall-clock times at the terminal* by design: that is
what the CDN's ISO file names carry (see ``modules.downloader.urls``).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from modules.downloader.urls import (
    DEFAULT_TIMEZONE,
    get_zone,
    utc_to_wall_clock,
    validate_name,
    wall_clock_to_utc,
)

DEFAULT_HISTORY_DAYS = 730
"""How far back pictures go when ``first_day`` is not given (about two years)."""

_SECONDS_PER_DAY = 24 * 60 * 60


@dataclass(frozen=True)
class Schedule:
    """The cameras' capture times: about ``24 * 60 / interval_minutes`` per stream per day.

    Every terminal that is a valid name has pictures, on the streams in ``streams``.
    Days before ``first_day``, after the replica's today, and in ``empty_days`` have
    none. When ``today`` is left out the replica follows the real clock at the
    terminal and today's pictures stop at the current wall-clock time; a pinned
    ``today`` has its full day, so tests do not depend on the hour they run at.

    Daylight saving: wall-clock times that do not exist (the skipped spring hour) are
    never taken, so such a day has fewer pictures; the repeated autumn hour is taken
    once, because a naive file name cannot tell its two occurrences apart.
    """

    seed: int = 0
    interval_minutes: int = 10
    empty_days: frozenset[date] = frozenset()
    first_day: date | None = None
    today: date | None = None
    source_timezone: str = DEFAULT_TIMEZONE
    streams: tuple[str, ...] = ("in_gate", "out_gate")

    def __post_init__(self) -> None:
        if not 1 <= self.interval_minutes <= 24 * 60:
            raise ValueError(
                f"interval_minutes must be 1..1440, not {self.interval_minutes}"
            )
        get_zone(self.source_timezone)
        for stream in self.streams:
            validate_name(stream, "stream")
        # Accept any iterable of days but keep the field hashable (the server caches on it).
        object.__setattr__(self, "empty_days", frozenset(self.empty_days))

    def today_date(self) -> date:
        """The replica's today: the pinned ``today``, else the real date at the terminal."""
        if self.today is not None:
            return self.today
        return datetime.now(get_zone(self.source_timezone)).date()

    def first_date(self) -> date:
        """The first day with pictures: ``first_day``, else about two years before today."""
        if self.first_day is not None:
            return self.first_day
        return self.today_date() - timedelta(days=DEFAULT_HISTORY_DAYS)

    def timestamps(self, terminal: str, stream: str, day: date) -> list[datetime]:
        """The day's capture times, sorted naive wall-clock times in ``[day, day + 1)``.

        The same for every call with the same seed; empty for a day without pictures.
        """
        validate_name(terminal, "terminal")
        validate_name(stream, "stream")
        if not self._day_has_pictures(stream, day):
            return []
        times = _day_times(
            self.seed,
            self.interval_minutes,
            self.source_timezone,
            terminal,
            stream,
            day,
        )
        cut = self._cut()
        if cut is not None and day == cut.date():
            return [moment for moment in times if moment <= cut]
        return list(times)

    def has_picture(self, terminal: str, stream: str, wall_time: datetime) -> bool:
        """Whether a picture was taken at ``wall_time`` (naive wall clock; aware is converted)."""
        wall = utc_to_wall_clock(wall_time, self.source_timezone)
        day = wall.date()
        validate_name(terminal, "terminal")
        validate_name(stream, "stream")
        if not self._day_has_pictures(stream, day):
            return False
        cut = self._cut()
        if cut is not None and wall > cut:
            return False
        return wall in _day_time_set(
            self.seed,
            self.interval_minutes,
            self.source_timezone,
            terminal,
            stream,
            day,
        )

    def has_pictures(self, terminal: str, stream: str, day: date) -> bool:
        """Whether the day has at least one picture (today: one taken by now)."""
        return bool(self.timestamps(terminal, stream, day))

    def _day_has_pictures(self, stream: str, day: date) -> bool:
        return (
            stream in self.streams
            and day not in self.empty_days
            and self.first_date() <= day <= self.today_date()
        )

    def _cut(self) -> datetime | None:
        """The current wall-clock time when following the real clock, else None."""
        if self.today is not None:
            return None
        return datetime.now(get_zone(self.source_timezone)).replace(
            tzinfo=None, microsecond=0
        )


@lru_cache(maxsize=4096)
def _day_times(
    seed: int, interval_minutes: int, zone: str, terminal: str, stream: str, day: date
) -> tuple[datetime, ...]:
    """One capture per ``interval_minutes`` slot, at a random second inside the slot."""
    key = f"{seed}|{terminal}|{stream}|{day.isoformat()}".encode()
    rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    midnight = datetime(day.year, day.month, day.day)
    step = interval_minutes * 60
    times = []
    for start in range(0, _SECONDS_PER_DAY, step):
        offset = start + rng.randrange(min(step, _SECONDS_PER_DAY - start))
        moment = midnight + timedelta(seconds=offset)
        if _exists(moment, zone):
            times.append(moment)
    return tuple(times)


@lru_cache(maxsize=4096)
def _day_time_set(
    seed: int, interval_minutes: int, zone: str, terminal: str, stream: str, day: date
) -> frozenset[datetime]:
    return frozenset(_day_times(seed, interval_minutes, zone, terminal, stream, day))


def _exists(wall: datetime, zone: str) -> bool:
    """False for a wall-clock time inside the skipped spring-forward hour."""
    return utc_to_wall_clock(wall_clock_to_utc(wall, zone), zone) == wall
