"""The picture-URL grammar: parsing both forms, building, names, time zones."""

from __future__ import annotations

import logging
import random
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from modules.downloader import (
    DrayDogDownloader,
    InvalidImageURL,
    InvalidName,
    build_image_url,
    parse_image_url,
)
from modules.site.urls import (
    get_zone,
    parse_day,
    parse_wall_clock,
    terminal_today,
    utc_to_wall_clock,
    validate_name,
    wall_clock_to_utc,
)

CDN = "https://cdn.draydog.com"
LA = get_zone("America/Los_Angeles")
UTC = timezone.utc


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# url, terminal, folder date, stream, UTC timestamp, naive local time, thumbnail
PARSE_TABLE: list[tuple[str, str, date, str, datetime, datetime, bool]] = [
    (
        f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg",
        "apm",
        date(2025, 9, 6),
        "in_gate",
        utc(2025, 9, 7, 6, 7, 34),
        datetime(2025, 9, 6, 23, 7, 34),
        False,
    ),
    (
        f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate-thumbnail.jpeg",
        "apm",
        date(2025, 9, 6),
        "in_gate",
        utc(2025, 9, 7, 6, 7, 34),
        datetime(2025, 9, 6, 23, 7, 34),
        True,
    ),
    (  # hour folder without a leading zero, as the site writes it
        f"{CDN}/apm/2025-09-06/7/2025-09-06T07:05:09-out_gate.jpeg",
        "apm",
        date(2025, 9, 6),
        "out_gate",
        utc(2025, 9, 6, 14, 5, 9),
        datetime(2025, 9, 6, 7, 5, 9),
        False,
    ),
    (  # hour folder with a leading zero, as the plan writes it
        f"{CDN}/apm/2025-09-06/07/2025-09-06T07:05:09-out_gate.jpeg",
        "apm",
        date(2025, 9, 6),
        "out_gate",
        utc(2025, 9, 6, 14, 5, 9),
        datetime(2025, 9, 6, 7, 5, 9),
        False,
    ),
    (  # winter: PST is UTC-8
        f"{CDN}/pier_t/2025-01-15/0/2025-01-15T00:00:01-gate-3.jpeg",
        "pier_t",
        date(2025, 1, 15),
        "gate-3",
        utc(2025, 1, 15, 8, 0, 1),
        datetime(2025, 1, 15, 0, 0, 1),
        False,
    ),
    (  # Unix milliseconds (the plan's example)
        f"{CDN}/apm/2024-01-15/10/1705316400000-in_gate.jpeg",
        "apm",
        date(2024, 1, 15),
        "in_gate",
        utc(2024, 1, 15, 11, 0, 0),
        datetime(2024, 1, 15, 3, 0, 0),
        False,
    ),
    (  # Unix milliseconds with a fraction of a second: truncated to the second
        f"{CDN}/apm/2024-01-15/10/1705316400999-in_gate.jpeg",
        "apm",
        date(2024, 1, 15),
        "in_gate",
        utc(2024, 1, 15, 11, 0, 0),
        datetime(2024, 1, 15, 3, 0, 0),
        False,
    ),
    (  # Unix seconds
        f"{CDN}/apm/2024-01-15/11/1705316400-in_gate.jpeg",
        "apm",
        date(2024, 1, 15),
        "in_gate",
        utc(2024, 1, 15, 11, 0, 0),
        datetime(2024, 1, 15, 3, 0, 0),
        False,
    ),
    (  # Unix thumbnail
        f"{CDN}/apm/2024-01-15/11/1705316400-in_gate-thumbnail.jpeg",
        "apm",
        date(2024, 1, 15),
        "in_gate",
        utc(2024, 1, 15, 11, 0, 0),
        datetime(2024, 1, 15, 3, 0, 0),
        True,
    ),
    (  # the number wins over the folders
        f"{CDN}/apm/2020-02-02/3/1705316400-in_gate.jpeg",
        "apm",
        date(2020, 2, 2),
        "in_gate",
        utc(2024, 1, 15, 11, 0, 0),
        datetime(2024, 1, 15, 3, 0, 0),
        False,
    ),
    (  # 10**11 - 1 is still seconds (11 digits)...
        f"{CDN}/apm/2025-01-01/0/99999999999-in_gate.jpeg",
        "apm",
        date(2025, 1, 1),
        "in_gate",
        datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=99_999_999_999),
        utc_to_wall_clock(
            datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=99_999_999_999)
        ),
        False,
    ),
    (  # ...and 10**11 is milliseconds
        f"{CDN}/apm/2025-01-01/0/100000000000-in_gate.jpeg",
        "apm",
        date(2025, 1, 1),
        "in_gate",
        utc(1973, 3, 3, 9, 46, 40),
        datetime(1973, 3, 3, 1, 46, 40),
        False,
    ),
    (  # query string and fragment ignored
        f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg?w=200&x=a.png#top",
        "apm",
        date(2025, 9, 6),
        "in_gate",
        utc(2025, 9, 7, 6, 7, 34),
        datetime(2025, 9, 6, 23, 7, 34),
        False,
    ),
    (  # a fragment alone
        f"{CDN}/apm/2024-01-15/10/1705316400000-in_gate.jpeg#camera-history",
        "apm",
        date(2024, 1, 15),
        "in_gate",
        utc(2024, 1, 15, 11, 0, 0),
        datetime(2024, 1, 15, 3, 0, 0),
        False,
    ),
    (  # .jpg is accepted too, and a path under a prefix (the replica's /cdn)
        "http://127.0.0.1:8765/cdn/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpg",
        "apm",
        date(2025, 9, 6),
        "in_gate",
        utc(2025, 9, 7, 6, 7, 34),
        datetime(2025, 9, 6, 23, 7, 34),
        False,
    ),
    (  # the skipped spring hour: read as if the clock had not moved yet (PST)
        f"{CDN}/apm/2025-03-09/2/2025-03-09T02:30:00-in_gate.jpeg",
        "apm",
        date(2025, 3, 9),
        "in_gate",
        utc(2025, 3, 9, 10, 30, 0),
        datetime(2025, 3, 9, 2, 30, 0),
        False,
    ),
    (  # the repeated autumn hour: its first occurrence (PDT)
        f"{CDN}/apm/2025-11-02/1/2025-11-02T01:30:00-in_gate.jpeg",
        "apm",
        date(2025, 11, 2),
        "in_gate",
        utc(2025, 11, 2, 8, 30, 0),
        datetime(2025, 11, 2, 1, 30, 0),
        False,
    ),
]


