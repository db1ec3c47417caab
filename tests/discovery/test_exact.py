"""Issue 8: discovery is exact on the camera page built on the real widget.

Real headless Chromium against the replica's page on Vue 2.7 and Element UI 2.15
(its picker's popper and transitions, ``el-image``, ``v-loading``, ``el-empty``),
with the fault knobs of the replica: each test could fail on a discovery that
takes a list on timing alone, misses a pick, or loses a picture behind a thumbnail.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
from selenium.common.exceptions import ElementClickInterceptedException
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from modules.downloader.discovery import (
    BrowserDiscovery,
    DayNotAvailable,
    DiscoveryError,
    DiscoveryResult,
    PageUnreachable,
)
from modules.site.urls import timestamp_text, wall_clock_to_utc
from modules.replica.schedule import Schedule
from modules.replica.server import ReplicaServer
from tests.discovery.conftest import EMPTY_DAY, TERMINAL, TIMEOUT, expected

pytestmark = pytest.mark.browser

ZONE = "America/Los_Angeles"
DISCOVERY_LOGGER = "modules.downloader.discovery"


def _failed_reads(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The discovery's warnings of a read that failed (a wasted timeout, a restart)."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == DISCOVERY_LOGGER and record.levelno >= logging.WARNING
    ]


def _session(discovery: BrowserDiscovery) -> str:
    assert discovery.driver is not None
    return str(discovery.driver.session_id)


def _warm(discovery: BrowserDiscovery, stream: str = "in_gate") -> str:
    """Start the shared browser (if not yet) on a known day; its session id."""
    day = date(2025, 9, 1)
    assert discovery.timestamps_for_date(day, stream).timestamps == expected(
        day, stream
    )
    return _session(discovery)


# --- picks -----------------------------------------------------------------------

PICKS = [
    (date(2025, 9, 6), "in_gate"),
    (date(2024, 12, 31), "out_gate"),
    (date(2025, 9, 19), "in_gate"),
    (date(2024, 6, 1), "out_gate"),
    (date(2025, 3, 15), "in_gate"),
    (date(2024, 7, 4), "out_gate"),
    (date(2025, 1, 1), "in_gate"),
    (date(2025, 8, 31), "out_gate"),
    (date(2024, 11, 30), "in_gate"),
    (date(2025, 6, 15), "out_gate"),
    (date(2025, 2, 28), "in_gate"),
    (date(2024, 10, 10), "out_gate"),
]
"""Twelve picks, each on the page just reopened for the other stream (the pick the
issue saw fail most) and months or years away from the last."""


def test_many_picks_in_a_row_alternating_streams_are_all_exact(
    discovery: BrowserDiscovery, caplog: pytest.LogCaptureFixture
) -> None:
    session = _warm(discovery)
    caplog.set_level(logging.INFO, logger=DISCOVERY_LOGGER)
    for day, stream in PICKS:
        result = discovery.timestamps_for_date(day, stream)
        assert (result.day, result.stream) == (day, stream)
        assert result.timestamps == expected(day, stream), (day, stream)
        assert (result.foreign, result.unparsed, result.missing) == (0, 0, 0)
    assert _failed_reads(caplog) == []
    assert _session(discovery) == session  # never restarted


def test_quick_answers_on_one_page_pick_each_day(
    discovery: BrowserDiscovery,
    page_options: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A page that answers in less than the picker panel's closing transition: the
    # next pick must open the panel anew, not use the one still fading out.
    page_options(render_delay=(0.0, 0.02), image_stagger=0.0)
    session = _warm(discovery)
    caplog.set_level(logging.INFO, logger=DISCOVERY_LOGGER)
    for day in (date(2025, 9, 2), date(2025, 9, 3), date(2025, 5, 3), date(2025, 5, 4)):
        assert discovery.timestamps_for_date(day, "in_gate").timestamps == expected(day)
    assert _failed_reads(caplog) == []
    assert _session(discovery) == session


def test_a_pick_that_lands_on_another_cell_is_picked_again(
    discovery: BrowserDiscovery,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = _warm(discovery)
    browser = discovery._browser
    day = date(2025, 8, 20)
    neighbour = day - timedelta(days=7)  # the cell one row up, as the issue saw
    clicked: list[date] = []
    click_day = BrowserDiscovery._click_day

    def lands_a_row_up_once(
        self: BrowserDiscovery, driver: WebDriver, wanted: date
    ) -> float:
        target = neighbour if not clicked else wanted
        clicked.append(target)
        return click_day(self, driver, target)

    monkeypatch.setattr(BrowserDiscovery, "_click_day", lands_a_row_up_once)
    caplog.set_level(logging.INFO, logger=DISCOVERY_LOGGER)
    result = discovery.timestamps_for_date(day, "in_gate")
    assert clicked == [neighbour, day]
    assert result.timestamps == expected(day)
    assert result.timestamps != expected(neighbour)
    assert _failed_reads(caplog) == []  # retried within the read, no timeout
    assert discovery._browser is browser and _session(discovery) == session


_OVERLAY_JS = """
const cover = document.createElement('div');
cover.id = 'test-overlay';
cover.style.cssText = 'position:fixed;left:0;top:0;width:100vw;height:100vh;z-index:99999;'
  + 'background:rgba(0,0,0,0.01)';
