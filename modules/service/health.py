"""Whether each stream is being archived: its newest picture, its lag, its last cycles.

The lag is measured from the newest picture the archive holds, so it grows both
when the archiver fails and when the site stops publishing: either way the
archive is falling behind, which is what an operator wants to hear about.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

FAILED_CYCLES_UNHEALTHY = 2
"""Consecutive failed cycles of a stream that make it unhealthy (one may be a blip)."""

Key = tuple[str, str]
"""(terminal, stream)."""


@dataclass
class StreamState:
    """What the watch knows of one stream."""

    newest_picture: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0


class Health:
    """Per-stream state, written by the watch loop and read by the HTTP endpoint's thread."""

    def __init__(
        self, keys: list[Key], lag_limit: float, clock: Callable[[], datetime]
    ) -> None:
        self.lag_limit = lag_limit
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self._states = {key: StreamState() for key in keys}

    def saw_picture(self, key: Key, captured: datetime) -> None:
        with self._lock:
            state = self._states[key]
            if state.newest_picture is None or captured > state.newest_picture:
                state.newest_picture = captured

    def succeeded(self, key: Key) -> None:
        with self._lock:
            state = self._states[key]
            state.last_success = self.clock()
            state.consecutive_failures = 0

    def failed(self, key: Key, error: str) -> int:
        """Note a failed cycle of the stream; returns how many in a row have failed."""
        with self._lock:
            state = self._states[key]
            state.last_error = error
            state.last_error_at = self.clock()
            state.consecutive_failures += 1
            return state.consecutive_failures

    def failures(self, key: Key) -> int:
        with self._lock:
            return self._states[key].consecutive_failures

    def newest(self, key: Key) -> datetime | None:
        with self._lock:
            return self._states[key].newest_picture

    def lag(self, key: Key) -> float:
        """Seconds since the newest picture (since the start while there is none yet)."""
        with self._lock:
            since = self._states[key].newest_picture or self.started
        return max(0.0, (self.clock() - since).total_seconds())

    def report(self) -> tuple[bool, dict[str, object]]:
        """Whether every stream is healthy, and the JSON-able body that says why."""
        streams = []
        with self._lock:
            states = [
                (key, StreamState(**vars(state))) for key, state in self._states.items()
            ]
        for key, state in states:
            lag = self.lag(key)
            problems = []
            if lag > self.lag_limit:
                problems.append(f"lag {lag:.0f} s is over {self.lag_limit:.0f} s")
            if state.consecutive_failures >= FAILED_CYCLES_UNHEALTHY:
                problems.append(f"the last {state.consecutive_failures} cycles failed")
            streams.append(
                {
                    "terminal": key[0],
                    "stream": key[1],
                    "healthy": not problems,
                    "problems": problems,
                    "newest_picture": _iso(state.newest_picture),
                    "lag_seconds": round(lag, 1),
                    "last_success": _iso(state.last_success),
                    "last_error": state.last_error,
                    "last_error_at": _iso(state.last_error_at),
                    "consecutive_failures": state.consecutive_failures,
                }
            )
        healthy = all(stream["healthy"] for stream in streams)
        return healthy, {"healthy": healthy, "streams": streams}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