@pytest.mark.parametrize(
    "url, terminal, day, stream, timestamp, local_time, thumbnail", PARSE_TABLE
)
def test_parse_image_url_table(
    url: str,
    terminal: str,
    day: date,
    stream: str,
    timestamp: datetime,
    local_time: datetime,
    thumbnail: bool,
) -> None:
    ref = parse_image_url(url)
    assert ref.terminal == terminal
    assert ref.date == day
    assert ref.stream == stream
    assert ref.timestamp == timestamp
    assert ref.timestamp.tzinfo is not None
    assert ref.timestamp.utcoffset() == timedelta(0)
    assert ref.local_time == local_time
    assert ref.local_time.tzinfo is None
    assert ref.is_thumbnail is thumbnail


def test_parse_in_another_source_timezone() -> None:
    url = f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg"
    assert parse_image_url(url, "UTC").timestamp == utc(2025, 9, 6, 23, 7, 34)
    assert parse_image_url(url, "Asia/Tokyo").timestamp == utc(2025, 9, 6, 14, 7, 34)
    # The Unix form is UTC whatever the source zone; only the wall clock follows it.
    unix = f"{CDN}/apm/2024-01-15/10/1705316400-in_gate.jpeg"
    ref = parse_image_url(unix, "Asia/Tokyo")
    assert ref.timestamp == utc(2024, 1, 15, 11, 0, 0)
    assert ref.local_time == datetime(2024, 1, 15, 20, 0, 0)


