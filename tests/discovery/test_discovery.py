"""BrowserDiscovery against the replica in real headless Chromium (no mocks on the main paths)."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.selenium_manager import SeleniumManager

from modules.downloader.browser import COMMAND_MARGIN_SECONDS
from modules.downloader.discovery import (
    BrowserDiscovery,
    BrowserUnavailable,
    DayNotAvailable,
    DiscoveryError,
    _header_month,
    _year_clicks,
)
from modules.downloader.history_ready import NO_REACTION_SECONDS
from modules.downloader.urls import get_zone
from modules.replica.server import ReplicaServer
from tests.discovery.conftest import (
    EMPTY_DAY,
    FIRST_DAY,
    TERMINAL,
    TIMEOUT,
    TODAY,
    browser_paths,
    expected,
)

browser = pytest.mark.browser


@browser
def test_day_in_the_current_month(discovery: BrowserDiscovery) -> None:
    result = discovery.timestamps_for_date(date(2025, 9, 6), "in_gate")
    assert result.timestamps == expected(date(2025, 9, 6))
    assert len(result.timestamps) == 144
    assert (result.foreign, result.unparsed, result.missing) == (0, 0, 0)


@browser
def test_day_several_months_back(discovery: BrowserDiscovery) -> None:
    result = discovery.timestamps_for_date("2025-03-03", "in_gate")
    assert result.timestamps == expected(date(2025, 3, 3))


@browser
def test_day_in_the_previous_year_on_another_stream(
    discovery: BrowserDiscovery,
) -> None:
    result = discovery.timestamps_for_date(date(2024, 12, 30), "out_gate")
    assert result.timestamps == expected(date(2024, 12, 30), "out_gate")
    assert result.timestamps != expected(date(2024, 12, 30), "in_gate")


@browser
def test_today_twice_reloads_for_a_current_list(discovery: BrowserDiscovery) -> None:
    # Today is the page's default day: the second call must not reuse the first list.
    assert discovery.timestamps_for_date(TODAY, "in_gate").timestamps == expected(TODAY)
    assert discovery.timestamps_for_date(TODAY, "in_gate").timestamps == expected(TODAY)


@browser
def test_empty_day_returns_quickly(discovery: BrowserDiscovery) -> None:
    # Leave a full list shown: the empty day must replace it.
    discovery.timestamps_for_date(date(2025, 9, 13), "in_gate")
    started = time.monotonic()
    result = discovery.timestamps_for_date(EMPTY_DAY, "in_gate")
    assert result.timestamps == []
    assert time.monotonic() - started < TIMEOUT / 4


@browser
def test_empty_day_on_a_new_page_is_confirmed(discovery: BrowserDiscovery) -> None:
    # Another stream opens a new page: its own first load (today) may still answer,
    # so an empty list is held before it is believed.
    started = time.monotonic()
    assert discovery.timestamps_for_date(EMPTY_DAY, "out_gate").timestamps == []
    assert time.monotonic() - started >= NO_REACTION_SECONDS
    day = EMPTY_DAY - timedelta(days=1)
    assert discovery.timestamps_for_date(day, "out_gate").timestamps == expected(
        day, "out_gate"
    )


@browser
def test_live_pictures_are_not_mixed_into_history(discovery: BrowserDiscovery) -> None:
    yesterday = TODAY - timedelta(days=1)
    result = discovery.timestamps_for_date(yesterday, "in_gate")
    assert result.timestamps == expected(yesterday)
    assert discovery.driver is not None
    live = discovery.driver.execute_script(
        "return Array.from(document.querySelectorAll('.live-section img.el-image__inner'),"
        " img => img.src);"
    )
    assert len(live) == 4 and all(TODAY.isoformat() in src for src in live)


@browser
def test_slow_rerender_is_waited_for(
    discovery: BrowserDiscovery, page_options: Callable[..., None]
) -> None:
    page_options(render_delay=(1.5, 2.0))
    for day in (date(2025, 9, 2), date(2025, 9, 3)):
        started = time.monotonic()
        assert discovery.timestamps_for_date(day, "in_gate").timestamps == expected(day)
        assert time.monotonic() - started >= 1.5


@browser
def test_foreign_pictures_are_ignored_and_counted(
    discovery: BrowserDiscovery, page_options: Callable[..., None]
) -> None:
    page_options(foreign_images=5)
    result = discovery.timestamps_for_date(date(2025, 8, 20), "in_gate")
    assert result.timestamps == expected(date(2025, 8, 20))
    assert (result.foreign, result.unparsed, result.missing) == (5, 0, 0)


@browser
def test_pictures_that_fail_to_load_are_counted_missing(
    discovery: BrowserDiscovery, faults: Callable[..., None]
) -> None:
    day = date(2025, 8, 21)  # not loaded before: the browser caches thumbnails
    gone = expected(day)[10:13]
    faults(missing=frozenset(gone))
    result = discovery.timestamps_for_date(day, "in_gate")
    assert result.missing == 3
    assert result.timestamps == [stamp for stamp in expected(day) if stamp not in gone]


@browser
def test_lazy_pictures_are_scrolled_into_view(
    discovery: BrowserDiscovery, page_options: Callable[..., None]
) -> None:
    page_options(lazy=True)
    result = discovery.timestamps_for_date(date(2025, 7, 4), "in_gate")
    assert result.timestamps == expected(date(2025, 7, 4))
    assert discovery.driver is not None
    assert discovery.driver.execute_script("return window.scrollY") > 0


@browser
def test_days_the_page_does_not_offer_raise(discovery: BrowserDiscovery) -> None:
    after_the_replicas_today = TODAY + timedelta(days=3)  # a disabled cell
    with pytest.raises(DayNotAvailable):
        discovery.timestamps_for_date(after_the_replicas_today, "in_gate")
    with pytest.raises(DayNotAvailable):
        discovery.timestamps_for_date(FIRST_DAY - timedelta(days=1), "in_gate")
    real_today = datetime.now(get_zone("America/Los_Angeles")).date()
    with pytest.raises(DayNotAvailable, match="future"):
        discovery.timestamps_for_date(real_today + timedelta(days=1), "in_gate")
    # The page is usable again afterwards.
    result = discovery.timestamps_for_date(FIRST_DAY, "in_gate")
    assert result.timestamps == expected(FIRST_DAY)


@browser
def test_unknown_camera_fails_fast(discovery: BrowserDiscovery) -> None:
    started = time.monotonic()
    with pytest.raises(DiscoveryError, match="shows an error"):
        discovery.timestamps_for_date(date(2025, 9, 6), "side_gate")
    assert time.monotonic() - started < TIMEOUT / 4


@browser
def test_older_page_form_with_day_buttons(
    new_discovery: Callable[..., BrowserDiscovery], page_options: Callable[..., None]
) -> None:
    page_options(legacy=True, legacy_days=14)
    legacy = new_discovery()
    for day in (TODAY - timedelta(days=2), TODAY - timedelta(days=13)):
        assert legacy.timestamps_for_date(day, "in_gate").timestamps == expected(day)
    assert legacy.timestamps_for_date(EMPTY_DAY, "in_gate").timestamps == []
    with pytest.raises(DayNotAvailable, match="Sat, Sep 6"):
        legacy.timestamps_for_date(date(2025, 9, 6), "in_gate")


@browser
def test_crashed_browser_raises_then_restarts(
    new_discovery: Callable[..., BrowserDiscovery],
    page_options: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_selenium_manager(*args: object) -> None:
        raise AssertionError("Selenium Manager must not run")

    monkeypatch.setattr(SeleniumManager, "binary_paths", no_selenium_manager)
    # A fast page: the page is not the point here.
    page_options(render_delay=(0.0, 0.05), image_stagger=0.0)
    crashing = new_discovery(timeout=5.0)
    day = date(2025, 9, 12)
    assert crashing.timestamps_for_date(day, "in_gate").timestamps == expected(day)

    # chromedriver killed: its Chromium is orphaned and must be cleaned up too.
    browser_ = crashing._browser
    assert browser_ is not None and browser_.service.process is not None
    os.kill(browser_.service.process.pid, signal.SIGKILL)
    with pytest.raises(DiscoveryError, match="new one starts"):
        crashing.timestamps_for_date(day, "in_gate")
    assert not Path(browser_.profile).exists()
    assert not _processes_with(browser_.profile)
    assert crashing.timestamps_for_date(day, "in_gate").timestamps == expected(day)

    # The session quit underneath.
    assert crashing.driver is not None
    crashing.driver.quit()
    with pytest.raises(DiscoveryError):
        crashing.timestamps_for_date(day, "in_gate")
    assert crashing.timestamps_for_date(day, "in_gate").timestamps == expected(day)

    # A hung page: chromedriver's own timeout means a broken browser, not a slow page.
    assert crashing.driver is not None
    crashing.driver.execute_script("setTimeout(() => { for (;;) {} }, 200);")
    started = time.monotonic()
    with pytest.raises(DiscoveryError, match="new one starts"):
        # Another day: the same one would reload the page and so escape the hang.
        crashing.timestamps_for_date(day - timedelta(days=1), "in_gate")
    # Chromedriver's renderer timeout, or else the client's command timeout, then quit.
    assert time.monotonic() - started < 5.0 + COMMAND_MARGIN_SECONDS + 10.0
    assert crashing.timestamps_for_date(day, "in_gate").timestamps == expected(day)


def _processes_with(profile: str) -> list[str]:
    marker = f"--user-data-dir={profile}".encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().split(b"\0"):
                found.append(cmdline.parent.name)
        except OSError:
            continue
    return found


def test_missing_browser_raises_browser_unavailable(
    replica: ReplicaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRAYDOG_CHROMIUM", raising=False)
    missing = BrowserDiscovery(
        replica.app_url,
        replica.cdn_url,
        TERMINAL,
        chromium_path="/nonexistent/chromium",
    )
    with pytest.raises(
        BrowserUnavailable, match="apt-get install chromium chromium-driver"
    ):
        missing.timestamps_for_date(date(2025, 9, 6))
    assert missing.driver is None
    monkeypatch.setenv("DRAYDOG_CHROMEDRIVER", "/nonexistent/chromedriver")
    with pytest.raises(BrowserUnavailable, match="chromedriver"):
        BrowserDiscovery(
            replica.app_url, replica.cdn_url, TERMINAL
        ).timestamps_for_date(date(2025, 9, 6))


@browser
def test_a_browser_that_does_not_start_is_unavailable(replica: ReplicaServer) -> None:
    _, chromedriver = browser_paths()
    profiles = set(Path(tempfile.gettempdir()).glob("draydog-chromium-*"))
    broken = BrowserDiscovery(
        replica.app_url,
        replica.cdn_url,
        TERMINAL,
        chromium_path="/bin/false",
        chromedriver_path=chromedriver,
    )
    with pytest.raises(BrowserUnavailable, match="could not start /bin/false"):
        broken.timestamps_for_date(date(2025, 9, 6))
    assert set(Path(tempfile.gettempdir()).glob("draydog-chromium-*")) <= profiles


def test_bad_arguments_raise_before_any_browser(replica: ReplicaServer) -> None:
    unstarted = BrowserDiscovery(replica.app_url, replica.cdn_url, TERMINAL)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        unstarted.timestamps_for_date("6 Sep 2025")
    with pytest.raises(ValueError, match="stream"):
        unstarted.timestamps_for_date("2025-09-06", "../etc")
    with pytest.raises(ValueError, match="terminal"):
        BrowserDiscovery(replica.app_url, replica.cdn_url, "APM!")
    assert unstarted.driver is None


@pytest.mark.parametrize(
    ("header", "year", "month"),
    [
        ("2025  September", 2025, 9),
        ("2024 December", 2024, 12),
        ("Mar 2023", 2023, 3),
        ("2025 年 9 月", 2025, 9),
    ],
)
def test_picker_header_is_read(header: str, year: int, month: int) -> None:
    assert _header_month(header) == year * 12 + month - 1


def test_picker_header_that_cannot_be_read_raises() -> None:
    with pytest.raises(DiscoveryError):
        _header_month("September")


@pytest.mark.parametrize(
    ("delta", "years"), [(0, 0), (1, 0), (-5, 0), (-9, -1), (7, 1), (-20, -2), (24, 2)]
)
def test_year_buttons_are_used_when_fewer_clicks(delta: int, years: int) -> None:
    assert _year_clicks(delta) == years
