"""Daylight saving end to end: the repeated autumn hour keeps both of its hours.

On 2025-11-02 Los Angeles runs 01:00-02:00 twice (PDT, then PST). A zone-less ISO
picture name cannot tell the two apart; the History's order can, and an aware
instant handed in by a caller must never be reduced to its wall-clock time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete

from modules.database import models
from modules.database.models import Image
from modules.downloader import DownloadReport, DrayDogDownloader, PictureOutcome
from modules.downloader.archive import file_name, picture_path, read_picture_path
from modules.downloader.discovery import DiscoveryResult
from modules.downloader.reindex import reindex_archive
from modules.site.urls import (
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
from modules.replica import ReplicaServer, Schedule
from tests.downloader.conftest import (
    STREAM,
    TERMINAL,
    expected_bytes,
    rows_under,
    url_of,
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


# --- the archive's names ------------------------------------------------------------


def test_file_names_say_which_occurrence_and_read_back() -> None:
    root = Path("/archive")
    first, second = utc(2025, 11, 2, 8, 5, 9), utc(2025, 11, 2, 9, 5, 9)
    first_path = picture_path(root, "apm", "in_gate", first, source_timezone=LA)
    second_path = picture_path(root, "apm", "in_gate", second, True, source_timezone=LA)
    assert first_path.name == "in_gate_20251102T010509-0700.jpg"
    assert second_path.name == "in_gate_20251102T010509-0800_thumb.jpg"
    assert first_path.parent == second_path.parent == root / "apm/in_gate/2025-11-02"
    for path, instant in ((first_path, first), (second_path, second)):
        found = read_picture_path(path)
        assert found is not None and found.timestamp(LA) == instant
    # Every other time keeps the layout existing archives have.
    ordinary = picture_path(root, "apm", "in_gate", utc(2025, 9, 7, 6, 7, 34))
    assert ordinary.name == "in_gate_20250906T230734.jpg"
    assert file_name("in_gate", datetime(2025, 11, 2, 2, 5, 9)) == (
        "in_gate_20251102T020509.jpg"
    )
    # A naive wall time says its occurrence by fold.
    assert file_name("in_gate", datetime(2025, 11, 2, 1, 5, 9, fold=1)) == (
        "in_gate_20251102T010509-0800.jpg"
    )


def test_an_offsetless_repeated_hour_name_reads_as_the_first_occurrence() -> None:
    legacy = Path("/archive/apm/in_gate/2025-11-02/in_gate_20251102T010509.jpg")
    found = read_picture_path(legacy)
    assert found is not None and found.utc_offset is None
    assert found.timestamp(LA) == utc(2025, 11, 2, 8, 5, 9)
    assert (
        read_picture_path(legacy.with_name("in_gate_20251102T010509-0799.jpg")) is None
    )


# --- end to end on the replica ------------------------------------------------------


@pytest.fixture
def autumn(replica: ReplicaServer) -> list[datetime]:
    """The replica's autumn day, in capture order (the fixture restores the schedule)."""
    replica.schedule = Schedule(today=date(2025, 11, 10))
    return replica.schedule.timestamps(TERMINAL, STREAM, FALL_BACK)


def _repeated(walls: list[datetime]) -> tuple[list[datetime], list[datetime]]:
    first = [wall for wall in walls if wall.hour == 1 and wall.fold == 0]
    second = [wall for wall in walls if wall.hour == 1 and wall.fold == 1]
    return first, second