def test_both_daylight_saving_edges_are_consecutive_in_utc() -> None:
    """Around the edges, successive wall-clock minutes map to sensible UTC instants."""
    before_spring = parse_image_url(
        f"{CDN}/apm/2025-03-09/1/2025-03-09T01:59:59-in_gate.jpeg"
    ).timestamp
    after_spring = parse_image_url(
        f"{CDN}/apm/2025-03-09/3/2025-03-09T03:00:00-in_gate.jpeg"
    ).timestamp
    assert after_spring - before_spring == timedelta(seconds=1)
    before_autumn = parse_image_url(
        f"{CDN}/apm/2025-11-02/0/2025-11-02T00:59:59-in_gate.jpeg"
    ).timestamp
    repeated = parse_image_url(
        f"{CDN}/apm/2025-11-02/1/2025-11-02T01:00:00-in_gate.jpeg"
    ).timestamp
    after_autumn = parse_image_url(
        f"{CDN}/apm/2025-11-02/2/2025-11-02T02:00:00-in_gate.jpeg"
    ).timestamp
    assert repeated - before_autumn == timedelta(seconds=1)
    assert after_autumn - repeated == timedelta(hours=2)


GARBAGE = [
    "",
    "not a url",
    "https://cdn.draydog.com/",
    "https://cdn.draydog.com/apm/2025-09-06/23/",
    f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.png",
    f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34.jpeg",
    f"{CDN}/apm/2025-09-06/23/2025-09-06 23:07:34-in_gate.jpeg",
    f"{CDN}/APM/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg",
    f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-IN_GATE.jpeg",
    f"{CDN}/apm/2025-09-06/24/2025-09-06T23:07:34-in_gate.jpeg",
    f"{CDN}/apm/2025-09-06/123/2025-09-06T23:07:34-in_gate.jpeg",
    f"{CDN}/apm/2025-13-06/23/2025-13-06T23:07:34-in_gate.jpeg",
    f"{CDN}/apm/2025-02-30/23/2025-02-30T23:07:34-in_gate.jpeg",
    f"{CDN}/apm/2025-09-06/23/2025-09-06T25:07:34-in_gate.jpeg",
    f"{CDN}/apm/2025-09-06/23/2025-09-06T23:61:34-in_gate.jpeg",
    f"{CDN}/apm/2025-09-06/23/170531640-in_gate.jpeg",  # 9 digits
    f"{CDN}/apm/2025-09-06/23/17053164000000-in_gate.jpeg",  # 14 digits
    f"{CDN}/apm/2025-09-06/23/0000-01-01T00:00:00-in_gate.jpeg",
    f"{CDN}/apm/1960-01-01/0/1960-01-01T00:00:00-in_gate.jpeg",  # before 1970
    f"{CDN}/apm/9999-12-31/23/9999-12-31T23:00:00-in_gate.jpeg",  # overflows in UTC
    "http://[::1/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg",
    "https://cdn.draydog.com/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg/x",
    # a stream that would itself be the thumbnail marker (found by hypothesis)
    f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34--thumbnail-thumbnail.jpeg",
    f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-x-thumbnail-thumbnail.jpeg",
]


@pytest.mark.parametrize("url", GARBAGE)
def test_garbage_raises_invalid_image_url(url: str) -> None:
    with pytest.raises(InvalidImageURL) as caught:
        parse_image_url(url)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("value", [None, 42, b"https://cdn.draydog.com/x.jpeg"])
def test_non_string_raises_invalid_image_url(value: Any) -> None:
    with pytest.raises(InvalidImageURL):
        parse_image_url(value)


# --- _extract_timestamp_from_url ---------------------------------------------


@pytest.fixture
def plain_downloader() -> DrayDogDownloader:
    return DrayDogDownloader(persist=False)


