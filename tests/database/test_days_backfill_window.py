"""days_to_read: a day of the backfill window never recorded is read, however new the
newest done day (a fresh install whose first run was ``download --date yesterday``)."""

from __future__ import annotations

from datetime import date, timedelta

from modules.database import days

TODAY = date(2025, 9, 16)


def _day(back: int) -> date:
    return TODAY - timedelta(days=back)


def _record(stream: str, back: int, status: str) -> None:
    days.record_day("apm", stream, _day(back), status=status, listed=1, stored=1)


def test_yesterday_done_on_a_fresh_archive_leaves_the_rest_of_the_window_to_read(
    database: str,
) -> None:
    _record("in_gate", 1, "complete")  # draydog download --date <yesterday>
    wanted = days.days_to_read("apm", "in_gate", TODAY, backfill_days=7)
    assert wanted == [TODAY] + [_day(n) for n in (7, 6, 5, 4, 3, 2)]
    # Once they are done, only today is left.
    for back in range(2, 8):
        _record("in_gate", back, "empty" if back == 4 else "complete")
    assert days.days_to_read("apm", "in_gate", TODAY, 7) == [TODAY]


def test_every_day_of_the_window_not_done_is_read_whatever_its_record(
    database: str,
) -> None:
    recorded = {9: "partial", 6: "complete", 5: "partial", 4: "failed", 2: "empty"}
    for back, status in recorded.items():
        _record("in_gate", back, status)
    # Window: 7 back to yesterday. Never recorded: 7, 3, 1; not done: 5, 4. Day 9 is
    # older than the window and than the newest done day: the site has let it go.
    assert days.days_to_read("apm", "in_gate", TODAY, 7) == [TODAY] + [
        _day(n) for n in (7, 5, 4, 3, 1)
    ]
    # Days this process saw done count as done.
    assert days.days_to_read("apm", "in_gate", TODAY, 7, known={_day(7), _day(4)}) == [
        TODAY
    ] + [_day(n) for n in (5, 3, 1)]
    # Another stream's records are not this one's.
    assert days.days_to_read("apm", "out_gate", TODAY, 2) == [TODAY, _day(2), _day(1)]


def test_a_newest_done_day_older_than_the_window_reads_every_day_since(
    database: str,
) -> None:
    _record("in_gate", 12, "complete")
    _record("in_gate", 10, "complete")
    _record("in_gate", 3, "complete")
    # Older than the window (3 back): every day after the newest done one older
    # than the window is read, as before; the window's own done day is not.
    _record("out_gate", 10, "complete")
    assert days.days_to_read("apm", "out_gate", TODAY, 3) == [TODAY] + [
        _day(n) for n in (9, 8, 7, 6, 5, 4, 3, 2, 1)
    ]
    # in_gate's newest done day is in the window: the window's other days, nothing
    # older (day 11 lies between two done days, outside the window).
    assert days.days_to_read("apm", "in_gate", TODAY, 4) == [TODAY] + [
        _day(n) for n in (4, 2, 1)
    ]
    # backfill_days 0: no window; the days since the newest done one.
    assert days.days_to_read("apm", "in_gate", TODAY, 0) == [TODAY, _day(2), _day(1)]
