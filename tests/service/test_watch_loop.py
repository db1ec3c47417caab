"""The watch loop's own arithmetic, without a browser: pauses with jitter, health verdicts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from modules.service.config import WatchConfig
from modules.service.health import Health
from modules.service.watch import Watch

NOW = datetime(2025, 9, 20, 19, 0, tzinfo=timezone.utc)


def test_pauses_spread_around_the_interval() -> None:
    watch = Watch(WatchConfig(interval=100.0, jitter=0.1), rng=random.Random(4))
    pauses = [watch.pause() for _ in range(500)]
    assert all(90.0 <= pause <= 110.0 for pause in pauses)
    assert min(pauses) < 92 and max(pauses) > 108  # spread, not one value


def test_health_lag_counts_from_the_start_until_a_picture_is_seen() -> None:
    now = [NOW]
    health = Health([("apm", "in_gate")], lag_limit=600.0, clock=lambda: now[0])
    now[0] += timedelta(seconds=599)
    assert health.report()[0] is True
    now[0] += timedelta(seconds=2)
    healthy, body = health.report()
    assert healthy is False and "lag 601 s is over 600 s" in str(body)

    health.saw_picture(("apm", "in_gate"), now[0] - timedelta(seconds=30))
    health.saw_picture(("apm", "in_gate"), now[0] - timedelta(seconds=300))  # older
    assert health.lag(("apm", "in_gate")) == 30.0
    assert health.report()[0] is True


def test_health_needs_two_failed_cycles_in_a_row() -> None:
    health = Health([("apm", "in_gate")], lag_limit=600.0, clock=lambda: NOW)
    key = ("apm", "in_gate")
    assert health.failed(key, "boom") == 1
    assert health.report()[0] is True
    assert health.failed(key, "boom again") == 2
    healthy, body = health.report()
    assert not healthy and "the last 2 cycles failed" in str(body)
    health.succeeded(key)
    assert health.report()[0] is True and health.failures(key) == 0