@pytest.mark.parametrize("url, terminal, day, stream, timestamp, _l, _t", PARSE_TABLE)
def test_extract_timestamp_from_url_matches_the_parser(
    plain_downloader: DrayDogDownloader,
    url: str,
    terminal: str,
    day: date,
    stream: str,
    timestamp: datetime,
    _l: datetime,
    _t: bool,
) -> None:
    found = plain_downloader._extract_timestamp_from_url(url)
    assert found == timestamp
    assert found.utcoffset() == timedelta(0)


def test_extract_timestamp_falls_back_to_now_utc_with_a_warning(
    plain_downloader: DrayDogDownloader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="modules.downloader.selenium_client")
    before = datetime.now(UTC)
    found = plain_downloader._extract_timestamp_from_url("https://example.com/x.png")
    after = datetime.now(UTC)
    assert found.tzinfo is not None and found.utcoffset() == timedelta(0)
    assert before <= found <= after
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "https://example.com/x.png" in warnings[0].getMessage()
    assert "UTC" in warnings[0].getMessage()


def test_extract_timestamp_uses_the_configured_zone() -> None:
    tokyo = DrayDogDownloader(persist=False, source_timezone="Asia/Tokyo")
    url = f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg"
    assert tokyo._extract_timestamp_from_url(url) == utc(2025, 9, 6, 14, 7, 34)
    tokyo.close()


# --- build_image_url ------------------------------------------------------------


def test_build_writes_the_hour_folder_without_a_leading_zero() -> None:
    url = build_image_url(CDN, "apm", "in_gate", datetime(2025, 9, 6, 7, 5, 9))
    assert url == f"{CDN}/apm/2025-09-06/7/2025-09-06T07:05:09-in_gate.jpeg"
    midnight = build_image_url(CDN, "apm", "in_gate", datetime(2025, 9, 6, 0, 0, 1))
    assert "/2025-09-06/0/2025-09-06T00:00:01-in_gate.jpeg" in midnight


def test_build_thumbnail_trailing_slash_and_microseconds() -> None:
    url = build_image_url(
        CDN + "/", "apm", "out_gate", datetime(2025, 9, 6, 23, 7, 34, 999_999), True
    )
    assert url == f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-out_gate-thumbnail.jpeg"


def test_build_converts_aware_timestamps_to_the_wall_clock() -> None:
    aware = utc(2025, 9, 7, 6, 7, 34)
    assert build_image_url(CDN, "apm", "in_gate", aware) == (
        f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg"
    )
    tokyo = aware.astimezone(get_zone("Asia/Tokyo"))
    assert build_image_url(CDN, "apm", "in_gate", tokyo) == (
        f"{CDN}/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg"
    )
    assert build_image_url(
        CDN, "apm", "in_gate", aware, source_timezone="UTC"
    ).endswith("/apm/2025-09-07/6/2025-09-07T06:07:34-in_gate.jpeg")


@pytest.mark.parametrize("terminal, stream", [("../x", "in_gate"), ("apm", "a/b")])
def test_build_refuses_bad_names(terminal: str, stream: str) -> None:
    with pytest.raises(InvalidName):
        build_image_url(CDN, terminal, stream, datetime(2025, 9, 6))


def _year_of_instants(seed: int, count: int) -> list[datetime]:
    rng = random.Random(seed)
    start = utc(2025, 1, 1)
    return [
        start + timedelta(seconds=rng.randrange(366 * 24 * 3600)) for _ in range(count)
    ]


def _in_repeated_hour(moment: datetime, zone: str = "America/Los_Angeles") -> bool:
    """Whether an aware instant is the second occurrence of an autumn wall-clock time."""
    return moment.astimezone(get_zone(zone)).fold == 1


