"""Daylight saving end to end: the repeated autumn hour keeps both of its hours.

On 2025-11-02 Los Angeles runs 01:00-02:00 twice (PDT, then PST). A zone-less ISO
picture name cannot tell the two apart; the History's order can, and an aware
instant handed in by a caller must never be reduced to its wall-clock time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from modules.downloader.urls import (
    ImageRef,
    build_image_url,
    capture_instants,
    get_zone,
    is_repeated_wall_time,
    parse_image_url,
    parse_instant,
    parse_wall_clock,
    timestamp_text,
    wall_clock_to_utc,
)

LA = "America/Los_Angeles"
CDN = "https://cdn.example"
FALL_BACK = date(2025, 11, 2)
SPRING_FORWARD = date(2025, 3, 9)


def utc(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> datetime:
    return datetime(
        year, month, day, hour, minute, second, microsecond, tzinfo=timezone.utc
    )


def _day_instants(day: date, every: timedelta) -> list[datetime]:
    """Instants every ``every`` from the day's local midnight to the next (real time)."""
    zone = get_zone(LA)
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(timezone.utc)
    end = (
        datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(days=1)
    ).astimezone(timezone.utc)
    instants = []
    moment = start + timedelta(seconds=17)
    n = 0
    while moment < end:
        instants.append(moment)
        n += 1
        moment = start + n * every + timedelta(seconds=(17 + 7 * n) % 60)
    return instants


def _iso_refs(instants: list[datetime]) -> list[ImageRef]:
    return [
        parse_image_url(build_image_url(CDN, "apm", "in_gate", moment))
        for moment in instants
    ]


def _unix_ref(moment: datetime) -> ImageRef:
    wall = moment.astimezone(get_zone(LA))
    millis = int(moment.timestamp() * 1000)
    return parse_image_url(
        f"{CDN}/apm/{wall.date()}/{wall.hour:02d}/{millis}-in_gate.jpeg"
    )


def test_the_autumn_day_has_its_repeated_hour_twice() -> None:
    instants = _day_instants(FALL_BACK, timedelta(minutes=10))
    walls = [moment.astimezone(get_zone(LA)) for moment in instants]
    repeated = [w for w in walls if w.hour == 1]
    assert len(instants) == 150
    assert {w.fold for w in repeated} == {0, 1}
    assert len({w.replace(tzinfo=None) for w in walls}) == len(walls)


def test_capture_instants_ascending_across_the_autumn_change() -> None:
    instants = _day_instants(FALL_BACK, timedelta(minutes=10))
    refs = _iso_refs(instants)
    # The ISO form alone puts the second 01:xx an hour early.
    assert len({ref.timestamp for ref in refs} & set(instants)) == len(instants) - 6
    assert all(not ref.exact for ref in refs)

    assert capture_instants(refs, LA) == instants


def test_capture_instants_descending_across_the_autumn_change() -> None:
    instants = _day_instants(FALL_BACK, timedelta(minutes=10))
    refs = _iso_refs(instants)[::-1]

    assert capture_instants(refs, LA) == instants[::-1]


def test_capture_instants_of_the_repeated_hour_alone() -> None:
    # 01:05 PDT, 01:35 PDT, 01:12 PST, 01:42 PST: the time goes back once.
    instants = [
        utc(2025, 11, 2, 8, 5),
        utc(2025, 11, 2, 8, 35),
        utc(2025, 11, 2, 9, 12),
        utc(2025, 11, 2, 9, 42),
    ]
    refs = _iso_refs(instants)
    assert capture_instants(refs, LA) == instants
    assert capture_instants(refs[::-1], LA) == instants[::-1]


def test_capture_instants_keeps_unix_instants_exact() -> None:
    instants = _day_instants(FALL_BACK, timedelta(minutes=10))
    refs = [_unix_ref(moment) for moment in instants]
    assert all(ref.exact for ref in refs)
    assert capture_instants(refs, LA) == instants
    assert capture_instants(refs[::-1], LA) == instants[::-1]


def test_a_unix_ref_in_the_second_hour_tells_the_iso_refs_after_it() -> None:
    # Only one picture of the first 01:xx; a gap the wall clock alone cannot see.
    first = utc(2025, 11, 2, 8, 5)  # 01:05 PDT
    second = [utc(2025, 11, 2, 9, 10), utc(2025, 11, 2, 9, 40)]  # 01:10, 01:40 PST
    refs = [_iso_refs([first])[0], _unix_ref(second[0]), _iso_refs([second[1]])[0]]
    assert capture_instants(refs, LA) == [first, *second]


def test_mixed_forms_across_the_autumn_change() -> None:
    instants = _day_instants(FALL_BACK, timedelta(minutes=10))
    refs = [
        _unix_ref(moment) if n % 3 == 0 else _iso_refs([moment])[0]
        for n, moment in enumerate(instants)
    ]
    assert capture_instants(refs, LA) == instants
    assert capture_instants(refs[::-1], LA) == instants[::-1]


def test_capture_instants_on_the_spring_day_and_ordinary_days() -> None:
    spring = _day_instants(SPRING_FORWARD, timedelta(minutes=10))
    assert len(spring) == 138
    assert capture_instants(_iso_refs(spring), LA) == spring
    assert capture_instants(_iso_refs(spring)[::-1], LA) == spring[::-1]
    ordinary = _day_instants(date(2025, 9, 6), timedelta(minutes=10))
    assert capture_instants(_iso_refs(ordinary), LA) == ordinary
    assert capture_instants([], LA) == []


def test_a_skipped_spring_time_is_read_as_today() -> None:
    ref = parse_image_url(f"{CDN}/apm/2025-03-09/2/2025-03-09T02:30:00-in_gate.jpeg")
    assert not is_repeated_wall_time(ref.local_time, LA)
    assert capture_instants([ref], LA) == [wall_clock_to_utc(ref.local_time, LA)]


def test_timestamp_text_is_naive_except_in_the_repeated_hour() -> None:
    assert timestamp_text(utc(2025, 9, 7, 6, 7, 34), LA) == "2025-09-06T23:07:34"
    assert timestamp_text(utc(2025, 11, 2, 8, 5), LA) == "2025-11-02T01:05:00-07:00"
    assert timestamp_text(utc(2025, 11, 2, 9, 5), LA) == "2025-11-02T01:05:00-08:00"
    assert timestamp_text(utc(2025, 11, 2, 10, 5), LA) == "2025-11-02T02:05:00"
    assert timestamp_text(utc(2025, 11, 2, 7, 59, 59), LA) == "2025-11-02T00:59:59"
    assert timestamp_text(utc(2025, 9, 7, 6, 7, 34, 900), LA) == "2025-09-06T23:07:34"
    with pytest.raises(ValueError):
        timestamp_text(datetime(2025, 9, 6, 23, 7, 34), LA)


def test_timestamp_text_round_trip_across_both_changes() -> None:
    instants = _day_instants(FALL_BACK, timedelta(minutes=7))
    instants += _day_instants(SPRING_FORWARD, timedelta(minutes=7))
    texts = [timestamp_text(moment, LA) for moment in instants]
    assert len(set(texts)) == len(texts)
    for moment, text in zip(instants, texts):
        assert parse_instant(text, LA) == moment, text
        assert wall_clock_to_utc(parse_wall_clock(text, LA), LA) == moment, text
