"""Which pictures the replica's cameras took, deterministically.

The real cameras take a picture about every 10 minutes at irregular seconds. The
replica derives every capture time from a hash of ``(seed, terminal, stream, day)``,
so a test, a benchmark and the server agree on the same pictures without storing
any. Capture times are *naive wall-clock times at the terminal* by design: that is
what the CDN's ISO file names carry (see ``modules.site.urls``); a time of the
second occurrence of the repeated autumn hour carries ``fold=1`` (PEP 495), so
``wall_clock_to_utc`` still gives its instant.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

from modules.site.urls import (
    DEFAULT_TIMEZONE,
    get_zone,
    utc_to_wall_clock,
    validate_name,
    wall_clock_to_utc,
)

DEFAULT_HISTORY_DAYS = 730
"""How far back pictures go when ``first_day`` is not given (about two years)."""


@dataclass(frozen=True)
class Schedule:
    """The cameras' capture times: about ``24 * 60 / interval_minutes`` per stream per day.

    Every terminal that is a valid name has pictures, on the streams in ``streams``.
    Days before ``first_day``, after the replica's today, and in ``empty_days`` have
    none. When ``today`` is left out the replica follows a clock at the terminal
    and today's pictures stop at its current time: ``clock`` (an aware instant,
    which a test moves to make pictures appear as their time passes) or else the
    real clock. A pinned ``today`` has its full day, so tests do not depend on the
    hour they run at.

    Daylight saving: the cameras run on real time, so the spring day (23 hours) has
    fewer pictures (138 at 10 minutes) and the autumn day (25 hours) more (150): both
    occurrences of its repeated hour. No two captures of a day share a wall-clock
    second, since an ISO file name could not tell them apart.
    """

    seed: int = 0
    interval_minutes: int = 10
    empty_days: frozenset[date] = frozenset()
    first_day: date | None = None
    today: date | None = None
    source_timezone: str = DEFAULT_TIMEZONE
    streams: tuple[str, ...] = ("in_gate", "out_gate")
    clock: Callable[[], datetime] | None = None

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
        """The replica's today: the pinned ``today``, else the clock's date at the terminal."""
        if self.today is not None:
            return self.today
        return self._clock_now().astimezone(get_zone(self.source_timezone)).date()

    def first_date(self) -> date:
        """The first day with pictures: ``first_day``, else about two years before today."""
        if self.first_day is not None:
            return self.first_day
        return self.today_date() - timedelta(days=DEFAULT_HISTORY_DAYS)

    def timestamps(self, terminal: str, stream: str, day: date) -> list[datetime]:
        """The day's capture times in capture order: naive wall-clock times in ``[day, day + 1)``.

        Capture order is wall-clock order but on the autumn day, where the repeated
        hour's second occurrence (``fold=1``) follows its first: the History's order,
        which the page shows. The same for every call with the same seed; empty for a
        day without pictures.
        """
        validate_name(terminal, "terminal")
        validate_name(stream, "stream")
        if not self._day_has_pictures(stream, day):
            return []
        captures = self._captures(terminal, stream, day)
        now = self._now()
        return [wall for wall, instant in captures if now is None or instant <= now]

    def has_picture(self, terminal: str, stream: str, wall_time: datetime) -> bool:
        """Whether a picture was taken at ``wall_time``.

        A naive time is a wall-clock time, which names one picture (no two share a
        second); an aware time is an instant and must match exactly, so the other
        occurrence of a repeated hour is not that picture.
        """
        validate_name(terminal, "terminal")
        validate_name(stream, "stream")
        wall = utc_to_wall_clock(wall_time, self.source_timezone)
        day = wall.date()
        if not self._day_has_pictures(stream, day):
            return False
        instant = _day_index(
            self.seed,
            self.interval_minutes,
            self.source_timezone,
            terminal,
            stream,
            day,
        ).get(wall.replace(fold=0))
        if instant is None:
            return False
        if wall_time.tzinfo is not None and wall_time != instant:
            return False
        now = self._now()
        return now is None or instant <= now

    def _captures(
        self, terminal: str, stream: str, day: date
    ) -> tuple[tuple[datetime, datetime], ...]:
        return _day_captures(
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

    def _now(self) -> datetime | None:
        """The current instant when following a clock (today is cut there), else None."""
        if self.today is not None:
            return None
        return self._clock_now()

    def _clock_now(self) -> datetime:
        return datetime.now(timezone.utc) if self.clock is None else self.clock()


@lru_cache(maxsize=4096)
def _day_captures(
    seed: int, interval_minutes: int, zone: str, terminal: str, stream: str, day: date
) -> tuple[tuple[datetime, datetime], ...]:
    """``(wall, instant)`` of each capture, in capture order.

    One capture per ``interval_minutes`` slot of real time from the day's midnight to
    the next, at a random second inside the slot. A second whose wall-clock time an
    earlier capture already has (the repeated hour) is moved to the next free one.
    """
    key = f"{seed}|{terminal}|{stream}|{day.isoformat()}".encode()
    rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    start_utc = wall_clock_to_utc(datetime(day.year, day.month, day.day), zone)
    next_day = day + timedelta(days=1)
    end_utc = wall_clock_to_utc(
        datetime(next_day.year, next_day.month, next_day.day), zone
    )
    length = int((end_utc - start_utc).total_seconds())
    step = interval_minutes * 60
    seen: set[datetime] = set()
    captures = []
    for start in range(0, length, step):
        size = min(step, length - start)
        drawn = rng.randrange(size)
        for shift in range(size):
            instant = start_utc + timedelta(seconds=start + (drawn + shift) % size)
            wall = utc_to_wall_clock(instant, zone)
            if wall.replace(fold=0) not in seen:
                seen.add(wall.replace(fold=0))
                captures.append((wall, instant))
                break
    return tuple(captures)


@lru_cache(maxsize=4096)
def _day_index(
    seed: int, interval_minutes: int, zone: str, terminal: str, stream: str, day: date
) -> dict[datetime, datetime]:
    """Each capture's instant by its wall-clock time (``fold=0`` keys; they are unique)."""
    captures = _day_captures(seed, interval_minutes, zone, terminal, stream, day)
    return {wall.replace(fold=0): instant for wall, instant in captures}
