"""list_images(after=...): a cursor whose time is in another zone than UTC pages the
same as a UTC one (SQLite dropped the offset without converting)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from modules.database import queries

UTC = timezone.utc
T0 = datetime(2025, 9, 6, 12, 0, tzinfo=UTC)


def _store(count: int) -> list[int]:
    """``count`` pictures, two streams sharing each instant (ties broken by the id)."""
    records: list[dict[str, Any]] = [
        {
            "filepath": f"apm/in_gate/{i:05d}.jpg",
            "camera_id": "in_gate" if i % 2 == 0 else "out_gate",
            "timestamp": T0 + timedelta(minutes=10 * (i // 2)),
        }
        for i in range(count)
    ]
    result = queries.insert_images(records, chunk_size=1000)
    return [result.ids[record["filepath"]] for record in records]


def _walk(zone: timezone | ZoneInfo | None, expected: int) -> list[int]:
    """Every page of 3, the cursor's time moved to ``zone`` (None: naive UTC)."""
    seen: list[int] = []
    after: tuple[datetime, int] | None = None
    for _ in range(expected):  # a cursor that repeats pages must not loop forever
        page = queries.list_images(limit=3, after=after)
        if not page:
            break
        seen.extend(image.id for image in page)
        last = page[-1].timestamp
        moved = last.replace(tzinfo=None) if zone is None else last.astimezone(zone)
        after = (moved, page[-1].id)
    return seen


@pytest.mark.parametrize(
    "zone",
    [
        pytest.param(ZoneInfo("America/Los_Angeles"), id="los-angeles"),
        pytest.param(ZoneInfo("Asia/Tokyo"), id="tokyo"),
        pytest.param(timezone(timedelta(hours=5, minutes=30)), id="fixed-offset"),
        pytest.param(None, id="naive-means-utc"),
    ],
)
def test_a_cursor_in_any_zone_pages_every_picture_once(
    database: str, zone: timezone | ZoneInfo | None
) -> None:
    ids = _store(20)
    assert _walk(zone, len(ids)) == ids


def test_a_cursor_in_another_zone_starts_right_after_its_picture(
    database: str,
) -> None:
    ids = _store(6)
    los_angeles = ZoneInfo("America/Los_Angeles")
    # The third picture (T0 + 10 min, in_gate) as Los Angeles tells its time.
    third = (T0 + timedelta(minutes=10)).astimezone(los_angeles)
    page = queries.list_images(limit=10, after=(third, ids[2]))
    assert [image.id for image in page] == ids[3:]


def test_a_cursor_time_that_is_not_a_datetime_is_refused(database: str) -> None:
    _store(2)
    with pytest.raises(ValueError, match="after's time must be a datetime"):
        queries.list_images(after=("2025-09-06T12:00:00Z", 1))  # type: ignore[arg-type]
