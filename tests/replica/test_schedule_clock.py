"""The replica's cameras on a clock a test moves: today and its pictures follow it."""

from __future__ import annotations

import json
import urllib.request
from datetime import date, datetime, timedelta, timezone

from modules.site.urls import wall_clock_to_utc
from modules.replica import ReplicaServer, Schedule

NOON = datetime(2025, 9, 20, 19, 0, tzinfo=timezone.utc)  # 12:00 in Los Angeles


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_today_and_its_pictures_follow_the_clock() -> None:
    clock = _Clock(NOON)
    schedule = Schedule(clock=clock)
    full = Schedule(today=date(2025, 9, 20)).timestamps(
        "apm", "in_gate", date(2025, 9, 20)
    )

    assert schedule.today_date() == date(2025, 9, 20)
    morning = schedule.timestamps("apm", "in_gate", date(2025, 9, 20))
    assert morning == [t for t in full if wall_clock_to_utc(t) <= NOON]
    assert 70 <= len(morning) <= 74

    clock.now += timedelta(minutes=25)
    later = schedule.timestamps("apm", "in_gate", date(2025, 9, 20))
    assert later[: len(morning)] == morning and 2 <= len(later) - len(morning) <= 3
    assert schedule.has_picture("apm", "in_gate", later[-1])
    assert not schedule.has_picture("apm", "in_gate", full[len(later)])
    assert schedule.timestamps("apm", "in_gate", date(2025, 9, 21)) == []

    clock.now += timedelta(hours=12)  # past midnight at the terminal
    assert schedule.today_date() == date(2025, 9, 21)
    assert schedule.timestamps("apm", "in_gate", date(2025, 9, 20)) == full


def test_the_page_config_says_the_clocks_today() -> None:
    clock = _Clock(NOON)
    with ReplicaServer(Schedule(clock=clock)) as server:
        url = f"{server.base_url}/api/cameras/apm/in_gate/config"
        with urllib.request.urlopen(url) as answer:
            assert json.load(answer)["today"] == "2025-09-20"
        clock.now += timedelta(hours=13)
        with urllib.request.urlopen(url) as answer:
            assert json.load(answer)["today"] == "2025-09-21"
