"""The schedule: deterministic, about 144 irregular pictures a day, bounded in time."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from modules.site.urls import InvalidName, get_zone, wall_clock_to_utc
from modules.replica.schedule import DEFAULT_HISTORY_DAYS, Schedule

DAY = date(2025, 9, 6)
PINNED = Schedule(today=date(2025, 12, 31), first_day=date(2024, 1, 1))


def test_same_seed_same_times_and_other_seed_or_camera_other_times() -> None:
    times = PINNED.timestamps("apm", "in_gate", DAY)
    assert (
        Schedule(today=date(2025, 12, 31), first_day=date(2024, 1, 1)).timestamps(
            "apm", "in_gate", DAY
        )
        == times
    )
    other_seed = Schedule(seed=1, today=date(2025, 12, 31), first_day=date(2024, 1, 1))
    assert other_seed.timestamps("apm", "in_gate", DAY) != times
    assert PINNED.timestamps("apm", "out_gate", DAY) != times
    assert PINNED.timestamps("pier_t", "in_gate", DAY) != times


def test_a_day_has_144_sorted_irregular_pictures_inside_the_day() -> None:
    times = PINNED.timestamps("apm", "in_gate", DAY)
    assert len(times) == 144
    assert times == sorted(times) and len(set(times)) == 144
    assert all(t.tzinfo is None for t in times)
    assert times[0] >= datetime(2025, 9, 6) and times[-1] < datetime(2025, 9, 7)
    assert len({t.second for t in times}) > 30
    gaps = {(b - a).total_seconds() for a, b in zip(times, times[1:])}
    assert len(gaps) > 50 and max(gaps) < 20 * 60


def test_interval_sets_the_density() -> None:
    schedule = Schedule(
        interval_minutes=5, today=date(2025, 12, 31), first_day=date(2024, 1, 1)
    )
    assert len(schedule.timestamps("apm", "in_gate", DAY)) == 288


def test_days_without_pictures() -> None:
    schedule = Schedule(
        today=date(2025, 9, 10), first_day=date(2025, 9, 1), empty_days=frozenset({DAY})
    )
    assert schedule.timestamps("apm", "in_gate", DAY) == []
    assert not schedule.has_pictures("apm", "in_gate", DAY)
    assert not schedule.has_pictures("apm", "in_gate", date(2025, 8, 31))
    assert not schedule.has_pictures("apm", "in_gate", date(2025, 9, 11))
    assert not schedule.has_pictures("apm", "side_gate", date(2025, 9, 7))
    assert schedule.has_pictures("apm", "in_gate", date(2025, 9, 1))
    assert len(schedule.timestamps("apm", "in_gate", date(2025, 9, 10))) == 144


def test_has_picture_matches_timestamps_and_reads_aware_times() -> None:
    times = PINNED.timestamps("apm", "in_gate", DAY)
    assert all(PINNED.has_picture("apm", "in_gate", t) for t in times)
    assert not PINNED.has_picture("apm", "in_gate", times[0] + timedelta(seconds=1))
    assert PINNED.has_picture("apm", "in_gate", wall_clock_to_utc(times[5]))


def test_spring_forward_day_skips_the_missing_hour() -> None:
    day = date(2025, 3, 9)
    times = PINNED.timestamps("apm", "in_gate", day)
    assert len(times) == 138
    assert not any(t.hour == 2 for t in times)
    assert not PINNED.has_picture("apm", "in_gate", datetime(2025, 3, 9, 2, 30))


def test_fall_back_day_has_both_repeated_hours_in_capture_order() -> None:
    times = PINNED.timestamps("apm", "in_gate", date(2025, 11, 2))
    # 25 hours of real time: both 01:xx hours, and still no two equal file names.
    assert len(times) == len(set(times)) == 150
    repeated = [t for t in times if t.hour == 1]
    assert len(repeated) == 12
    assert [t.fold for t in repeated] == [0] * 6 + [1] * 6
    assert repeated[:6] == sorted(repeated[:6]) and repeated[6:] == sorted(repeated[6:])
    assert repeated[6] < repeated[5]  # the wall clock goes back once, in order
    instants = [wall_clock_to_utc(t) for t in times]
    assert instants == sorted(instants) and len(set(instants)) == 150
    gaps = [(b - a).total_seconds() for a, b in zip(instants, instants[1:])]
    assert 0 < min(gaps) and max(gaps) < 20 * 60
    assert times[0] >= datetime(2025, 11, 2) and times[-1] < datetime(2025, 11, 3)


def test_fall_back_day_serves_each_occurrence_by_its_instant() -> None:
    times = PINNED.timestamps("apm", "in_gate", date(2025, 11, 2))
    first = next(t for t in times if t.hour == 1 and t.fold == 0)
    second = next(t for t in times if t.hour == 1 and t.fold == 1)
    for wall in (first, second):
        instant = wall_clock_to_utc(wall)
        other = instant + timedelta(hours=1 if wall.fold == 0 else -1)
        assert PINNED.has_picture("apm", "in_gate", wall.replace(fold=0))
        assert PINNED.has_picture("apm", "in_gate", instant)
        assert not PINNED.has_picture("apm", "in_gate", other)


def test_spring_forward_day_is_in_capture_order() -> None:
    times = PINNED.timestamps("apm", "in_gate", date(2025, 3, 9))
    instants = [wall_clock_to_utc(t) for t in times]
    assert times == sorted(times) and instants == sorted(instants)
    assert all(PINNED.has_picture("apm", "in_gate", t) for t in times)


def test_following_the_real_clock_cuts_today_at_now() -> None:
    schedule = Schedule()
    today = schedule.today_date()
    now = datetime.now(get_zone(schedule.source_timezone)).replace(tzinfo=None)
    assert today == now.date()
    assert all(t <= now for t in schedule.timestamps("apm", "in_gate", today))
    assert len(schedule.timestamps("apm", "in_gate", today - timedelta(days=2))) >= 138
    assert schedule.timestamps("apm", "in_gate", today + timedelta(days=1)) == []
    assert schedule.first_date() == today - timedelta(days=DEFAULT_HISTORY_DAYS)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        Schedule(interval_minutes=0)
    with pytest.raises(ValueError):
        Schedule(source_timezone="Mars/Olympus")
    with pytest.raises(InvalidName):
        Schedule(streams=("In Gate",))
    with pytest.raises(InvalidName):
        PINNED.timestamps("../etc", "in_gate", DAY)
