"""Which pictures a day has: read from DrayDog's camera page in headless Chromium.

The CDN has no listing, so the only source of a day's capture times is the camera
page's History list, which a Vue/Element UI app renders by script. This module
drives one Chromium per ``BrowserDiscovery``: it opens the stream's page, picks the
day in the Element UI date picker (or, on the older page form, clicks the day's
button), waits until the History list is complete and reads the thumbnails' URLs.

What makes this fragile lives in one place each: the selectors in
``page_selectors``, the page-side reading in ``page_scripts``, when the History is
complete in ``history_ready``, and starting and quitting Chromium in ``browser``.
Only explicit waits are used.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from types import TracebackType
from typing import Callable, Literal, TypeVar
from urllib.parse import urlsplit

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from modules.downloader.browser import BROWSER_ERRORS, Browser, find_browser
from modules.downloader.discovery_errors import (
    BrowserUnavailable,
    DayNotAvailable,
    DiscoveryError,
)
from modules.downloader.history_ready import HistoryReady
from modules.downloader.page_scripts import (
    BUTTON_JS,
    CELL_JS,
    HEADER_JS,
    PANEL_JS,
    STATE_JS,
    PageState,
)
from modules.downloader.page_selectors import SELECTORS, Selectors
from modules.downloader.urls import (
    DEFAULT_TIMEZONE,
    InvalidImageURL,
    get_zone,
    parse_day,
    parse_image_url,
    terminal_today,
    validate_name,
)

__all__ = [
    "BrowserDiscovery",
    "BrowserUnavailable",
    "DayNotAvailable",
    "DiscoveryError",
    "DiscoveryResult",
]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

POLL_SECONDS = 0.05
"""How often a wait reads the page again."""
MAX_PICKER_CLICKS = 400
"""A bound on header clicks, against a picker whose header never reaches the month."""

_ENGLISH_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class DiscoveryResult:
    """A day's History as read from the page."""

    day: date
    stream: str
    timestamps: list[str]
    """ISO wall-clock capture times (``2025-09-06T23:07:34``), sorted, without duplicates."""
    foreign: int = 0
    """Pictures ignored because their host is not the CDN's."""
    unparsed: int = 0
    """CDN pictures ignored because their URL is not one of this terminal's and stream's."""
    missing: int = 0
    """Pictures whose thumbnail failed to load in the page (``el-image__error``): no URL."""
    thumbnails: dict[str, str] = field(default_factory=dict, compare=False)
    """The page's own thumbnail URL of each timestamp: the form the CDN really uses."""
    seconds: float = field(default=0.0, compare=False)
    """How long the discovery took."""


