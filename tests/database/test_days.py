"""archive_days: each day's verdict, upserted, read back by day, by status and newest done."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from modules.database import days

DAY = date(2025, 9, 6)


def test_a_day_is_recorded_and_replaced(database: str) -> None:
    assert days.get_day("apm", "in_gate", DAY) is None
    before = datetime.now(timezone.utc)
    days.record_day(
        "apm", "in_gate", DAY, status="partial", listed=144, stored=140, failed=4
    )
    first = days.get_day("apm", "in_gate", DAY)
    assert first is not None
    assert (
        first.status,
        first.listed,
        first.stored,
        first.failed,
        first.thumbnails,
    ) == (
        "partial",
        144,
        140,
        4,
        0,
    )
    assert (first.terminal, first.stream, first.day) == ("apm", "in_gate", DAY)
    assert first.updated_at.tzinfo is not None and first.updated_at >= before

    days.record_day(
        "apm", "in_gate", DAY, status="complete", listed=144, stored=144, thumbnails=3
    )
    second = days.get_day("apm", "in_gate", DAY)
    assert second is not None
    assert (second.status, second.stored, second.failed, second.thumbnails) == (
        "complete",
        144,
        0,
        3,
    )
    assert second.updated_at >= first.updated_at
    # Other streams, terminals and days are other records.
    assert days.get_day("apm", "out_gate", DAY) is None
    assert days.get_day("wbct", "in_gate", DAY) is None


def test_a_failed_read_never_undoes_a_done_day(database: str) -> None:
    days.record_day("apm", "in_gate", DAY, status="complete", listed=144, stored=144)
    days.record_day("apm", "out_gate", DAY, status="empty", listed=0, stored=0)
    days.record_day("apm", "cam", DAY, status="partial", listed=10, stored=5)
    for stream in ("in_gate", "out_gate", "cam"):
        days.record_day(
            "apm", stream, DAY, status="failed", listed=0, stored=0, failed=1
        )
    statuses = {
        stream: getattr(days.get_day("apm", stream, DAY), "status", None)
        for stream in ("in_gate", "out_gate", "cam")
    }
    assert statuses == {"in_gate": "complete", "out_gate": "empty", "cam": "failed"}
    # A new successful read does replace a done day: the site is the reference.
    days.record_day("apm", "in_gate", DAY, status="partial", listed=150, stored=144)
    record = days.get_day("apm", "in_gate", DAY)
    assert record is not None and (record.status, record.listed) == ("partial", 150)


def test_days_with_status_and_the_newest_done_day(database: str) -> None:
    statuses = ["complete", "empty", "partial", "failed", "complete", "partial"]
    for offset, status in enumerate(statuses):
        days.record_day(
            "apm",
            "in_gate",
            DAY + timedelta(days=offset),
            status=status,
            listed=1,
            stored=1,
        )
    days.record_day(
        "apm",
        "out_gate",
        DAY + timedelta(days=9),
        status="complete",
        listed=1,
        stored=1,
    )
    last = DAY + timedelta(days=5)
    assert days.days_with_status("apm", "in_gate", DAY, last) == {
        DAY,
        DAY + timedelta(days=1),
        DAY + timedelta(days=4),
    }
    assert days.days_with_status(
        "apm", "in_gate", DAY + timedelta(days=1), DAY + timedelta(days=3)
    ) == {DAY + timedelta(days=1)}
    assert days.days_with_status(
        "apm", "in_gate", DAY, last, statuses=("partial", "failed")
    ) == {DAY + timedelta(days=2), DAY + timedelta(days=3), last}
    # The newest complete or empty day, not the newest day: day 5 is partial.
    assert days.newest_done_day("apm", "in_gate") == DAY + timedelta(days=4)
    assert days.newest_done_day("apm", "out_gate") == DAY + timedelta(days=9)
    assert days.newest_done_day("wbct", "in_gate") is None


def test_record_day_joins_the_callers_transaction(database: str) -> None:
    from modules.database.models import session_scope

    with pytest.raises(RuntimeError):
        with session_scope() as session:
            days.record_day(
                "apm",
                "in_gate",
                DAY,
                status="complete",
                listed=1,
                stored=1,
                session=session,
            )
            raise RuntimeError("rolled back")
    assert days.get_day("apm", "in_gate", DAY) is None
    with session_scope() as session:
        days.record_day(
            "apm",
            "in_gate",
            DAY,
            status="complete",
            listed=1,
            stored=1,
            session=session,
        )
    assert days.get_day("apm", "in_gate", DAY) is not None


@pytest.mark.parametrize(
    ("status", "counts", "message"),
    [
        ("done", {}, "status must be one of"),
        ("complete", {"listed": -1}, "listed must be a non-negative int"),
        ("complete", {"stored": True}, "stored must be a non-negative int"),
        ("partial", {"thumbnails": 1.5}, "thumbnails must be a non-negative int"),
    ],
)
def test_bad_records_are_refused(
    database: str, status: str, counts: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"listed": 1, "stored": 1, **counts}
    with pytest.raises(ValueError, match=message):
        days.record_day("apm", "in_gate", DAY, status=status, **values)  # type: ignore[arg-type]
    assert days.get_day("apm", "in_gate", DAY) is None


def test_days_to_read_retries_unfinished_days_before_the_newest_done(
    database: str,
) -> None:
    today = DAY + timedelta(days=10)
    recorded = {
        1: "partial",  # older than the window: the site's History has let it go
        4: "partial",
        5: "complete",
        6: "failed",
        7: "complete",
        8: "empty",
    }
    for offset, status in recorded.items():
        days.record_day(
            "apm",
            "in_gate",
            DAY + timedelta(days=offset),
            status=status,
            listed=1,
            stored=1,
        )
    wanted = days.days_to_read("apm", "in_gate", today, backfill_days=7)
    # Today, then every day of the window (from day 3) not done: day 3, never
    # recorded, the partial and failed days, and the day after the newest done one.
    assert wanted == [today] + [DAY + timedelta(days=n) for n in (3, 4, 6, 9)]
    # A day this process saw done is not read again.
    assert days.days_to_read(
        "apm", "in_gate", today, 7, known={DAY + timedelta(days=6)}
    ) == [today] + [DAY + timedelta(days=n) for n in (3, 4, 9)]
    # A new archive: today and the whole window.
    assert days.days_to_read("apm", "out_gate", today, 2) == [
        today,
        today - timedelta(days=2),
        today - timedelta(days=1),
    ]