def test_aware_timestamps_of_both_occurrences_keep_their_instants(
    autumn: list[datetime], downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    first, second = _repeated(autumn)
    assert len(first) == len(second) == 6
    chosen = [first[0], first[-1], second[0], second[-1]]
    instants = [wall_clock_to_utc(wall, LA) for wall in chosen]
    assert len(set(instants)) == 4 and instants[2] - instants[0] > timedelta(minutes=30)

    report = downloader.download_images_direct(STREAM, instants[::-1])

    assert report.ok and report.downloaded == 4 and report.db_inserted == 4
    rows = sorted(rows_under(tmp_path / "images"), key=lambda row: row.timestamp)
    assert [row.timestamp for row in rows] == sorted(instants)
    assert len({row.filepath for row in rows}) == 4
    by_instant = dict(zip(instants, chosen))
    for row in rows:
        wall = by_instant[row.timestamp]
        offset = "-0700" if wall.fold == 0 else "-0800"
        assert Path(row.filepath).name == f"{STREAM}_{wall:%Y%m%dT%H%M%S}{offset}.jpg"
        assert Path(row.filepath).read_bytes() == expected_bytes(wall)
    # Again: everything is present, nothing is stored or recorded twice.
    again = downloader.download_images_direct(STREAM, instants)
    assert again.already_present == 4 and again.downloaded == again.db_inserted == 0


def test_the_whole_autumn_day_from_its_history_order(
    autumn: list[datetime],
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    tmp_path: Path,
) -> None:
    # What discovery does with the page's ISO thumbnails, in the History's order.
    history = [url_of(replica, wall, thumbnail=True) for wall in autumn]
    refs = [parse_image_url(url, LA) for url in history]
    instants = capture_instants(refs, LA)
    texts = [timestamp_text(instant, LA) for instant in instants]
    assert len(set(texts)) == len(autumn) == 150

    report = downloader.download_images_direct(STREAM, texts)

    assert report.ok and report.downloaded == 150 and report.db_inserted == 150
    rows = rows_under(tmp_path / "images")
    assert sorted(row.timestamp for row in rows) == [
        wall_clock_to_utc(wall, LA) for wall in autumn
    ]
    assert len({Path(row.filepath).name for row in rows}) == 150


def test_download_date_records_the_instant_the_page_timestamp_names(
    autumn: list[datetime],
    replica: ReplicaServer,
    downloader: DrayDogDownloader,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = _repeated(autumn)
    walls = [first[2], second[2]]
    instants = [wall_clock_to_utc(wall, LA) for wall in walls]
    texts = [timestamp_text(instant, LA) for instant in instants]
    page = DiscoveryResult(
        day=FALL_BACK,
        stream=STREAM,
        timestamps=texts,
        thumbnails={
            text: url_of(replica, wall, thumbnail=True)  # ISO form: ambiguous alone
            for text, wall in zip(texts, walls)
        },
    )
    monkeypatch.setattr(DrayDogDownloader, "discover", lambda *args: page)

    report = downloader.download_date(FALL_BACK, STREAM)

    assert report.ok and report.downloaded == 2
    rows = sorted(rows_under(tmp_path / "images"), key=lambda row: row.timestamp)
    assert [row.timestamp for row in rows] == instants
    assert [Path(row.filepath).read_bytes() for row in rows] == [
        expected_bytes(wall) for wall in walls
    ]


def test_reindex_reads_both_occurrences_back_to_their_instants(
    autumn: list[datetime], downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    first, second = _repeated(autumn)
    instants = [wall_clock_to_utc(wall, LA) for wall in first + second]
    downloader.download_images_direct(STREAM, instants)
    root = tmp_path / "images"
    before = {row.filepath: row.timestamp for row in rows_under(root)}
    assert sorted(before.values()) == sorted(instants)
    with models.session_scope() as session:
        session.execute(delete(Image))

    report = reindex_archive(root, source_timezone=LA)

    assert report.inserted == 12
    assert {row.filepath: row.timestamp for row in rows_under(root)} == before


def test_a_first_occurrence_file_stored_without_offset_is_found_present(
    autumn: list[datetime], downloader: DrayDogDownloader, tmp_path: Path
) -> None:
    first, second = _repeated(autumn)
    root = tmp_path / "images"
    legacy = root / TERMINAL / STREAM / "2025-11-02"
    legacy /= f"{STREAM}_{first[0]:%Y%m%dT%H%M%S}.jpg"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(expected_bytes(first[0]))

    report = downloader.download_images_direct(
        STREAM, [wall_clock_to_utc(first[0], LA), wall_clock_to_utc(second[0], LA)]
    )

    assert report.already_present == 1 and report.downloaded == 1
    assert sorted(path.name for path in legacy.parent.iterdir()) == sorted(
        [legacy.name, f"{STREAM}_{second[0]:%Y%m%dT%H%M%S}-0800.jpg"]
    )
    assert sorted(row.timestamp for row in rows_under(root)) == [
        wall_clock_to_utc(first[0], LA),
        wall_clock_to_utc(second[0], LA),
    ]


def test_failures_in_the_repeated_hour_are_reported_apart(tmp_path: Path) -> None:
    report = DownloadReport()
    with DrayDogDownloader(download_dir=tmp_path) as downloader:
        for offset in (-7, -8):
            moment = datetime(
                2025, 11, 2, 1, 5, 9, tzinfo=timezone(timedelta(hours=offset))
            ).astimezone(timezone.utc)
            outcome = PictureOutcome(
                wall_time=datetime(2025, 11, 2, 1, 5, 9),
                status="failed",
                url="http://cdn.invalid/x.jpeg",
                reason="HTTP 503",
                timestamp=moment,
            )
            downloader._count(report, outcome)
    assert [when for when, _ in report.failed] == [
        "2025-11-02T01:05:09-07:00",
        "2025-11-02T01:05:09-08:00",
    ]
