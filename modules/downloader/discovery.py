"""Which pictures a day has: read from DrayDog's camera page in headless Chromium.

The CDN has no listing, so the only source of a day's capture times is the camera
page's History list, which a Vue/Element UI app renders by script. This module
drives one Chromium per ``BrowserDiscovery``: it opens the stream's page, picks the
day in the Element UI date picker (or, on the older page form, clicks the day's
button), waits until the History list is the day's answer and reads its pictures'
URLs from the page's own data.

What it guarantees: exactly the day's pictures, or an error; never a silent empty
day. A pick is verified (the picker must hold the day) and retried when it missed;
a list is taken only with evidence that the page answered the pick
(``history_ready``); an empty day is confirmed by a second, independent read; a
page that cannot be reached fails at once. Only a dead browser is restarted.

What makes this fragile lives in one place each: the selectors in
``modules.site.selectors``, the page-side reading in ``page_scripts``, when the History is
complete in ``history_ready``, and starting and quitting Chromium in ``browser``.
Only explicit waits are used.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Callable, Literal, TypeVar
from urllib.parse import urlsplit

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    JavascriptException,
    MoveTargetOutOfBoundsException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from modules.downloader.browser import BROWSER_ERRORS, Browser, find_browser
from modules.downloader.discovery_errors import (
    BrowserUnavailable,
    DayNotAvailable,
    DiscoveryError,
    PageUnreachable,
    UnusableHistory,
)
from modules.downloader.history_ready import HistoryReady, Reading
from modules.downloader.page_scripts import (
    BUTTON_JS,
    CELL_JS,
    HEADER_JS,
    LOAD_ERROR_JS,
    NOW_JS,
    PANEL_JS,
    PANEL_STILL_JS,
    PICKED_JS,
    READING_JS,
    STATE_JS,
    STEP_MONTHS_JS,
    net_probe_js,
    NetState,
    PageState,
)
from modules.site.selectors import SELECTORS, Selectors
from modules.site.urls import (
    DEFAULT_TIMEZONE,
    ImageRef,
    InvalidImageURL,
    capture_instants,
    get_zone,
    parse_day,
    parse_image_url,
    terminal_today,
    timestamp_text,
    validate_name,
)

__all__ = [
    "BrowserDiscovery",
    "BrowserUnavailable",
    "DayNotAvailable",
    "DiscoveryError",
    "DiscoveryResult",
    "PageUnreachable",
    "UnusableHistory",
]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

POLL_SECONDS = 0.03
"""How often a wait reads the page again."""
MAX_MONTH_STEPS = 3
"""Tries to step the picker's header to a month, against one that does not follow."""
STILL_POLL_SECONDS = 0.02
"""How often the panel is looked at while it moves: its transition takes ~0.3 s."""
MAX_READS = 4
"""Reads of one day at most: the first, a confirmation of an empty one, and re-reads
after a failed read or a disagreement."""
MAX_PICK_ATTEMPTS = 4
"""Tries to pick a day within one read: a click that missed or was intercepted."""
PICK_CONFIRM_SECONDS = 2.0
"""How long the picker may take to show a pick in its input."""
PAGE_ERRORS = (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    JavascriptException,
    MoveTargetOutOfBoundsException,
    NoSuchElementException,
    StaleElementReferenceException,
)
"""What a live browser raises when the page is not as expected: retried, never a restart."""

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
    """Capture times in time order, without duplicates: ISO wall-clock times
    (``2025-09-06T23:07:34``), with their UTC offset inside a repeated autumn hour
    (``2025-11-02T01:05:00-08:00``) so that each names one instant."""
    foreign: int = 0
    """Pictures ignored because their host is not the CDN's."""
    unparsed: int = 0
    """CDN pictures ignored because their URL is not one of this terminal's and stream's."""
    missing: int = 0
    """Pictures whose thumbnail failed to load in the page (``el-image__error``): no URL."""
    thumbnails: dict[str, str] = field(default_factory=dict, compare=False)
    """The page's own URL of each timestamp, the form the CDN really uses: normally
    its thumbnail, a full-size picture's when the History lists those."""
    seconds: float = field(default=0.0, compare=False)
    """How long the discovery took."""
    reads: int = field(default=1, compare=False)
    """Independent reads of the page it took; an empty day needs two that agree."""
    unusable: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """History items that name no picture fetched, each (URL, why): another host's
    that is not a listed picture's mirror, or not this terminal's and stream's
    picture URL. Failures of the day: the page shows something the archive lacks."""

    @property
    def confirmed_empty(self) -> bool:
        """The day has no pictures, as two independent reads of the page agree."""
        return not self.timestamps and not self.missing and self.reads >= 2

    def require_usable(self, terminal: str) -> None:
        """Raise UnusableHistory when the History listed pictures none of which can be
        fetched (another host, an unknown URL form): never a silent day of nothing."""
        if self.timestamps or not (self.foreign or self.unparsed):
            return
        example = f", e.g. {self.unusable[0][0]}" if self.unusable else ""
        raise UnusableHistory(
            f"{terminal}/{self.stream} {self.day}: none of the History's "
            f"{self.foreign + self.unparsed} pictures can be fetched "
            f"({self.foreign} on another host than the CDN, {self.unparsed} not a "
            f"{terminal}/{self.stream} picture URL){example}"
        )


