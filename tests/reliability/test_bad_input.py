"""Bad input: each a clear error, raised before anything is written or fetched.

One table drives the library's entry points (names, URLs, timestamps, days,
numbers, database URLs) and another the ``draydog`` command; after each refusal
the test checks that no file was written, no row (picture or run) stored, no
request reached the replica and no browser started. Pictures of another host on
the camera page are ignored and counted (through the real browser), and a
property test feeds random URLs, timestamps and days to the parsers.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modules import cli
from modules.database import models, queries
from modules.downloader import InvalidImageURL, InvalidName, build_image_url
from modules.downloader.discovery import BrowserDiscovery
from modules.downloader.fetch import UnsafeURL
from modules.downloader.selenium_client import DrayDogDownloader
from modules.site.urls import (
    parse_day,
    parse_image_url,
    parse_wall_clock,
    terminal_today,
    validate_name,
)
from modules.replica import ReplicaServer
from modules.replica.page import PageOptions
from tests.reliability.fault_helpers import (  # noqa: F401  (fixtures)
    DAY,
    STREAM,
    TERMINAL,
    cdn_path,
    check_one_row_per_file,
    day_times,
    files_under,
    new_downloader,
    replica,
    replica_server,
    require_browser,
    url_of,
    verify_archive,
)

D = DAY.isoformat()


@dataclass
class Context:
    """What a bad-input case may use: the replica, an archive folder, downloaders."""

    replica: ReplicaServer
    root: Path
    made: list[DrayDogDownloader] = field(default_factory=list)

    def make(self, **overrides: Any) -> DrayDogDownloader:
        downloader = new_downloader(self.replica, self.root, **overrides)
        self.made.append(downloader)
        return downloader

    def dl(self) -> DrayDogDownloader:
        """A well-configured downloader (the bad input is in the call)."""
        return self.make()

    def url(self, stream: str = STREAM) -> str:
        return url_of(self.replica, day_times(DAY, stream)[0], stream)

    def picture_path(self) -> str:
        return cdn_path(day_times()[0]).removeprefix("/cdn")


@pytest.fixture
def ctx(replica: ReplicaServer, tmp_path: Path, sqlite_url: str) -> Iterator[Context]:
    models.configure(sqlite_url, retry_attempts=2, retry_delay=0.01)
    context = Context(replica, tmp_path / "images")
    yield context
    for downloader in context.made:
        downloader.close()


def assert_nothing_written(context: Context, tmp_path: Path) -> None:
    """No file (the database file aside), no row, no request, no browser."""
    written = [path for path in files_under(tmp_path) if ".sqlite3" not in path.name]
    assert written == [], written
    assert queries.count_images() == 0
    assert queries.recent_runs() == []
    assert context.replica.total_requests == 0
    assert all(downloader._discovery is None for downloader in context.made)


@dataclass(frozen=True)
class Bad:
    """One bad input: the call, the error it must raise, and words of its message."""

    call: Callable[[Context], object]
    error: type[BaseException]
    match: str


def _tomorrow() -> str:
    return (terminal_today() + timedelta(days=1)).isoformat()


BAD_NAMES = {
    "dotdot": "..",
    "dotdot-slash": "../etc",
    "slash": "a/b",
    "absolute": "/etc",
    "backslash": "a\\b",
    "dotdot-backslash": "..\\x",
    "space": "in gate",
    "leading-space": " in_gate",
    "nul": "in\x00gate",
    "empty": "",
    "uppercase": "IN_GATE",
    "thumbnail-suffix": "in_gate-thumbnail",
}


def _name_cases() -> dict[str, Bad]:
    cases: dict[str, Bad] = {}
    for label, name in BAD_NAMES.items():

        def entry_points(n: str) -> dict[str, Callable[[Context], object]]:
            return {
                "constructor-terminal": lambda c: c.make(terminal=n),
                "download_images_direct": lambda c: c.dl().download_images_direct(
                    n, [day_times()[0].isoformat()]
                ),
                "download_image": lambda c: c.dl().download_image(c.url(), c.root, n),
                "get_timestamps_for_date": lambda c: c.dl().get_timestamps_for_date(
                    D, n
                ),
                "download_date": lambda c: c.dl().download_date(D, n),
                "download_date_range": lambda c: c.dl().download_date_range(
                    D, D, [STREAM, n]
                ),
            }

        for where, call in entry_points(name).items():
            cases[f"name-{label}-{where}"] = Bad(call, InvalidName, "invalid")
    return cases


URL_CASES: dict[str, Bad] = {
    "url-other-host": Bad(
        lambda c: c.dl().download_image(
            build_image_url(
                c.replica.foreign_cdn_url, TERMINAL, STREAM, day_times()[0]
            ),
            c.root,
            STREAM,
        ),
        UnsafeURL,
        "not the CDN host",
    ),
    "url-other-port": Bad(
        lambda c: c.dl().download_image(
            "http://127.0.0.1:1/cdn" + c.picture_path(), c.root, STREAM
        ),
        UnsafeURL,
        "not the CDN host",
    ),
    "url-file-picture": Bad(
        lambda c: c.dl().download_image(
            "file:///cdn" + c.picture_path(), c.root, STREAM
        ),
        UnsafeURL,
        "only http",
    ),
    "url-file-passwd": Bad(
        lambda c: c.dl().download_image("file:///etc/passwd", c.root, STREAM),
        UnsafeURL,
        "only http",
    ),
    "url-credentials": Bad(
        lambda c: c.dl().download_image(
            c.url().replace("http://", "http://user:secret@"), c.root, STREAM
        ),
        UnsafeURL,
        "credentials",
    ),
    "url-userinfo-trick": Bad(
        lambda c: c.dl().download_image(
            f"http://127.0.0.1:{c.replica.port}@evil.example/cdn" + c.picture_path(),
            c.root,
            STREAM,
        ),
        UnsafeURL,
        "credentials",
    ),
    "url-scheme-relative": Bad(
        lambda c: c.dl().download_image(
            "//evil.example/cdn" + c.picture_path(), c.root, STREAM
        ),
        UnsafeURL,
        "scheme-less",
    ),
    "url-javascript": Bad(
        lambda c: c.dl().download_image("javascript:alert(1)", c.root, STREAM),
        UnsafeURL,
        "only http",
    ),
    "url-empty": Bad(
        lambda c: c.dl().download_image("", c.root, STREAM), UnsafeURL, "only http"
    ),
    "url-other-stream": Bad(
        lambda c: c.dl().download_image(c.url("out_gate"), c.root, STREAM),
        ValueError,
        "stream 'out_gate', not 'in_gate'",
    ),
    "url-not-a-picture": Bad(
        lambda c: c.dl().download_image(
            c.replica.cdn_url + "/../../etc/passwd", c.root, STREAM
        ),
        InvalidImageURL,
        "not a DrayDog picture URL",
    ),
    "url-bad-time": Bad(
        lambda c: c.dl().download_image(
            c.replica.cdn_url + "/apm/2025-02-30/7/2025-02-30T07:00:00-in_gate.jpeg",
            c.root,
            STREAM,
        ),
        InvalidImageURL,
        "bad date or time",
    ),
}


def _direct(values: list[Any], **options: Any) -> Callable[[Context], object]:
    return lambda c: c.dl().download_images_direct(STREAM, values, **options)


TIMESTAMP_CASES: dict[str, Bad] = {
    "timestamp-words": Bad(_direct(["not a time"]), ValueError, "not a timestamp"),
    "timestamp-hour-25": Bad(
        _direct(["2025-09-06T25:00:00"]), ValueError, "not a timestamp"
    ),
    "timestamp-feb-30": Bad(
        _direct(["2025-02-30T10:00:00"]), ValueError, "not a timestamp"
    ),
    "timestamp-empty": Bad(_direct([""]), ValueError, "not a timestamp"),
    "timestamp-zone-name": Bad(
        _direct(["2025-09-06 10:00:00 PST"]), ValueError, "not a timestamp"
    ),
    "timestamp-good-then-bad": Bad(
        _direct([day_times()[0].isoformat(), "garbage"]), ValueError, "'garbage'"
    ),
    "timestamp-number": Bad(_direct([1757149200]), TypeError, "str or datetime"),
    "timestamp-none": Bad(_direct([None]), TypeError, "str or datetime"),
    "timestamp-bytes": Bad(
        _direct([b"2025-09-06T10:00:00"]), TypeError, "str or datetime"
    ),
    "timestamp-out-of-range": Bad(
        _direct(["9999-12-31T23:59:59-12:00"]), ValueError, "out of range"
    ),
    "max-images-negative": Bad(
        _direct([day_times()[0]], max_images=-1), ValueError, "max_images"
    ),
}

DAY_CASES: dict[str, Bad] = {
    "day-feb-30-timestamps": Bad(
        lambda c: c.dl().get_timestamps_for_date("2025-02-30"), ValueError, "not a day"
    ),
    "day-feb-30-download-date": Bad(
        lambda c: c.dl().download_date("2025-02-30"), ValueError, "not a day"
    ),
    "day-feb-30-range": Bad(
        lambda c: c.dl().download_date_range("2025-02-30", "2025-03-02"),
        ValueError,
        "not a day",
    ),
    "day-month-13-range-end": Bad(
        lambda c: c.dl().download_date_range(D, "2025-13-01"), ValueError, "not a day"
    ),
    "day-words": Bad(
        lambda c: c.dl().get_timestamps_for_date("yesterday"), ValueError, "not a day"
    ),
    "day-us-format": Bad(
        lambda c: c.dl().get_timestamps_for_date("09/06/2025"), ValueError, "not a day"
    ),
    "day-empty": Bad(
        lambda c: c.dl().download_date_range("", D), ValueError, "not a day"
    ),
    "day-datetime": Bad(
        lambda c: c.dl().get_timestamps_for_date(datetime(2025, 9, 6, 10)),
        ValueError,
        "not a datetime",
    ),
    "range-reversed": Bad(
        lambda c: c.dl().download_date_range("2025-09-07", D),
        ValueError,
        "reversed range",
    ),
    "range-reversed-checked": Bad(
        lambda c: c.dl().checked_range(D, "2025-09-01"), ValueError, "reversed range"
    ),
    "future-timestamps": Bad(
        lambda c: c.dl().get_timestamps_for_date(_tomorrow()), ValueError, "future"
    ),
    "future-download-date": Bad(
        lambda c: c.dl().download_date(_tomorrow()), ValueError, "future"
    ),
    "future-range-end": Bad(
        lambda c: c.dl().download_date_range(D, _tomorrow()), ValueError, "future"
    ),
    "future-far": Bad(
        lambda c: c.dl().download_date_range("9999-12-30", "9999-12-31"),
        ValueError,
        "future",
    ),
}

GOOD_RECORD = {"filepath": "/archive/a.jpg", "camera_id": STREAM}


def _chunks(size: Any) -> Callable[[Context], object]:
    return lambda c: queries.insert_images([GOOD_RECORD], chunk_size=size)


def _make(**options: Any) -> Callable[[Context], object]:
    return lambda c: c.make(**options)


def _configure(url: str) -> Callable[[Context], object]:
    return lambda c: models.configure(url)


NUMBER_CASES: dict[str, Bad] = {
    **{
        f"chunk-size-{label}": Bad(
            _chunks(value),
            ValueError,
            "chunk_size",
        )
        for label, value in {
            "zero": 0,
            "negative": -1,
            "too-big": 10_001,
            "float": 2.5,
            "string": "10",
            "none": None,
            "bool": True,
        }.items()
    },
    "records-one-bad": Bad(
        lambda c: queries.insert_images(
            [GOOD_RECORD, {"filepath": "", "camera_id": STREAM}]
        ),
        ValueError,
        "filepath",
    ),
    **{
        f"workers-{label}": Bad(_make(max_workers=value), ValueError, "max_workers")
        for label, value in {
            "zero": 0,
            "negative": -1,
            "too-many": 65,
            "float": 2.5,
            "string": "8",
            "bool": True,
        }.items()
    },
    **{
        f"batch-size-{label}": Bad(_make(batch_size=value), ValueError, "batch_size")
        for label, value in {
            "zero": 0,
            "negative": -5,
            "too-big": 10_001,
            "float": 1.5,
        }.items()
    },
    "retries-too-many": Bad(lambda c: c.make(max_retries=21), ValueError, "retries"),
    "retries-negative": Bad(lambda c: c.make(max_retries=-1), ValueError, "retries"),
    "timeout-zero": Bad(lambda c: c.make(timeout=0), ValueError, "timeout"),
    "size-cap-zero": Bad(lambda c: c.make(max_image_bytes=0), ValueError, "bytes"),
    "retry-delay-negative": Bad(
        lambda c: c.make(retry_delay=-1), ValueError, "retry_delay"
    ),
    "timezone-unknown": Bad(
        lambda c: c.make(source_timezone="Mars/Olympus_Mons"),
        ValueError,
        "unknown time zone",
    ),
    "cdn-url-file": Bad(
        lambda c: c.make(cdn_url="file:///srv/cdn"), ValueError, "cdn_url"
    ),
    "cdn-url-credentials": Bad(
        lambda c: c.make(cdn_url="https://u:p@cdn.draydog.com"),
        ValueError,
        "credentials",
    ),
    "app-url-ftp": Bad(lambda c: c.make(app_url="ftp://app"), ValueError, "app_url"),
}

DATABASE_URL_CASES: dict[str, Bad] = {
    f"db-url-{label}": Bad(_configure(url), ValueError, "malformed database URL")
    for label, url in {
        "empty": "",
        "words": "not a url",
        "no-scheme": "://",
        "port-not-a-number": "postgresql://user@host:notaport/db",
        "missing-colon": "sqlite//archive.db",
        "scheme-only": "postgresql",
    }.items()
}

ALL_CASES = {
    **_name_cases(),
    **URL_CASES,
    **TIMESTAMP_CASES,
    **DAY_CASES,
    **NUMBER_CASES,
    **DATABASE_URL_CASES,
}


@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
def test_bad_input_is_refused_with_nothing_written(
    case: Bad, ctx: Context, tmp_path: Path
) -> None:
    database = models.database_url()
    with pytest.raises(case.error, match=re.escape(case.match)):
        case.call(ctx)
    assert models.database_url() == database
    assert_nothing_written(ctx, tmp_path)


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def sigterm_kept() -> Iterator[None]:
    """``cli.main`` installs a SIGTERM handler: give pytest its own back afterwards."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


