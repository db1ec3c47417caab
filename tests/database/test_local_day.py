"""images.local_day: the capture's day at the terminal, filled by every insert path."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from modules.database import models, queries
from modules.site.urls import DEFAULT_TIMEZONE

UTC = timezone.utc


def test_the_default_zone_is_the_downloaders() -> None:
    assert models.LOCAL_DAY_TIMEZONE == DEFAULT_TIMEZONE


def test_insert_paths_fill_local_day_in_the_terminals_zone_unless_given(
    database: str,
) -> None:
    # 03:30 UTC on June 2nd is 20:30 on June 1st at the terminal.
    evening = datetime(2024, 6, 2, 3, 30, tzinfo=UTC)
    queries.insert_image("/a/one.jpg", "in_gate", evening)
    # One picture per stream at that instant (a picture's identity).
    queries.insert_image("/a/tokyo.jpg", "tokyo", evening, local_day=date(2024, 6, 2))
    result = queries.insert_images(
        [
            {"filepath": "/a/batch.jpg", "camera_id": "batch", "timestamp": evening},
            {
                "filepath": "/a/given.jpg",
                "camera_id": "given",
                "timestamp": evening,
                "local_day": date(2024, 6, 2),
            },
            # Naive means UTC: 07:59 UTC on 1 Jan is still 31 December in Los Angeles.
            {
                "filepath": "/a/naive.jpg",
                "camera_id": "in_gate",
                "timestamp": datetime(2025, 1, 1, 7, 59),
            },
        ]
    )
    assert result.inserted == 3 and not result.failed
    days = {image.filepath: image.local_day for image in queries.list_images()}
    assert days == {
        "/a/one.jpg": date(2024, 6, 1),
        "/a/tokyo.jpg": date(2024, 6, 2),
        "/a/batch.jpg": date(2024, 6, 1),
        "/a/given.jpg": date(2024, 6, 2),
        "/a/naive.jpg": date(2024, 12, 31),
    }
    assert evening.astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date() == date(2024, 6, 1)


@pytest.mark.parametrize(
    "bad", ["2024-06-01", datetime(2024, 6, 1, tzinfo=UTC), 20240601]
)
def test_a_local_day_that_is_not_a_date_is_refused(database: str, bad: object) -> None:
    with pytest.raises(ValueError, match="local_day must be a date"):
        queries.insert_images(
            [{"filepath": "/a/x.jpg", "camera_id": "in_gate", "local_day": bad}]
        )
    assert queries.count_images() == 0


def test_daily_counts_in_another_zone_cross_its_daylight_saving_changes(
    database: str,
) -> None:
    """Pictures every 50 minutes over six weeks around Berlin's change of 30 March 2025."""
    from datetime import timedelta

    from modules.database.coverage import offset_periods

    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 3, 10, 0, 3, tzinfo=UTC)
    stamps = [start + timedelta(minutes=50 * i) for i in range(1200)]
    queries.insert_images(
        [
            {"filepath": f"/a/{i}.jpg", "camera_id": "in_gate", "timestamp": stamp}
            for i, stamp in enumerate(stamps)
        ]
    )
    expected: dict[date, int] = {}
    for stamp in stamps:
        local = stamp.astimezone(berlin).date()
        expected[local] = expected.get(local, 0) + 1
    counts = queries.daily_counts(timezone_name="Europe/Berlin")
    assert {c.day: c.pictures for c in counts} == expected
    # The change itself: 01:00 UTC on 30 March, found to the minute.
    periods = offset_periods(berlin, stamps[0], stamps[-1])
    assert [(until, minutes) for until, minutes in periods[:1]] == [
        (datetime(2025, 3, 30, 1, 0, tzinfo=UTC), 60)
    ]
    assert periods[-1][1] == 120
