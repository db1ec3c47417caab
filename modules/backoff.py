"""Retries with exponential backoff: the one policy HTTP fetches and database writes share."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How often to try and how long to wait between tries.

    ``attempts`` counts every try, the first included. The n-th wait is
    ``base_delay * 2**n`` capped at ``max_delay``, with up to 10% jitter so that
    workers failing together do not retry in lockstep.
    """

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def delay(self, retry_number: int, floor: float = 0.0) -> float:
        """Seconds to wait before retry ``retry_number`` (0-based); at least ``floor``."""
        raw = min(self.base_delay * (2**retry_number), self.max_delay)
        jittered = raw * (1.0 + random.uniform(0.0, 0.1))
        return float(max(jittered, min(floor, self.max_delay)))


def call_with_retries(
    operation: Callable[[], T],
    policy: Backoff,
    is_retryable: Callable[[BaseException], bool],
    *,
    describe: str = "operation",
    min_wait: Callable[[BaseException], float] = lambda exc: 0.0,
    log_level: int = logging.WARNING,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``operation``, retrying what ``is_retryable`` accepts; re-raise the rest or the last.

    ``min_wait`` lets an error ask for a longer pause (an HTTP Retry-After, say).
    """
    for retry_number in range(policy.attempts):
        try:
            return operation()
        except Exception as exc:
            if retry_number + 1 >= policy.attempts or not is_retryable(exc):
                raise
            wait = policy.delay(retry_number, floor=min_wait(exc))
            logger.log(
                log_level,
                "%s failed (%s); retry %d/%d in %.2fs",
                describe,
                exc,
                retry_number + 1,
                policy.attempts - 1,
                wait,
            )
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")