document.body.appendChild(cover);
"""


def test_an_intercepted_click_is_retried_in_the_same_browser(
    discovery: BrowserDiscovery,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = _warm(discovery)
    browser = discovery._browser
    day = date(2025, 7, 22)
    attempts: list[str] = []
    wait_still = BrowserDiscovery._wait_still
    click_day = BrowserDiscovery._click_day

    def covered_once(
        self: BrowserDiscovery, driver: WebDriver, panel: WebElement
    ) -> None:
        wait_still(self, driver, panel)
        if not attempts:  # something covers the panel just as the cell is clicked
            driver.execute_script(_OVERLAY_JS)

    def recording(self: BrowserDiscovery, driver: WebDriver, wanted: date) -> float:
        try:
            mark = click_day(self, driver, wanted)
        except Exception as exc:
            attempts.append(type(exc).__name__)
            raise
        finally:
            driver.execute_script(
                "const c = document.getElementById('test-overlay'); if (c) c.remove();"
            )
        attempts.append("clicked")
        return mark

    monkeypatch.setattr(BrowserDiscovery, "_wait_still", covered_once)
    monkeypatch.setattr(BrowserDiscovery, "_click_day", recording)
    caplog.set_level(logging.INFO, logger=DISCOVERY_LOGGER)
    result = discovery.timestamps_for_date(day, "in_gate")
    assert attempts == [ElementClickInterceptedException.__name__, "clicked"]
    assert result.timestamps == expected(day)
    assert _failed_reads(caplog) == []
    assert discovery._browser is browser and _session(discovery) == session


# --- lists taken on evidence -----------------------------------------------------


def test_a_slow_answer_without_a_loading_mask_after_an_empty_day(
    widget_page: None,
    new_discovery: Callable[..., BrowserDiscovery],
    page_options: Callable[..., None],
) -> None:
    # The page shows "No Data" for the empty day; the next day's History arrives
    # 4 s after the pick and nothing on the page says it is coming.
    page_options(loading_mask=False)
    unmasked = new_discovery()
    empty = unmasked.timestamps_for_date(EMPTY_DAY, "in_gate")
    assert empty.timestamps == [] and empty.confirmed_empty
    page_options(loading_mask=False, history_delay=4.0)
    day = EMPTY_DAY - timedelta(days=2)
    started = time.monotonic()
    result = unmasked.timestamps_for_date(day, "in_gate")
    assert time.monotonic() - started >= 4.0  # the answer really was that late
    assert result.timestamps == expected(day)
    assert len(result.timestamps) == 144 and not result.confirmed_empty
    assert unmasked.driver is not None
    masks = "return document.querySelectorAll('.el-loading-mask').length"
    assert unmasked.driver.execute_script(masks) == 0  # no mask ever shown


def test_a_history_request_that_fails_once_is_read_again(
    discovery: BrowserDiscovery, history_failures: ReplicaServer
) -> None:
    _warm(discovery)
    day = date(2025, 8, 10)
    history_failures.history_failures = 1  # the page shows "No Data" for the pick
    result = discovery.timestamps_for_date(day, "in_gate")
    assert history_failures.history_failures == 0  # the failure did happen
    assert result.timestamps == expected(day)
    assert not result.confirmed_empty


def test_an_empty_day_whose_first_request_fails_is_still_confirmed(
    discovery: BrowserDiscovery, history_failures: ReplicaServer
) -> None:
    _warm(discovery)
    history_failures.history_failures = 1
    result = discovery.timestamps_for_date(EMPTY_DAY, "in_gate")
    assert history_failures.history_failures == 0
    assert result.timestamps == [] and result.missing == 0
    assert result.reads >= 2 and result.confirmed_empty


@pytest.mark.parametrize("day", [date(2025, 8, 11), EMPTY_DAY], ids=["day", "empty"])
def test_a_day_whose_history_fails_on_every_read_is_an_error(
    discovery: BrowserDiscovery, history_failures: ReplicaServer, day: date
) -> None:
    _warm(discovery)
    history_failures.history_failures = 10**6
    with pytest.raises(DiscoveryError, match="failed") as raised:
        discovery.timestamps_for_date(day, "in_gate")
    assert not isinstance(raised.value, (PageUnreachable, DayNotAvailable))
    history_failures.history_failures = 0
    # The page is usable again afterwards.
    assert discovery.timestamps_for_date(day, "in_gate").timestamps == expected(day)


def test_a_confirmed_empty_day_was_read_twice(discovery: BrowserDiscovery) -> None:
    full = discovery.timestamps_for_date(EMPTY_DAY - timedelta(days=1), "out_gate")
    assert full.timestamps and not full.confirmed_empty
    empty = discovery.timestamps_for_date(EMPTY_DAY, "out_gate")
    assert empty.timestamps == [] and empty.missing == 0
    assert empty.reads >= 2 and empty.confirmed_empty


def test_a_history_in_two_batches_is_read_whole(
    discovery: BrowserDiscovery,
    page_options: Callable[..., None],
    replica: ReplicaServer,
) -> None:
    page_options(batches=2)
    for day in (date(2025, 4, 7), date(2025, 4, 8)):
        result = discovery.timestamps_for_date(day, "in_gate")
        assert result.timestamps == expected(day)
        assert len(result.timestamps) == 144


def test_a_history_in_two_batches_without_a_loading_mask_is_read_whole(
    widget_page: None,
    new_discovery: Callable[..., BrowserDiscovery],
    page_options: Callable[..., None],
) -> None:
    # Between the two batches the page shows half the day with nothing in flight
    # for a moment (the second answer waits for its render delay).
    page_options(batches=2, loading_mask=False)
    unmasked = new_discovery()
    for day in (date(2025, 4, 9), date(2025, 4, 10), date(2025, 4, 11)):
        result = unmasked.timestamps_for_date(day, "in_gate")
        assert result.timestamps == expected(day)
        assert len(result.timestamps) == 144


# --- pictures behind thumbnails ----------------------------------------------------


def test_thumbnails_that_fail_to_load_are_still_listed(
    discovery: BrowserDiscovery, faults: Callable[..., None]
) -> None:
    day = date(2025, 8, 12)
    gone = expected(day)[20:25]
    faults(missing_thumbnail=frozenset(gone))
    result = discovery.timestamps_for_date(day, "in_gate")
    assert result.timestamps == expected(day)
    assert set(gone) <= set(result.timestamps)
    assert result.missing == 0
    # The page's own URLs: the thumbnails it failed to load are named all the same.
    assert all(result.thumbnails[stamp].endswith("-thumbnail.jpeg") for stamp in gone)
    assert discovery.driver is not None
    shown_failed = discovery.driver.execute_script(
        "return document.querySelectorAll('.history-list .el-image__error').length"
    )
    assert shown_failed >= len(gone)  # they did fail in the page


def test_fallback_page_counts_failed_thumbnails_missing(
    new_discovery: Callable[..., BrowserDiscovery],
    page_options: Callable[..., None],
    faults: Callable[..., None],
) -> None:
    # The hand-written page has no Vue data: a thumbnail that fails to load hides
    # its URL, so its picture is counted missing (and reported), never dropped.
    page_options(widget=False)
    day = date(2025, 8, 13)
    gone = expected(day)[20:25]
    faults(missing_thumbnail=frozenset(gone))
    fallback = new_discovery()
    result = fallback.timestamps_for_date(day, "in_gate")
    assert result.missing == len(gone)
    assert result.timestamps == [stamp for stamp in expected(day) if stamp not in gone]


def test_lazy_images_in_a_scrolling_container_are_all_listed(
    discovery: BrowserDiscovery, page_options: Callable[..., None]
) -> None:
    page_options(lazy=True)
    day = date(2025, 7, 5)
    result = discovery.timestamps_for_date(day, "in_gate")
    assert result.timestamps == expected(day)
    assert discovery.driver is not None
    lazy = discovery.driver.execute_script(
        "const items = document.querySelectorAll('.history-list .el-image');"
        "return [!!document.querySelector('.history-scroll.is-lazy'),"
        " Array.from(items).every(item => item.__vue__.lazy === true), items.length];"
    )
    assert lazy == [True, True, 144]


# --- time -------------------------------------------------------------------------

DST_SCHEDULE = Schedule(today=date(2025, 11, 10), first_day=date(2025, 3, 1))


@pytest.fixture(scope="module")
def dst_replica() -> Iterator[ReplicaServer]:
    """A replica whose today is after the autumn change of 2025."""
    with ReplicaServer(DST_SCHEDULE) as server:
        yield server


def _instants(result: DiscoveryResult) -> list[datetime]:
    instants = []
    for stamp in result.timestamps:
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None:
            moment = wall_clock_to_utc(moment, ZONE)
        instants.append(moment.astimezone(timezone.utc))
    return instants


def test_the_repeated_autumn_hour_has_both_occurrences(
    widget_page: None,
    dst_replica: ReplicaServer,
    new_discovery: Callable[..., BrowserDiscovery],
) -> None:
    day = date(2025, 11, 2)
    captures = DST_SCHEDULE.timestamps(TERMINAL, "in_gate", day)
    assert len(captures) == 150
    dst = new_discovery(server=dst_replica)
    result = dst.timestamps_for_date(day, "in_gate")
    assert result.timestamps == [
        timestamp_text(wall_clock_to_utc(wall, ZONE), ZONE) for wall in captures
    ]
    instants = _instants(result)
    assert len(set(instants)) == 150 and instants == sorted(instants)
    first = [s for s in result.timestamps if "T01:" in s and s.endswith("-07:00")]
    second = [s for s in result.timestamps if "T01:" in s and s.endswith("-08:00")]
    assert (
        first
        and second
        and len(first) + len(second) == sum(wall.hour == 1 for wall in captures)
    )
    # The second hour's pictures are an hour after the first hour's.
    assert min(_instants_of(second)) > max(_instants_of(first))
    # The spring day has its 23 hours.
    spring = date(2025, 3, 9)
    assert dst.timestamps_for_date(spring, "in_gate").timestamps == [
        wall.isoformat()
        for wall in DST_SCHEDULE.timestamps(TERMINAL, "in_gate", spring)
    ]


def _instants_of(stamps: list[str]) -> list[datetime]:
    return [datetime.fromisoformat(s).astimezone(timezone.utc) for s in stamps]


# --- pages that cannot be read -----------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("site", "seen"),
    [
        ("refused", "ERR_CONNECTION_REFUSED"),
        ("http://draydog.invalid", "ERR_NAME_NOT_RESOLVED"),  # RFC 6761: never resolves
    ],
)
def test_an_unreachable_page_fails_at_once(
    new_discovery: Callable[..., BrowserDiscovery], site: str, seen: str
) -> None:
    if site == "refused":
        site = f"http://127.0.0.1:{_closed_port()}"
    unreachable = new_discovery(app_url=site)
    started = time.monotonic()
    with pytest.raises(PageUnreachable, match=seen):
        unreachable.timestamps_for_date(date(2025, 9, 6), "in_gate")
    assert time.monotonic() - started < TIMEOUT / 2  # not the whole timeout


def test_an_http_error_page_fails_at_once(
    replica: ReplicaServer, new_discovery: Callable[..., BrowserDiscovery]
) -> None:
    not_found = new_discovery(app_url=f"{replica.app_url}/no-such-site")
    started = time.monotonic()
    with pytest.raises(PageUnreachable, match="HTTP 404"):
        not_found.timestamps_for_date(date(2025, 9, 6), "in_gate")
    assert time.monotonic() - started < TIMEOUT / 2