def test_round_trip_of_aware_instants_across_a_year() -> None:
    # Every 7 hours 13 minutes 17 seconds through 2025, plus random instants and the edges.
    step = timedelta(hours=7, minutes=13, seconds=17)
    instants = [utc(2025, 1, 1) + n * step for n in range(1300)]
    instants += _year_of_instants(seed=3, count=1000)
    instants += [utc(2025, 3, 9, 9, 59, 59), utc(2025, 3, 9, 10, 0, 0)]
    instants += [utc(2025, 11, 2, 8, 59, 59), utc(2025, 11, 2, 10, 0, 0)]
    checked = 0
    for instant in instants:
        if _in_repeated_hour(instant):
            continue
        ref = parse_image_url(build_image_url(CDN, "apm", "in_gate", instant))
        assert ref.timestamp == instant, instant
        assert ref.is_thumbnail is False and ref.stream == "in_gate"
        checked += 1
    assert checked > 2200


def test_round_trip_loses_only_the_repeated_hour() -> None:
    second_occurrence = utc(2025, 11, 2, 9, 30, 0)  # 01:30 PST, after 01:30 PDT
    assert _in_repeated_hour(second_occurrence)
    url = build_image_url(CDN, "apm", "in_gate", second_occurrence)
    assert "T01:30:00" in url
    assert parse_image_url(url).timestamp == second_occurrence - timedelta(hours=1)


def test_round_trip_of_naive_wall_clock_times_across_a_year() -> None:
    walls = [
        datetime(2025, 1, 1) + timedelta(minutes=37 * n, seconds=n % 60)
        for n in range(0, 14_300, 3)
    ]
    walls += [datetime(2025, 3, 9, 2, 30), datetime(2025, 11, 2, 1, 30)]
    for wall in walls:
        for thumbnail in (False, True):
            ref = parse_image_url(
                build_image_url(CDN, "apm", "out_gate", wall, thumbnail)
            )
            assert ref.local_time == wall
            assert ref.date == wall.date()
            assert ref.timestamp == wall_clock_to_utc(wall)
            assert ref.is_thumbnail is thumbnail


# --- names, wall clock, days ------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["apm", "in_gate", "out-gate", "gate3", "a", "x_thumbnail", "thumbnail"]
)
def test_validate_name_accepts(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "..",
        "a/b",
        "a\\b",
        "in gate",
        " apm",
        "apm\x00",
        "",
        "APM",
        "In_gate",
        "x-thumbnail",
        "-thumbnail",
        "gate.1",
        "caf\u00e9",
        None,
        7,
    ],
)
def test_validate_name_rejects(name: Any) -> None:
    with pytest.raises(InvalidName) as caught:
        validate_name(name, "stream")
    assert isinstance(caught.value, ValueError)
    assert "stream" in str(caught.value)


def test_parse_wall_clock() -> None:
    wall = datetime(2025, 9, 6, 23, 7, 34)
    assert parse_wall_clock("2025-09-06T23:07:34") == wall
    assert parse_wall_clock(" 2025-09-06T23:07:34\n") == wall
    assert parse_wall_clock("2025-09-06 23:07:34.250") == wall
    assert parse_wall_clock(wall.replace(microsecond=5)) == wall
    assert parse_wall_clock(utc(2025, 9, 7, 6, 7, 34)) == wall
    assert parse_wall_clock("2025-09-07T06:07:34+00:00") == wall
    assert parse_wall_clock("2025-09-06T23:07:34", "UTC") == wall
    assert parse_wall_clock(utc(2025, 9, 7, 6, 7, 34), "UTC") == datetime(
        2025, 9, 7, 6, 7, 34
    )
    assert parse_wall_clock(wall).tzinfo is None


@pytest.mark.parametrize(
    "value", ["", "garbage", "2025-09-06T25:00:00", "06/09/2025", "2025-09-06"]
)
def test_parse_wall_clock_rejects_bad_strings(value: str) -> None:
    with pytest.raises(ValueError, match="not a timestamp"):
        parse_wall_clock(value)