class _ReadFailed(Exception):
    """One read of the page went wrong in a way another read may not: try again."""


class _PanelClosed(Exception):
    """The picker's panel closed under the pick (the page re-rendered, say): pick again."""


class _TimedOut(DiscoveryError):
    """The page did not reach a state within ``timeout``."""


@dataclass(frozen=True)
class _Read:
    """One read's History: the pictures' URLs in the page's order and the failed ones."""

    srcs: tuple[str, ...]
    errors: int

    @property
    def key(self) -> tuple[frozenset[str], int]:
        return (frozenset(self.srcs), self.errors)

    @property
    def empty(self) -> bool:
        return not self.srcs and not self.errors


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
        """Whether the open page's own first History load is still unused."""
        self._images_blocked = False
        """Whether the browser leaves the CDN's pictures unloaded: the page's data
        names them, and loading 144 thumbnails a day would only slow the page and
        load the CDN. Lifted for a page whose data does not name them."""
        self._interrupted = False
        self._lock = threading.Lock()
        """Orders interrupt() (another thread) against a browser being put in place."""

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
        with self._lock:
            browser, self._browser = self._browser, None
        if browser is not None:
            browser.quit(polite=True)
        self._stream = None

    def interrupt(self) -> None:
        """From another thread: kill the browser and start no other, so that a day
        being read fails now rather than once its reads have run out. A browser
        still starting is quit as soon as it has started (see _started_browser)."""
        with self._lock:
            self._interrupted = True
            browser, self._browser = self._browser, None
        if browser is not None:
            browser.quit(polite=False)

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

        Exactly the day's pictures, or an error: a day is reported empty only when
        two independent reads (the page reopened) agree; reads that disagree are
        repeated until two agree. Raises DayNotAvailable for a day the page does not
        offer, BrowserUnavailable when there is no browser, PageUnreachable at once
        for a page that cannot be loaded, and DiscoveryError when the reads run out.
        """
        wanted = parse_day(day)
        validate_name(stream, "stream")
        today = terminal_today(self.source_timezone)
        if wanted > today:
            raise DayNotAvailable(
                f"{wanted} is in the future at the terminal (today is {today})"
            )
        try:
            return self._timestamps(wanted, stream)
        finally:
            if self._interrupted:
                # Nobody may own this discovery any more (a read ahead cut by the
                # downloader detaches it): its read ends with its browser.
                self.interrupt()

    def _timestamps(self, wanted: date, stream: str) -> DiscoveryResult:
        """timestamps_for_date's reads of a day already checked."""
        started = time.monotonic()
        reads: list[_Read] = []
        problems: list[str] = []
        answer: _Read | None = None
        for attempt in range(MAX_READS):
            if attempt:
                self._stream = None  # an independent read: the page opened anew
            try:
                read = self._read_once(wanted, stream)
            except _ReadFailed as exc:
                problems.append(str(exc))
                logger.warning(
                    "%s/%s %s: read %d failed: %s",
                    self.terminal,
                    stream,
                    wanted,
                    attempt + 1,
                    exc,
                )
                continue
            reads.append(read)
            answer = _agreed(reads)
            if answer is not None:
                break
            logger.info(
                "%s/%s %s: read %d found %d pictures; reading again to confirm",
                self.terminal,
                stream,
                wanted,
                attempt + 1,
                len(read.srcs),
            )
        if answer is None:
            seen = ", ".join(str(len(read.srcs)) for read in reads) or "none"
            raise DiscoveryError(
                f"{self.terminal}/{stream} {wanted}: no two of {MAX_READS} reads of "
                f"the page agreed (pictures per read: {seen})"
                + (f"; {'; '.join(problems)}" if problems else "")
            )
        result = self._result(
            wanted, stream, answer, time.monotonic() - started, len(reads)
        )
        logger.info(
            "%s/%s %s: %d pictures (%d foreign, %d unparsed, %d missing%s) in %.2f s",
            self.terminal,
            stream,
            wanted,
            len(result.timestamps),
            result.foreign,
            result.unparsed,
            result.missing,
            ", confirmed empty" if result.confirmed_empty else "",
            result.seconds,
        )
        return result

    # --- the browser -----------------------------------------------------------

    def _started_browser(self) -> Browser:
        """The running browser, else a new one.

        Starting one takes seconds, during which interrupt() may run and find no
        browser to kill: the new one is put in place under the lock only if no
        interrupt came, else quit here, so it cannot outlive its discovery.
        """
        if self._interrupted:
            raise BrowserUnavailable("discovery was interrupted")
        if self._browser is not None:
            return self._browser
        chromium, chromedriver = find_browser(
            self.chromium_path, self.chromedriver_path
        )
        browser = Browser(chromium, chromedriver, self.headless, self.timeout)
        try:
            browser.run_on_every_page(net_probe_js(self._selector_args))
            browser.block_urls([f"{self.cdn_url}/*"])
        except BaseException:
            browser.quit(polite=False)
            raise
        if not self._put_in_place(browser):
            logger.info("interrupted while Chromium started: quitting it")
            browser.quit(polite=False)
            raise BrowserUnavailable("discovery was interrupted")
        self._images_blocked = True
        self._stream = None
        return browser

    def _put_in_place(self, browser: Browser) -> bool:
        """Make ``browser`` this discovery's unless interrupt() came meanwhile."""
        with self._lock:
            if self._interrupted:
                return False
            self._browser = browser
            return True

    def _read_once(self, day: date, stream: str) -> _Read:
        """One read of the day's History; _ReadFailed when another read may succeed.

        A browser that died is quit (a new one starts on the next read); a live one
        that misbehaved keeps running and its page is opened anew.
        """
        browser = self._started_browser()
        try:
            reading = self._read_day(browser.driver, day, stream)
        except (DayNotAvailable, PageUnreachable, _ReadFailed):
            self._stream = None
            raise
        except _TimedOut as exc:
            self._stream = None
            raise _ReadFailed(str(exc)) from exc
        except BROWSER_ERRORS as exc:
            self._stream = None
            if isinstance(exc, PAGE_ERRORS) or _alive(browser.driver):
                raise _ReadFailed(f"the page misbehaved ({_brief(exc)})") from exc
            logger.warning("the browser died, quitting it: %r", exc)
            browser.quit(polite=False)
            self._browser = None
            raise _ReadFailed(
                f"the browser died ({type(exc).__name__}); the next read starts a new one"
            ) from exc
        finally:
            self._fresh = False
        state = reading.state
        if self._images_blocked and state.errors and not state.from_data:
            self._images_blocked = False
            browser.block_urls([])
            raise _ReadFailed(
                "the page's data does not name its pictures: loading them instead"
            )
        if reading.failed_requests:
            raise _ReadFailed(
                f"{reading.failed_requests} of the page's data requests failed, "
                f"its list ({state.items} pictures) may not be the day's"
            )
        return _Read(tuple(state.srcs), state.errors)

    # --- the page --------------------------------------------------------------

    def _read_day(self, driver: WebDriver, day: date, stream: str) -> Reading:
        if self._stream != stream:
            self._open_page(driver, stream)
        mark = self._pick(driver, day, stream)
        ready = HistoryReady(
            lambda d: self._reading(d, mark),
            lambda state: self._is_day_list(state, day),
        )
        return self._wait(driver, ready, f"the History of {day} to be complete")

    def _open_page(self, driver: WebDriver, stream: str) -> None:
        """Load the page anew and wait until it shows its form; fail at once if it
        cannot be loaded."""
        url = self.page_url(stream)
        self._stream = None
        try:
            if driver.current_url == url:
                driver.refresh()  # get() of the same URL with a #fragment would not reload
            else:
                driver.get(url)
        except WebDriverException as exc:
            if "net::ERR_" not in str(exc.msg):
                raise
            raise PageUnreachable(
                f"the camera page {url} could not be reached: {_brief(exc)}"
            ) from exc
        reason = driver.execute_script(LOAD_ERROR_JS)
        if reason:
            raise PageUnreachable(f"the camera page {url} did not load: {reason}")
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

    def _pick(self, driver: WebDriver, day: date, stream: str) -> float:
        """Pick ``day`` and verify the pick took; returns the page time of the pick.

        A day the picker already holds is no pick at all (the page loads nothing):
        a page just opened on that day answers with its own first load (time 0),
        any other is opened anew.
        """
        state = self._state(driver, scroll=False)
        if state.form == "legacy":
            return self._pick_button(driver, day)
        if state.form != "picker":
            raise DiscoveryError(
                "the camera page has neither a date picker nor day buttons"
            )
        if self._picked_day(driver) == day:
            if not self._fresh:
                self._open_page(driver, stream)
            if self._picked_day(driver) == day:
                return 0.0
        problems = []
        for _ in range(MAX_PICK_ATTEMPTS):
            before = self._picked_text(driver)
            try:
                mark = self._click_day(driver, day)
            except (*PAGE_ERRORS, _PanelClosed) as exc:
                problems.append(f"the click failed ({_brief(exc)})")
                logger.info("picking %s: %s; trying again", day, problems[-1])
                continue
            picked = self._confirmed_pick(driver, before, day)
            if picked == day:
                logger.debug("picked %s in the date picker", day)
                return mark
            problems.append(f"the picker holds {picked or 'nothing new'}")
            logger.info("picking %s: %s; trying again", day, problems[-1])
        raise _ReadFailed(f"could not pick {day}: {'; '.join(problems)}")

    def _click_day(self, driver: WebDriver, day: date) -> float:
        """Open the panel, show ``day``'s month and click its cell once the panel is
        still; returns the page time just before the click."""
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
        self._wait_still(driver, panel)
        mark = float(driver.execute_script(NOW_JS))
        cell.click()
        return mark

    def _confirmed_pick(
        self, driver: WebDriver, before: str | None, day: date
    ) -> date | None:
        """The day the picker holds once the pick shows (or ``PICK_CONFIRM_SECONDS``)."""
        deadline = time.monotonic() + PICK_CONFIRM_SECONDS
        while True:
            text = self._picked_text(driver)
            picked = _as_day(text)
            if picked == day or (text != before and text):
                return picked
            if time.monotonic() >= deadline:
                return picked if text != before else None
            time.sleep(POLL_SECONDS)

    def _picked_text(self, driver: WebDriver) -> str | None:
        value = driver.execute_script(PICKED_JS, self._selector_args)
        return None if value is None else str(value)

    def _picked_day(self, driver: WebDriver) -> date | None:
        return _as_day(self._picked_text(driver))

    def _pick_button(self, driver: WebDriver, day: date) -> float:
        month = _ENGLISH_MONTHS[day.month - 1][:3].title()
        label = f"{_WEEKDAYS[day.weekday()]}, {month} {day.day}"  # Sat, Sep 6
        button = driver.execute_script(BUTTON_JS, self._selector_args, label)
        if button is None or not button.is_enabled():
            raise DayNotAvailable(
                f"the camera page has no enabled button {label!r} for {day}"
            )
        mark = float(driver.execute_script(NOW_JS))
        button.click()
        logger.debug("clicked the day button %r", label)
        return mark

    def _open_panel(self, driver: WebDriver) -> WebElement:
        """The picker's panel, opened by a click on the input unless it is open; it
        may still be moving."""
        panel = driver.execute_script(PANEL_JS, self._selector_args)
        if panel is None:
            _first(driver, self.selectors.picker_input).click()
            panel = self._wait(
                driver,
                lambda d: d.execute_script(PANEL_JS, self._selector_args),
                "the date picker to open",
            )
        return panel  # type: ignore[no-any-return]

    def _wait_still(self, driver: WebDriver, panel: WebElement) -> None:
        """Wait until the panel has ended its transition and stopped moving: a click
        at a moving cell's place lands on another."""
        last: list[object] = []

        def still(d: WebDriver) -> bool:
            box = d.execute_script(PANEL_STILL_JS, panel)
            if box == "closed":
                raise _PanelClosed("the date picker closed before its day was clicked")
            steady = box is not None and [box] == last
            last[:] = [box] if box is not None else []
            return steady

        self._wait(
            driver, still, "the date picker to stop moving", poll=STILL_POLL_SECONDS
        )

    def _show_month(self, driver: WebDriver, panel: WebElement, day: date) -> None:
        """Step the panel's header until it reads ``day``'s month (years first)."""
        target = day.year * 12 + day.month - 1
        for _ in range(MAX_MONTH_STEPS):
            delta = target - _header_month(self._header(driver, panel))
            if delta == 0:
                return
            years = _year_clicks(delta)
            if not driver.execute_script(
                STEP_MONTHS_JS, panel, self._selector_args, years, delta - 12 * years
            ):
                raise DiscoveryError("the date picker has no year or month buttons")
        raise DiscoveryError(f"the date picker did not reach {day:%Y-%m}")

    def _header(self, driver: WebDriver, panel: WebElement) -> str:
        return str(driver.execute_script(HEADER_JS, panel, self.selectors.header_label))

    def _state(self, driver: WebDriver, *, scroll: bool) -> PageState:
        raw = driver.execute_script(STATE_JS, self._selector_args, scroll)
        return PageState(**raw)

    def _reading(
        self, driver: WebDriver, mark: float
    ) -> tuple[PageState, NetState | None]:
        """The list and the data requests since ``mark``, as of one moment of the page."""
        raw = driver.execute_script(READING_JS, self._selector_args, True, mark)
        net = raw["net"]
        return PageState(**raw["state"]), None if net is None else NetState(**net)

    def _wait(
        self,
        driver: WebDriver,
        condition: Callable[[WebDriver], Literal[False] | _T],
        what: str,
        poll: float = POLL_SECONDS,
    ) -> _T:
        """Poll ``condition`` until it returns something truthy, at most ``timeout``.

        Chromedriver raises the same TimeoutException class for a hung renderer; the
        message tells the two apart: only the page being slow is a DiscoveryError.
        """
        wait = WebDriverWait(driver, self.timeout, poll_frequency=poll)
        try:
            return wait.until(condition, message=what)
        except TimeoutException as exc:
            if exc.msg != what:
                raise
            raise _TimedOut(
                f"{self.terminal}: waited {self.timeout:g} s for {what}"
            ) from exc

    # --- the result ------------------------------------------------------------

    def _result(
        self, day: date, stream: str, read: _Read, seconds: float, reads: int
    ) -> DiscoveryResult:
        refs: list[tuple[ImageRef, str]] = []
        foreign: list[tuple[ImageRef | None, str]] = []
        unparsed: list[str] = []
        for src in read.srcs:
            try:
                ref: ImageRef | None = parse_image_url(src, self.source_timezone)
            except InvalidImageURL:
                ref = None
            ours = (
                ref is not None
                and ref.terminal == self.terminal
                and ref.stream == stream
            )
            if _host_key(src) != self._cdn_host:
                foreign.append((ref if ours else None, src))
            elif ref is None or not ours:
                unparsed.append(src)
                logger.debug("not a %s/%s picture: %s", self.terminal, stream, src)
            else:
                refs.append((ref, src))
        unusable = self._unusable(refs, foreign, unparsed, stream)
        instants = capture_instants([ref for ref, _ in refs], self.source_timezone)
        by_instant: dict[datetime, str] = {}
        off_day = 0
        for (ref, src), instant in zip(refs, instants):
            off_day += ref.local_time.date() != day
            by_instant.setdefault(instant, src)
        if off_day:
            logger.warning(
                "%d of the History pictures of %s are of another day", off_day, day
            )
        thumbnails = {
            timestamp_text(instant, self.source_timezone): by_instant[instant]
            for instant in sorted(by_instant)
        }
        result = DiscoveryResult(
            day=day,
            stream=stream,
            timestamps=list(thumbnails),
            foreign=len(foreign),
            unparsed=len(unparsed),
            missing=read.errors,
            seconds=seconds,
            thumbnails=thumbnails,
            reads=reads,
            unusable=unusable,
        )
        result.require_usable(self.terminal)
        return result

    def _unusable(
        self,
        refs: list[tuple[ImageRef, str]],
        foreign: list[tuple[ImageRef | None, str]],
        unparsed: list[str],
        stream: str,
    ) -> tuple[tuple[str, str], ...]:
        """The items that name no picture fetched, with why; logged, and failures of
        the day. A foreign item naming a picture the CDN's items list too is only a
        mirror of it (the same picture under another host name): nothing is lacking."""
        listed = {ref.local_time.replace(fold=0) for ref, _ in refs}
        unusable = [
            (src, f"on another host than the CDN {self.cdn_url}, not fetched")
            for ref, src in foreign
            if ref is None or ref.local_time.replace(fold=0) not in listed
        ]
        unusable.extend(
            (src, f"not a {self.terminal}/{stream} picture URL, not fetched")
            for src in unparsed
        )
        if unusable:
            logger.warning(
                "%s/%s: %d History items name no picture that can be fetched, e.g. %s",
                self.terminal,
                stream,
                len(unusable),
                unusable[0][0],
            )
        return tuple(unusable)

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


def _agreed(reads: list[_Read]) -> _Read | None:
    """The answer the reads so far give, or None while another read is needed.

    A first read with pictures stands on its own (they are checked to be the day's);
    an empty one needs a second; after a disagreement, two reads must agree, and an
    empty answer never outvotes pictures that were seen.
    """
    if len(reads) == 1:
        return None if reads[0].empty else reads[0]
    seen_pictures = any(not read.empty for read in reads)
    for index, read in enumerate(reads):
        if read.empty and seen_pictures:
            continue
        if any(read.key == other.key for other in reads[index + 1 :]):
            return read
    return None


def _alive(driver: WebDriver) -> bool:
    """Whether the browser still answers: a page error is not a dead browser."""
    try:
        driver.execute_script("return 1")
    except BROWSER_ERRORS:
        return False
    return True


def _brief(exc: BaseException) -> str:
    """An exception in one line: Selenium's messages carry stack traces."""
    message = getattr(exc, "msg", None) or str(exc)
    return f"{type(exc).__name__}: {str(message).strip().splitlines()[0][:200]}"


def _as_day(text: str | None) -> date | None:
    """The day an input shows (``2025-09-06``, the page's value format), else None."""
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


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