class BrowserDiscovery:
    """Reads days' History lists of one terminal's camera page in one reused Chromium.

    Chromium starts on the first call, not before, and stays for later days and
    streams until ``close()``. Not thread-safe: one browser, one page.
    """

    def __init__(
        self,
        app_url: str,
        cdn_url: str,
        terminal: str,
        *,
        headless: bool = True,
        timeout: float = 30.0,
        chromium_path: str | None = None,
        chromedriver_path: str | None = None,
        source_timezone: str = DEFAULT_TIMEZONE,
        selectors: Selectors = SELECTORS,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        get_zone(source_timezone)
        self.app_url = app_url.rstrip("/")
        self.cdn_url = cdn_url.rstrip("/")
        self.terminal = validate_name(terminal, "terminal")
        self.headless = headless
        self.timeout = timeout
        self.chromium_path = chromium_path
        self.chromedriver_path = chromedriver_path
        self.source_timezone = source_timezone
        self.selectors = selectors
        self._selector_args = asdict(selectors)
        """The selectors as the page-side scripts get them."""
        self._cdn_host = _host_key(self.cdn_url)
        self._browser: Browser | None = None
        self._stream: str | None = None
        """The stream whose page is open and in a known state, else None."""
        self._fresh = False
        """Whether the open page was loaded during the current call (its list is current)."""

    def __enter__(self) -> BrowserDiscovery:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Quit the browser, if one runs; the next call would start a new one."""
        if self._browser is not None:
            self._browser.quit(polite=True)
        self._browser = None
        self._stream = None

    @property
    def driver(self) -> WebDriver | None:
        """The running WebDriver (for screenshots when debugging), or None."""
        return None if self._browser is None else self._browser.driver

    def page_url(self, stream: str) -> str:
        """The camera page of ``stream``, opened at its History."""
        validate_name(stream, "stream")
        page = f"{self.app_url}/terminal_cameras/{self.terminal}"
        return f"{page}?streamName={stream}#camera-history"

    def timestamps_for_date(
        self, day: date | str, stream: str = "in_gate"
    ) -> DiscoveryResult:
        """The capture times of ``day``'s pictures on ``stream``, from the page's History.

        Raises DayNotAvailable for a day the page does not offer, BrowserUnavailable
        when there is no browser, DiscoveryError when the page or the browser fails
        (a failed browser is quit; the next call starts a new one).
        """
        wanted = parse_day(day)
        validate_name(stream, "stream")
        today = terminal_today(self.source_timezone)
        if wanted > today:
            raise DayNotAvailable(
                f"{wanted} is in the future at the terminal (today is {today})"
            )
        started = time.monotonic()
        browser = self._started_browser()
        try:
            state = self._read_day(browser.driver, wanted, stream)
        except (DayNotAvailable, DiscoveryError):
            self._stream = None  # the page is in an unknown state: open it anew
            raise
        except BROWSER_ERRORS as exc:
            logger.warning("browser failed, quitting it: %r", exc)
            browser.quit(polite=False)
            self._browser = None
            self._stream = None
            raise DiscoveryError(
                f"the browser failed while reading {self.terminal}/{stream} {wanted} "
                f"({type(exc).__name__}); a new one starts on the next call"
            ) from exc
        self._fresh = False
        result = self._result(wanted, stream, state, time.monotonic() - started)
        logger.info(
            "%s/%s %s: %d pictures (%d foreign, %d unparsed, %d missing) in %.2f s",
            self.terminal,
            stream,
            wanted,
            len(result.timestamps),
            result.foreign,
            result.unparsed,
            result.missing,
            result.seconds,
        )
        return result

    # --- the browser -----------------------------------------------------------

    def _started_browser(self) -> Browser:
        if self._browser is None:
            chromium, chromedriver = find_browser(
                self.chromium_path, self.chromedriver_path
            )
            self._browser = Browser(chromium, chromedriver, self.headless, self.timeout)
            self._stream = None
        return self._browser

    # --- the page --------------------------------------------------------------

    def _read_day(self, driver: WebDriver, day: date, stream: str) -> PageState:
        if self._stream != stream:
            self._open_page(driver, stream)
        before, expect_change = self._pick(driver, day, stream)
        ready = HistoryReady(
            lambda d: self._state(d, scroll=True),
            lambda state: self._is_day_list(state, day),
            before,
            expect_change,
            confirm_empty=self._fresh,
        )
        return self._wait(driver, ready, f"the History of {day} to be complete")

    def _open_page(self, driver: WebDriver, stream: str) -> None:
        """Load the page anew and wait until it shows its form (or an error).

        Its own first History load (the default day) may still run when a day is
        picked: a late answer of it is told apart by its pictures' day, and an empty
        one by holding an empty list for NO_REACTION_SECONDS (see HistoryReady).
        """
        url = self.page_url(stream)
        self._stream = None
        if driver.current_url == url:
            driver.refresh()  # get() of the same URL with a #fragment would not reload
        else:
            driver.get(url)
        logger.debug("opened %s", url)
        state = self._wait(
            driver,
            lambda d: _page_shown(self._state(d, scroll=False)),
            "the page to show its day picker",
        )
        if state.form == "error":
            raise DiscoveryError(
                f"the camera page {url} shows an error: {state.error!r}"
            )
        self._stream = stream
        self._fresh = True

    def _pick(
        self, driver: WebDriver, day: date, stream: str
    ) -> tuple[tuple[object, ...], bool]:
        """Pick ``day``; returns the History before and whether picking should change it."""
        state = self._state(driver, scroll=False)
        if state.form == "legacy":
            return self._pick_button(driver, day, state)
        if state.form != "picker":
            raise DiscoveryError(
                "the camera page has neither a date picker nor day buttons"
            )
        panel = self._open_panel(driver)
        self._show_month(driver, panel, day)
        cell, class_name, today = driver.execute_script(
            CELL_JS, panel, self._selector_args, day.day
        )
        classes = set(str(class_name).split())
        if cell is None:
            raise DiscoveryError(f"the date picker has no cell for day {day.day}")
        if self.selectors.disabled_class in classes or (
            today is not None and day.day > today
        ):
            raise DayNotAvailable(f"the camera page does not offer {day}")
        current = self.selectors.current_class in classes
        if current and not self._fresh:
            # Picking the shown day again reloads nothing: reload the page for a current list.
            self._open_page(driver, stream)
            return self._pick(driver, day, stream)
        cell.click()
        logger.debug("picked %s in the date picker", day)
        return state.signature, not current

    def _pick_button(
        self, driver: WebDriver, day: date, state: PageState
    ) -> tuple[tuple[object, ...], bool]:
        month = _ENGLISH_MONTHS[day.month - 1][:3].title()
        label = f"{_WEEKDAYS[day.weekday()]}, {month} {day.day}"  # Sat, Sep 6
        button = driver.execute_script(BUTTON_JS, self._selector_args, label)
        if button is None or not button.is_enabled():
            raise DayNotAvailable(
                f"the camera page has no enabled button {label!r} for {day}"
            )
        button.click()
        logger.debug("clicked the day button %r", label)
        return state.signature, True

    def _open_panel(self, driver: WebDriver) -> WebElement:
        field_ = _first(driver, self.selectors.picker_input)
        field_.click()
        panel: WebElement = self._wait(
            driver,
            lambda d: d.execute_script(PANEL_JS, self._selector_args),
            "the date picker to open",
        )
        return panel

    def _show_month(self, driver: WebDriver, panel: WebElement, day: date) -> None:
        """Click the header's year and month buttons until it reads ``day``'s month."""
        target = day.year * 12 + day.month - 1
        for _ in range(MAX_PICKER_CLICKS):
            header = self._header(driver, panel)
            delta = target - _header_month(header)
            if delta == 0:
                return
            years = _year_clicks(delta)
            if years:
                choices = (
                    self.selectors.next_year if years > 0 else self.selectors.prev_year
                )
            else:
                choices = (
                    self.selectors.next_month
                    if delta > 0
                    else self.selectors.prev_month
                )
            _first(panel, choices).click()
            self._wait(
                driver,
                lambda d: self._header(d, panel) != header,
                f"the date picker to leave {header!r}",
            )
        raise DiscoveryError(f"the date picker did not reach {day:%Y-%m}")

    def _header(self, driver: WebDriver, panel: WebElement) -> str:
        return str(driver.execute_script(HEADER_JS, panel, self.selectors.header_label))

    def _state(self, driver: WebDriver, *, scroll: bool) -> PageState:
        raw = driver.execute_script(STATE_JS, self._selector_args, scroll)
        return PageState(**raw)

    def _wait(
        self,
        driver: WebDriver,
        condition: Callable[[WebDriver], Literal[False] | _T],
        what: str,
    ) -> _T:
        """Poll ``condition`` until it returns something truthy, at most ``timeout``.

        Chromedriver raises the same TimeoutException class for a hung renderer; the
        message tells the two apart: only the page being slow is a DiscoveryError.
        """
        wait = WebDriverWait(driver, self.timeout, poll_frequency=POLL_SECONDS)
        try:
            return wait.until(condition, message=what)
        except TimeoutException as exc:
            if exc.msg != what:
                raise
            raise DiscoveryError(
                f"{self.terminal}: waited {self.timeout:g} s for {what}"
            ) from exc

    # --- the result ------------------------------------------------------------

    def _result(
        self, day: date, stream: str, state: PageState, seconds: float
    ) -> DiscoveryResult:
        thumbnails: dict[str, str] = {}
        foreign = unparsed = 0
        off_day = 0
        for src in state.srcs:
            if _host_key(src) != self._cdn_host:
                foreign += 1
                continue
            try:
                ref = parse_image_url(src, self.source_timezone)
            except InvalidImageURL:
                ref = None
            if ref is None or ref.terminal != self.terminal or ref.stream != stream:
                unparsed += 1
                logger.debug("not a %s/%s picture: %s", self.terminal, stream, src)
                continue
            off_day += ref.local_time.date() != day
            thumbnails.setdefault(ref.local_time.isoformat(timespec="seconds"), src)
        if off_day:
            logger.warning(
                "%d of the History pictures of %s are of another day", off_day, day
            )
        return DiscoveryResult(
            day=day,
            stream=stream,
            timestamps=sorted(thumbnails),
            foreign=foreign,
            unparsed=unparsed,
            missing=state.errors,
            seconds=seconds,
            thumbnails=thumbnails,
        )

    def _is_day_list(self, state: PageState, day: date) -> bool:
        """False when the list's CDN pictures are all of other days: the old day still shows."""
        dates = set()
        for src in state.srcs:
            if _host_key(src) != self._cdn_host:
                continue
            try:
                dates.add(parse_image_url(src, self.source_timezone).local_time.date())
            except InvalidImageURL:
                continue
        return not dates or day in dates


def _page_shown(state: PageState) -> PageState | Literal[False]:
    """The page shows its day picker, its day buttons or an error."""
    return state if state.form is not None else False


def _first(root: WebDriver | WebElement, choices: tuple[str, ...]) -> WebElement:
    """The first element matching one of the alternative selectors, in order."""
    for selector in choices:
        found = root.find_elements("css selector", selector)
        if found:
            element: WebElement = found[0]
            return element
    raise DiscoveryError(f"nothing on the page matches {' or '.join(choices)}")


def _header_month(header: str) -> int:
    """The month a picker header shows (``2025 September``, ``2025 年 9 月``) as year*12+month-1."""
    year = re.search(r"\d{4}", header)
    if year is None:
        raise DiscoveryError(
            f"cannot read the year in the date picker header {header!r}"
        )
    rest = (header[: year.start()] + " " + header[year.end() :]).lower()
    for index, name in enumerate(_ENGLISH_MONTHS):
        if re.search(rf"\b{name[:3]}", rest):
            return int(year.group()) * 12 + index
    number = re.search(r"\b(1[0-2]|0?[1-9])\b", rest)
    if number is None:
        raise DiscoveryError(
            f"cannot read the month in the date picker header {header!r}"
        )
    return int(year.group()) * 12 + int(number.group(1)) - 1


def _year_clicks(delta: int) -> int:
    """Year-button clicks (signed) on the fewest-clicks way to a month ``delta`` months away."""
    low = delta // 12
    return min(
        (low, low + 1),
        key=lambda years: (abs(years) + abs(delta - 12 * years), abs(years)),
    )


def _host_key(url: str) -> tuple[str, int | None]:
    """Host and effective port: what makes a picture the CDN's or another host's."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return ("", None)
    return ((parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(parts.scheme))