def test_parse_wall_clock_rejects_times_out_of_range_at_the_terminal() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_wall_clock(datetime(1, 1, 1, 3, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="out of range"):
        parse_wall_clock("0001-01-01T00:00:00+14:00")


def test_parse_wall_clock_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        parse_wall_clock(1757200054)  # type: ignore[arg-type]


def test_parse_day() -> None:
    assert parse_day("2025-09-06") == date(2025, 9, 6)
    assert parse_day(" 2025-09-06 ") == date(2025, 9, 6)
    assert parse_day(date(2025, 9, 6)) == date(2025, 9, 6)


@pytest.mark.parametrize(
    "value",
    ["", "2025-9-6x", "2025-02-30", "yesterday", datetime(2025, 9, 6), 20250906],
)
def test_parse_day_rejects(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_day(value)


def test_zones() -> None:
    assert get_zone("UTC") is get_zone("UTC")
    with pytest.raises(ValueError, match="Mars/Olympus"):
        get_zone("Mars/Olympus")
    with pytest.raises(ValueError):
        DrayDogDownloader(source_timezone="Nowhere/Atall")
    aware = utc(2025, 9, 6)
    assert wall_clock_to_utc(aware.astimezone(LA)) == aware
    naive = datetime(2025, 9, 6)
    assert utc_to_wall_clock(naive) is naive
    today = terminal_today()
    assert abs((today - datetime.now(UTC).date()).days) <= 1


# --- properties --------------------------------------------------------------------

NAME = st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True)
URLISH = st.builds(
    lambda scheme, host, terminal, day, hour, stamp, stream, suffix, ext, tail: (
        f"{scheme}{host}/{terminal}/{day}/{hour}/{stamp}-{stream}{suffix}{ext}{tail}"
    ),
    st.sampled_from(["https://", "http://", "", "file://", "ftp://"]),
    st.sampled_from(["cdn.draydog.com", "127.0.0.1:8765/cdn", "[::1", "", "a@b"]),
    st.one_of(NAME, st.text(max_size=8)),
    st.one_of(
        st.from_regex(r"\d{4}-\d{2}-\d{2}", fullmatch=True),
        st.dates().map(str),
        st.text(max_size=10),
    ),
    st.one_of(st.integers(-5, 150).map(str), st.text(max_size=3)),
    st.one_of(
        st.from_regex(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", fullmatch=True),
        st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S")),
        st.integers(0, 10**14).map(str),
        st.from_regex(r"\d{8,15}", fullmatch=True),
        st.text(max_size=20),
    ),
    st.one_of(NAME, st.text(max_size=8)),
    st.sampled_from(["", "-thumbnail", "-thumbnail-thumbnail", "--"]),
    st.sampled_from([".jpeg", ".jpg", ".JPEG", ".png", ""]),
    st.sampled_from(["", "?a=1", "#x", "?%zz", "%0A", "/", "%2F"]),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), URLISH))
def test_parser_only_ever_raises_invalid_image_url(url: str) -> None:
    try:
        ref = parse_image_url(url)
    except InvalidImageURL:
        return
    # What it accepts is a well-formed reference.
    assert ref.timestamp.utcoffset() == timedelta(0)
    assert ref.local_time.tzinfo is None
    validate_name(ref.terminal, "terminal")
    assert ref.stream and not ref.stream.endswith("-thumbnail")


@settings(max_examples=300)
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 12, 31),
        timezones=st.just(UTC),
    ),
    NAME.filter(lambda n: not n.endswith("-thumbnail")),
    st.booleans(),
)
def test_random_aware_instants_round_trip(
    instant: datetime, stream: str, thumbnail: bool
) -> None:
    assume(not _in_repeated_hour(instant))
    ref = parse_image_url(build_image_url(CDN, "apm", stream, instant, thumbnail))
    assert ref.timestamp == instant.replace(microsecond=0)
    assert ref.stream == stream
    assert ref.is_thumbnail is thumbnail


@settings(max_examples=300)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 12, 31)))
def test_random_wall_clock_times_round_trip(wall: datetime) -> None:
    ref = parse_image_url(build_image_url(CDN, "apm", "in_gate", wall))
    assert ref.local_time == wall.replace(microsecond=0)
    assert ref.timestamp == wall_clock_to_utc(wall.replace(microsecond=0))
