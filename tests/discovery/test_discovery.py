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
from modules.downloader.history_ready import EMPTY_HOLD_SECONDS
from modules.site.urls import get_zone
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
    assert result.reads >= 2 and result.confirmed_empty
    assert time.monotonic() - started < TIMEOUT / 2  # two reads, never the timeout


@browser
def test_empty_day_on_a_new_page_is_confirmed(discovery: BrowserDiscovery) -> None:
    # Another stream opens a new page: its own first load (today) may still answer,
    # so an empty list is held after the page's last answer, on two independent reads.
    started = time.monotonic()
    result = discovery.timestamps_for_date(EMPTY_DAY, "out_gate")
    assert result.timestamps == [] and result.missing == 0
    assert result.reads >= 2 and result.confirmed_empty
    assert time.monotonic() - started >= 2 * EMPTY_HOLD_SECONDS
    day = EMPTY_DAY - timedelta(days=1)
    full = discovery.timestamps_for_date(day, "out_gate")
    assert full.timestamps == expected(day, "out_gate")
    assert not full.confirmed_empty


@browser
def test_live_pictures_are_not_mixed_into_history(discovery: BrowserDiscovery) -> None:
    yesterday = TODAY - timedelta(days=1)
    result = discovery.timestamps_for_date(yesterday, "in_gate")
    assert result.timestamps == expected(yesterday)
    assert discovery.driver is not None
    # The live section's el-images, by their Vue data (the browser loads no picture).
    live = discovery.driver.execute_script(
        "return Array.from(document.querySelectorAll('.live-section .el-image'),"
        " item => item.__vue__.src);"
    )
    assert len(live) == 4 and all(TODAY.isoformat() in src for src in live)
    assert not set(live) & set(result.thumbnails.values())


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
def test_pictures_whose_files_are_gone_are_still_listed_from_the_page_data(
    discovery: BrowserDiscovery, faults: Callable[..., None]
) -> None:
    # The page's data names every picture of its History, whether or not its
    # thumbnail loads: the fetcher, not discovery, finds out that the files are gone.
    day = date(2025, 8, 21)
    gone = expected(day)[10:13]
    faults(missing=frozenset(gone))
    result = discovery.timestamps_for_date(day, "in_gate")
    assert result.timestamps == expected(day)
    assert result.missing == 0


@browser
def test_fallback_page_counts_pictures_that_fail_to_load_missing(
    new_discovery: Callable[..., BrowserDiscovery],
    page_options: Callable[..., None],
    faults: Callable[..., None],
) -> None:
    # The hand-written page has no Vue data: a picture whose thumbnail fails to
    # load has no URL, so it is counted, never silently dropped.
    page_options(widget=False)
    day = date(2025, 8, 22)
    gone = expected(day)[10:13]
    faults(missing=frozenset(gone))
    fallback = new_discovery()
    result = fallback.timestamps_for_date(day, "in_gate")
    assert result.missing == 3
    assert result.timestamps == [stamp for stamp in expected(day) if stamp not in gone]
    assert not result.confirmed_empty


@browser
def test_lazy_pictures_on_the_fallback_page_are_scrolled_into_view(
    new_discovery: Callable[..., BrowserDiscovery], page_options: Callable[..., None]
) -> None:
    # Without the page's data, a lazy picture's URL is known only once it has
    # loaded, which it does only once scrolled into view.
    page_options(widget=False, lazy=True)
    fallback = new_discovery()
    result = fallback.timestamps_for_date(date(2025, 7, 4), "in_gate")
    assert result.timestamps == expected(date(2025, 7, 4))
    assert result.missing == 0
    assert fallback.driver is not None
    assert fallback.driver.execute_script("return window.scrollY") > 0


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
    empty = legacy.timestamps_for_date(EMPTY_DAY, "in_gate")
    assert empty.timestamps == [] and empty.reads >= 2 and empty.confirmed_empty
    with pytest.raises(DayNotAvailable, match="Sat, Sep 6"):
        legacy.timestamps_for_date(date(2025, 9, 6), "in_gate")


@browser
def test_a_dead_browser_is_restarted_within_the_call(
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

    # chromedriver killed: its Chromium is orphaned and must be cleaned up too; the
    # read that finds it dead starts a new browser, and the day is read on it.
    first = crashing._browser
    assert first is not None and first.service.process is not None
    os.kill(first.service.process.pid, signal.SIGKILL)
    assert crashing.timestamps_for_date(day, "in_gate").timestamps == expected(day)
    assert crashing._browser is not None and crashing._browser is not first
    assert not Path(first.profile).exists()
    assert not _processes_with(first.profile)

    # Chromium's own processes killed, chromedriver left running.
    second = crashing._browser
    pids = _processes_with(second.profile)
    assert pids
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    other = day - timedelta(days=1)
    assert crashing.timestamps_for_date(other, "in_gate").timestamps == expected(other)
    assert crashing._browser is not None and crashing._browser is not second
    assert not Path(second.profile).exists()
    assert not _processes_with(second.profile)

    # The session quit underneath.
    third = crashing._browser
    assert crashing.driver is not None
    crashing.driver.quit()
    assert crashing.timestamps_for_date(day, "in_gate").timestamps == expected(day)
    assert crashing._browser is not third

    # A hung page: chromedriver's own timeout means a broken browser, not a slow page.
    fourth = crashing._browser
    assert crashing.driver is not None
    crashing.driver.execute_script("setTimeout(() => { for (;;) {} }, 200);")
    started = time.monotonic()
    # Another day: the same one would reload the page and so escape the hang.
    assert crashing.timestamps_for_date(other, "in_gate").timestamps == expected(other)
    assert crashing._browser is not fourth
    # Chromedriver's renderer timeout, or else the client's command timeout, then
    # a new browser: bounded, never a hang.
    assert time.monotonic() - started < 2 * (5.0 + COMMAND_MARGIN_SECONDS) + 15.0


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