CLI_CASES: dict[str, tuple[list[str], str]] = {
    "date-feb-30": (["--date", "2025-02-30"], "not a day"),
    "range-reversed": (["--start", "2025-09-07", "--end", D], "reversed range"),
    "date-future": (["--date", "<tomorrow>"], "future"),
    "stream-dotdot": (["--date", D, "--stream", "../x"], "invalid stream"),
    "stream-nul": (["--date", D, "--stream", "in\x00gate"], "invalid stream"),
    "terminal-slash": (["--date", D, "--terminal", "a/b"], "invalid terminal"),
    "workers-zero": (["--date", D, "--workers", "0"], "max_workers"),
    "workers-too-many": (["--date", D, "--workers", "65"], "max_workers"),
    "batch-size-zero": (["--date", D, "--batch-size", "0"], "batch_size"),
    "db-malformed": (["--date", D, "--db", "not a url"], "malformed database URL"),
    "db-port": (
        ["--date", D, "--db", "postgresql://u@h:notaport/db"],
        "malformed database URL",
    ),
    "cdn-file": (["--date", D, "--cdn-url", "file:///etc"], "cdn_url"),
}


@pytest.mark.parametrize(
    ("arguments", "words"), CLI_CASES.values(), ids=CLI_CASES.keys()
)
def test_bad_command_line_is_a_usage_error_with_nothing_written(
    arguments: list[str],
    words: str,
    replica: ReplicaServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sigterm_kept: None,
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    listing = tmp_path / "timestamps.txt"
    listing.write_text(day_times()[0].isoformat() + "\n")
    database = tmp_path / "cli.sqlite3"
    arguments = [a.replace("<tomorrow>", _tomorrow()) for a in arguments]
    defaults = {
        "--dir": str(tmp_path / "images"),
        "--db": f"sqlite:///{database}",
        "--cdn-url": replica.cdn_url,
        "--app-url": replica.app_url,
    }
    for option, value in defaults.items():
        if option not in arguments:
            arguments += [option, value]
    status = cli.main(
        ["download", "--no-browser", "--timestamps-file", str(listing), *arguments]
    )
    captured = capsys.readouterr()
    assert status == cli.EXIT_USAGE, captured
    assert captured.err.startswith("draydog: error: ") and words in captured.err
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1
    assert list(workdir.iterdir()) == []
    assert not (tmp_path / "images").exists() and not database.exists()
    assert replica.total_requests == 0


# --- pictures on another host in the page -------------------------------------------------


@pytest.mark.browser
def test_foreign_images_on_the_page_are_ignored_counted_and_never_fetched(
    replica: ReplicaServer, tmp_path: Path, sqlite_url: str
) -> None:
    chromium, chromedriver = require_browser()
    models.configure(sqlite_url)
    replica.page_options = PageOptions(foreign_images=7, render_delay=(0.0, 0.05))
    times = day_times()
    try:
        with BrowserDiscovery(
            replica.app_url,
            replica.cdn_url,
            TERMINAL,
            timeout=10,
            chromium_path=chromium,
            chromedriver_path=chromedriver,
        ) as discovery:
            result = discovery.timestamps_for_date(DAY, STREAM)
    finally:
        replica.page_options = PageOptions()
    assert result.foreign == 7 and result.unparsed == 0
    assert result.timestamps == [t.isoformat() for t in times]

    replica.reset_counters()
    root = tmp_path / "images"
    with new_downloader(replica, root, max_workers=16) as downloader:
        report = downloader.download_images_direct(STREAM, result.timestamps)
    assert report.ok and report.downloaded == len(times)
    fetched = [record.path for record in replica.request_log]
    assert sorted(fetched) == sorted(cdn_path(t) for t in times)
    assert len(verify_archive(root)) == len(times)
    assert check_one_row_per_file(root) == len(times)


# --- the parsers, fed at random ---------------------------------------------------------------

ZONES = st.sampled_from(
    ["America/Los_Angeles", "UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Asia/Tokyo"]
)
DIGITS = "0123456789"


@st.composite
def picture_urls(draw: st.DrawFn) -> str:
    """URL-shaped strings near the picture grammar: right shapes, wrong values."""
    scheme = draw(
        st.sampled_from(["http://", "https://", "file://", "", "//", "http://u:p@"])
    )
    host = draw(
        st.sampled_from(
            ["cdn.draydog.com", "127.0.0.1:8765", "[::1", "[::1]:99999", ""]
        )
    )
    name = st.one_of(
        st.sampled_from(["apm", "in_gate", "out_gate", "a", "x-y", "..", "A B"]),
        st.text(alphabet="ab_-./%:", max_size=6),
    )
    year = draw(st.text(DIGITS, min_size=4, max_size=4))
    two = st.text(DIGITS, min_size=1, max_size=2)
    day = f"{year}-{draw(two)}-{draw(two)}"
    stamp = draw(
        st.one_of(
            st.builds(
                lambda h, m, s: f"{day}T{h}:{m}:{s}",
                two,
                two,
                two,
            ),
            st.text(DIGITS, min_size=9, max_size=14),
        )
    )
    stamp = stamp.replace(":", draw(st.sampled_from([":", "%3A", "%3a"])))
    thumb = draw(st.sampled_from(["", "-thumbnail"]))
    ext = draw(st.sampled_from([".jpeg", ".jpg", ".png", ""]))
    tail = draw(st.sampled_from(["", "?x=1", "#f", "%zz", "/"]))
    return (
        f"{scheme}{host}/{draw(name)}/{day}/{draw(st.integers(-1, 99))}/"
        f"{stamp}-{draw(name)}{thumb}{ext}{tail}"
    )


@st.composite
def iso_like(draw: st.DrawFn) -> str:
    """Timestamp-shaped strings: the calendar's edges, offsets, separators, fractions."""
    edge = st.sampled_from(["0001-01-01", "9999-12-31", "2025-02-29", "0000-01-01"])
    any_day = st.builds(
        lambda y, m, d: f"{y}-{m:02d}-{d:02d}",
        st.sampled_from(["0001", "1970", "2025", "9999", "10000"]),
        st.integers(0, 13),
        st.integers(0, 32),
    )
    day_ = draw(st.one_of(edge, any_day))
    hour, minute = draw(st.integers(0, 25)), draw(st.integers(0, 61))
    separator = draw(st.sampled_from(["T", " ", "t", "_"]))
    offset = draw(
        st.sampled_from(["", "Z", "+14:00", "-12:00", "+23:59", "-23:59:59", "+25:00"])
    )
    fraction = draw(st.sampled_from(["", ".5", ".123456", ".1234567"]))
    return f"{day_}{separator}{hour:02d}:{minute:02d}:00{fraction}{offset}"


EDGE_INSTANTS = st.one_of(
    st.datetimes(max_value=datetime(1, 1, 2), timezones=st.timezones()),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=st.timezones()),
)
"""Aware datetimes a day from the calendar's ends: the terminal's zone may push them off it."""


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), picture_urls()), ZONES)
def test_parse_image_url_raises_only_invalid_image_url(url: str, zone: str) -> None:
    try:
        ref = parse_image_url(url, zone)
    except InvalidImageURL:
        return
    assert validate_name(ref.terminal) and ref.stream
    assert ref.timestamp.tzinfo is not None and ref.local_time.tzinfo is None
    assert 1970 <= ref.timestamp.year <= 9998


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        st.text(),
        iso_like(),
        st.datetimes(),
        st.datetimes(timezones=st.timezones()),
        EDGE_INSTANTS,
    ),
    ZONES,
)
def test_parse_wall_clock_raises_only_value_error(
    value: str | datetime, zone: str
) -> None:
    try:
        wall = parse_wall_clock(value, zone)
    except ValueError:
        return
    assert isinstance(wall, datetime)
    assert wall.tzinfo is None and wall.microsecond == 0


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.builds(
            lambda y, m, d: f"{y}-{m}-{d}",
            st.text(DIGITS, min_size=1, max_size=5),
            st.text(DIGITS, min_size=1, max_size=3),
            st.text(DIGITS, min_size=1, max_size=3),
        ),
        st.dates(),
        st.datetimes(),
    )
)
def test_parse_day_raises_only_value_error(value: str | date) -> None:
    try:
        day = parse_day(value)
    except ValueError:
        return
    assert type(day) is date
