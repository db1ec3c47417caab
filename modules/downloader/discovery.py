"""Which pictures a day has: read from DrayDog's camera page in headless Chromium.

The CDN has no listing, so the only source of a day's capture times is the camera
page's History list, which a Vue/Element UI app renders by script. This module
drives one Chromium per ``BrowserDiscovery``: it opens the stream's page, picks the
day in the Element UI date picker (or, on the older page form, clicks the day's
button), waits until the History list is complete and reads the thumbnails' URLs.

What makes this fragile lives in one place each: the selectors in ``Selectors``,
the page-side reading in the ``_*_JS`` scripts (which get the selectors as
arguments) and the timing in the module constants. Only explicit waits are used.
"""

from __future__ import annotations

import logging
import math
import os
import re
import select
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Callable, Literal, TypeVar
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from urllib3.exceptions import HTTPError as Urllib3Error

from modules.downloader.urls import (
    DEFAULT_TIMEZONE,
    InvalidImageURL,
    get_zone,
    parse_image_url,
    validate_name,
)

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

INSTALL_HINT = "apt-get install chromium chromium-driver"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER_NAMES = ("chromedriver",)
CHROMIUM_ENV = "DRAYDOG_CHROMIUM"
CHROMEDRIVER_ENV = "DRAYDOG_CHROMEDRIVER"
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=AutofillServerCommunication,NetworkTimeServiceQuerying,"
    "OptimizationHints,Translate,MediaRouter",
    "--window-size=1280,1024",
)
"""Flags that run Chromium as root in a container with fewer background requests."""

POLL_SECONDS = 0.05
STABLE_SECONDS = 0.2
"""How long a complete History list must stay unchanged before it is read."""
NO_REACTION_SECONDS = 3.0
"""How long a state must hold that may not be the picked day's: a list the pick
changed nothing in (no loading mask either), or an empty list on a page still busy
with its first load."""
COMMAND_MARGIN_SECONDS = 5
"""Added to ``timeout`` for one WebDriver command: a browser slower than that has hung."""
PROCESS_EXIT_SECONDS = 5.0
"""How long to wait for a killed Chromium process to exit before deleting its profile."""
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
_BROWSER_ERRORS = (WebDriverException, Urllib3Error, OSError)
"""What talking to a crashed or hung browser raises."""


class DiscoveryError(RuntimeError):
    """The day's pictures could not be read from the camera page."""


class BrowserUnavailable(DiscoveryError):
    """No usable Chromium or chromedriver on this machine."""


class DayNotAvailable(ValueError):
    """The page does not offer this day (in the future, disabled, or too old)."""


@dataclass(frozen=True)
class Selectors:
    """Every selector the discovery uses; each tuple lists alternatives, first match wins.

    The real page may change; the replica follows ``/work/shared/draydog-site.md``.
    """

    history_root: tuple[str, ...] = ("#camera-history", "[id*='history' i]")
    history_heading: str = "h1, h2, h3, h4, h5, h6, .el-card__header, [class*='title']"
    history_heading_text: str = "History"
    item: str = "div.el-image"
    item_img: str = "img.el-image__inner"
    item_error: str = ".el-image__error"
    loading_mask: str = ".el-loading-mask"
    fullscreen_mask: str = ".el-loading-mask.is-fullscreen"
    empty: str = ".el-empty"
    page_error: str = ".el-alert--error"
    picker_input: tuple[str, ...] = (
        "input.el-input__inner[placeholder='Pick a day']",
        ".el-date-editor input.el-input__inner",
    )
    panel: str = "div.el-picker-panel.el-date-picker"
    header_label: str = "div.el-date-picker__header span.el-date-picker__header-label"
    prev_year: tuple[str, ...] = (
        "button.el-picker-panel__icon-btn.el-date-picker__prev-btn.el-icon-d-arrow-left",
        "button[aria-label='Previous Year']",
    )
    prev_month: tuple[str, ...] = (
        "button.el-picker-panel__icon-btn.el-date-picker__prev-btn.el-icon-arrow-left",
        "button[aria-label='Previous Month']",
    )
    next_year: tuple[str, ...] = (
        "button.el-picker-panel__icon-btn.el-date-picker__next-btn.el-icon-d-arrow-right",
        "button[aria-label='Next Year']",
    )
    next_month: tuple[str, ...] = (
        "button.el-picker-panel__icon-btn.el-date-picker__next-btn.el-icon-arrow-right",
        "button[aria-label='Next Month']",
    )
    day_cell: str = "table.el-date-table td"
    other_month_classes: tuple[str, ...] = ("prev-month", "next-month")
    disabled_class: str = "disabled"
    today_class: str = "today"
    current_class: str = "current"
    day_button: str = (
        "button, .el-button, .el-radio-button__inner, .el-tabs__item,"
        " [role='button'], [role='tab']"
    )
    day_button_text: str = (
        r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+[a-z]{3}[a-z]*\.?\s+\d{1,2}$"
    )
    """The older form's day labels, like ``Sat, Sep 6`` (a JavaScript regex, ignoring case)."""


SELECTORS = Selectors()


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
    seconds: float = field(default=0.0, compare=False)
    """How long the discovery took."""


def find_browser(
    chromium_path: str | None = None, chromedriver_path: str | None = None
) -> tuple[str, str]:
    """The Chromium and chromedriver executables, or BrowserUnavailable saying how to install.

    An explicit path wins, then ``$DRAYDOG_CHROMIUM`` / ``$DRAYDOG_CHROMEDRIVER``, then
    the usual names on PATH.
    """
    chromium = _locate("Chromium", chromium_path, CHROMIUM_ENV, CHROMIUM_NAMES)
    chromedriver = _locate(
        "chromedriver", chromedriver_path, CHROMEDRIVER_ENV, CHROMEDRIVER_NAMES
    )
    return chromium, chromedriver


def _locate(what: str, explicit: str | None, env: str, names: tuple[str, ...]) -> str:
    wanted = explicit or os.environ.get(env)
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise BrowserUnavailable(
                f"{what} not found or not executable at {wanted!r}; "
                f"install it with `{INSTALL_HINT}` or set ${env}"
            )
        return found
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    raise BrowserUnavailable(
        f"{what} not found on PATH (tried {', '.join(names)}); "
        f"install it with `{INSTALL_HINT}` or set ${env}"
    )


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
        self._browser: _Browser | None = None
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
        wanted = _as_date(day)
        validate_name(stream, "stream")
        today = datetime.now(get_zone(self.source_timezone)).date()
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
        except _BROWSER_ERRORS as exc:
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

    def _started_browser(self) -> _Browser:
        if self._browser is None:
            chromium, chromedriver = find_browser(
                self.chromium_path, self.chromedriver_path
            )
            self._browser = _Browser(
                chromium, chromedriver, self.headless, self.timeout
            )
            self._stream = None
        return self._browser

    # --- the page --------------------------------------------------------------

    def _read_day(self, driver: WebDriver, day: date, stream: str) -> _PageState:
        if self._stream != stream:
            self._open_page(driver, stream)
        before, expect_change = self._pick(driver, day, stream)
        ready = _HistoryReady(self, day, before, expect_change, self._fresh)
        return self._wait(driver, ready, f"the History of {day} to be complete")

    def _open_page(self, driver: WebDriver, stream: str) -> None:
        """Load the page anew and wait until it shows its form (or an error).

        Its own first History load (the default day) may still run when a day is
        picked: a late answer of it is told apart by its pictures' day, and an empty
        one by holding an empty list for NO_REACTION_SECONDS (see _HistoryReady).
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
            _CELL_JS, panel, self._selector_args, day.day
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
        self, driver: WebDriver, day: date, state: _PageState
    ) -> tuple[tuple[object, ...], bool]:
        month = _ENGLISH_MONTHS[day.month - 1][:3].title()
        label = f"{_WEEKDAYS[day.weekday()]}, {month} {day.day}"  # Sat, Sep 6
        button = driver.execute_script(_BUTTON_JS, self._selector_args, label)
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
            lambda d: d.execute_script(_PANEL_JS, self._selector_args),
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
        return str(
            driver.execute_script(_HEADER_JS, panel, self.selectors.header_label)
        )

    def _state(self, driver: WebDriver, *, scroll: bool) -> _PageState:
        raw = driver.execute_script(_STATE_JS, self._selector_args, scroll)
        return _PageState(**raw)

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
        self, day: date, stream: str, state: _PageState, seconds: float
    ) -> DiscoveryResult:
        times: set[str] = set()
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
            times.add(ref.local_time.isoformat(timespec="seconds"))
        if off_day:
            logger.warning(
                "%d of the History pictures of %s are of another day", off_day, day
            )
        return DiscoveryResult(
            day=day,
            stream=stream,
            timestamps=sorted(times),
            foreign=foreign,
            unparsed=unparsed,
            missing=state.errors,
            seconds=seconds,
        )

    def _is_day_list(self, state: _PageState, day: date) -> bool:
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


@dataclass(frozen=True)
class _PageState:
    """What ``_STATE_JS`` saw: the page form and the History list."""

    form: str | None
    error: str
    found: bool
    loading: bool
    items: int
    errors: int
    empty: bool
    srcs: list[str]

    @property
    def settled(self) -> bool:
        """Every History item has its picture or its error: nothing is still loading."""
        return self.items > 0 and len(self.srcs) + self.errors == self.items

    @property
    def signature(self) -> tuple[object, ...]:
        return (self.found, self.items, self.errors, self.empty, tuple(self.srcs))


def _page_shown(state: _PageState) -> _PageState | Literal[False]:
    """The page shows its day picker, its day buttons or an error."""
    return state if state.form is not None else False


class _HistoryReady:
    """WebDriverWait condition: the History of the picked day is complete and stable.

    Complete: no loading mask, and every item holds its picture or its error, or
    the list is empty (an ``el-empty`` block, or no items after a loading mask).
    Of the picked day: the list differs from the one before the pick, or a loading
    mask was seen since, or the page showed no reaction for NO_REACTION_SECONDS;
    and its CDN pictures are not all of other days. Stable: unchanged for
    STABLE_SECONDS, so a list that grows in batches is read whole; an empty list
    picked on a page still busy with its first load (``confirm_empty``) for
    NO_REACTION_SECONDS, as it may be that load's late answer.
    """

    def __init__(
        self,
        discovery: BrowserDiscovery,
        day: date,
        before: tuple[object, ...],
        expect_change: bool,
        confirm_empty: bool,
    ) -> None:
        self.discovery = discovery
        self.day = day
        self.before = before
        self.expect_change = expect_change
        self.confirm_empty = confirm_empty
        self.started = time.monotonic()
        self.saw_loading = False
        self.last: tuple[object, ...] | None = None
        self.since = 0.0

    def __call__(self, driver: WebDriver) -> _PageState | Literal[False]:
        state = self.discovery._state(driver, scroll=True)
        now = time.monotonic()
        waited = now - self.started
        if state.loading:
            self.saw_loading = True
        empty = state.found and state.items == 0
        complete = not state.loading and (
            state.settled
            or (
                empty
                and (state.empty or self.saw_loading or waited >= NO_REACTION_SECONDS)
            )
        )
        reacted = (
            not self.expect_change
            or self.saw_loading
            or state.signature != self.before
            or waited >= NO_REACTION_SECONDS
        )
        if not (complete and reacted and self.discovery._is_day_list(state, self.day)):
            self.last = None
            return False
        if state.signature != self.last:
            self.last, self.since = state.signature, now
            return False
        hold = NO_REACTION_SECONDS if empty and self.confirm_empty else STABLE_SECONDS
        return state if now - self.since >= hold else False


class _Browser:
    """One Chromium under one chromedriver, with a throwaway profile, never Selenium Manager."""

    def __init__(
        self, chromium: str, chromedriver: str, headless: bool, timeout: float
    ) -> None:
        self.profile = tempfile.mkdtemp(prefix="draydog-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        if headless:
            options.add_argument("--headless=new")
        options.add_argument(f"--user-data-dir={self.profile}")
        self.service = ChromeService(executable_path=chromedriver)
        started = time.monotonic()
        try:
            self.service.start()
            address = self.service.service_url
            executor = ChromiumRemoteConnection(
                remote_server_addr=address,
                vendor_prefix="goog",
                browser_name="chrome",
                client_config=ClientConfig(
                    remote_server_addr=address,
                    timeout=math.ceil(timeout) + COMMAND_MARGIN_SECONDS,
                ),
            )
            self.driver = webdriver.Remote(command_executor=executor, options=options)
            self.driver.set_page_load_timeout(timeout)
            self.driver.set_script_timeout(timeout)
        except _BROWSER_ERRORS as exc:
            self.quit(polite=False)
            raise BrowserUnavailable(
                f"could not start {chromium} with {chromedriver}: {exc}; "
                f"check the install (`{INSTALL_HINT}`)"
            ) from exc
        logger.info(
            "Chromium started in %.2f s (%s)", time.monotonic() - started, chromium
        )

    def quit(self, *, polite: bool) -> None:
        """Quit Chromium and chromedriver, make sure none of their processes is left,
        and delete the profile.

        Not polite (the browser failed): do not ask the driver, which may hang; kill it.
        """
        process = getattr(self.service, "process", None)  # unset if it never started
        # Taken first: once Chromium's browser process has gone, its children (the
        # network service, say) are orphans that name no profile yet still write to it.
        handles = _process_handles(self.profile, process.pid if process else None)
        if polite:
            try:
                self.driver.quit()
            except _BROWSER_ERRORS as exc:
                logger.debug("quitting the driver failed: %r", exc)
        if process is not None:
            if not polite:
                process.kill()
                process.wait()  # reaped: stop() skips its HTTP shutdown request
            try:
                self.service.stop()
            except OSError as exc:  # a dying chromedriver resets that request
                logger.debug("stopping chromedriver failed: %r", exc)
        _kill_and_wait(handles)
        shutil.rmtree(self.profile, ignore_errors=True)


def _process_handles(profile: str, driver_pid: int | None) -> list[int]:
    """pidfds of the browser's processes: chromedriver's descendants and those naming
    our ``--user-data-dir`` (orphaned by a killed chromedriver), with theirs.

    Linux only (/proc, pidfd); elsewhere none. A pidfd keeps naming its process even
    if the pid is reused later.
    """
    marker = f"--user-data-dir={profile}".encode()
    roots = set() if driver_pid is None else {driver_pid}
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(proc.name)
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(pid)
            if marker in (proc / "cmdline").read_bytes().split(b"\0"):
                roots.add(pid)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    found: set[int] = set()
    pending = list(roots)
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(children.get(pid, ()))
    handles = []
    for pid in found - {driver_pid}:  # chromedriver is the Service's to stop
        try:
            handles.append(os.pidfd_open(pid))
        except OSError:
            continue
    return handles


def _kill_and_wait(handles: list[int]) -> None:
    """SIGKILL each process and wait until it is gone: a dying Chromium still writes
    into the profile that is deleted next."""
    for handle in handles:
        try:
            signal.pidfd_send_signal(handle, signal.SIGKILL)
        except OSError:
            pass  # already exited
    for handle in handles:
        select.select([handle], [], [], PROCESS_EXIT_SECONDS)
        os.close(handle)


def _first(root: WebDriver | WebElement, choices: tuple[str, ...]) -> WebElement:
    """The first element matching one of the alternative selectors, in order."""
    for selector in choices:
        found = root.find_elements("css selector", selector)
        if found:
            element: WebElement = found[0]
            return element
    raise DiscoveryError(f"nothing on the page matches {' or '.join(choices)}")


def _as_date(day: date | str) -> date:
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    if isinstance(day, str):
        try:
            return date.fromisoformat(day.strip())
        except ValueError as exc:
            raise ValueError(f"not a YYYY-MM-DD day: {day!r}") from exc
    raise TypeError(
        f"day must be a date or a YYYY-MM-DD string, not {type(day).__name__}"
    )


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


# --- page-side scripts: each gets the selectors (asdict(Selectors)) as an argument ---

_STATE_JS = r"""
const sel = arguments[0], scroll = arguments[1];
const shown = el => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
const any = (selector, root) => Array.from((root || document).querySelectorAll(selector)).some(shown);
function historyRoot() {
  for (const s of sel.history_root) { const el = document.querySelector(s); if (el) return el; }
  const want = sel.history_heading_text.toLowerCase();
  for (const heading of document.querySelectorAll(sel.history_heading)) {
    if (heading.textContent.trim().toLowerCase() !== want) continue;
    for (let node = heading.parentElement; node && node !== document.body; node = node.parentElement) {
      if (node.querySelector(sel.item + ',' + sel.empty)) return node;
    }
  }
  return null;
}
let form = null;
const dayText = new RegExp(sel.day_button_text, 'i');
const errorBox = document.querySelector(sel.page_error);
if (sel.picker_input.some(s => any(s))) form = 'picker';
else if (Array.from(document.querySelectorAll(sel.day_button))
           .some(b => dayText.test(b.textContent.replace(/\s+/g, ' ').trim()))) form = 'legacy';
else if (shown(errorBox)) form = 'error';
const root = historyRoot();
const state = {form: form, error: errorBox ? errorBox.textContent.trim() : '', found: !!root,
               loading: any(sel.fullscreen_mask), items: 0, errors: 0, empty: false, srcs: []};
if (!root) return state;
state.loading = state.loading || any(sel.loading_mask, root);
let pending = null;
const items = root.querySelectorAll(sel.item);
state.items = items.length;
for (const item of items) {
  const img = item.querySelector(sel.item_img);
  if (img) state.srcs.push(img.src || img.getAttribute('src') || '');
  else if (item.querySelector(sel.item_error)) state.errors += 1;
  else if (!pending) pending = item;
}
state.empty = any(sel.empty, root);
if (scroll && pending && !state.loading) {
  const box = pending.getBoundingClientRect();
  if (box.bottom < 0 || box.top > innerHeight) pending.scrollIntoView({block: 'center'});
}
return state;
"""
"""The page form and the History list in one round trip; scrolls lazy items into view."""

_PANEL_JS = r"""
const sel = arguments[0];
for (const panel of document.querySelectorAll(sel.panel)) {
  if (panel.getClientRects().length > 0 && getComputedStyle(panel).visibility !== 'hidden') return panel;
}
return null;
"""
"""The open date-picker panel (closed ones stay in the DOM, hidden)."""

_CELL_JS = r"""
const panel = arguments[0], sel = arguments[1], wanted = arguments[2];
let cell = null, today = null;
for (const td of panel.querySelectorAll(sel.day_cell)) {
  if (sel.other_month_classes.some(c => td.classList.contains(c))) continue;
  const number = parseInt(td.textContent.trim(), 10);
  if (td.classList.contains(sel.today_class)) today = number;
  if (number === wanted) cell = td;
}
return [cell, cell ? cell.className : '', today];
"""
"""The shown month's cell of a day number, its classes, and the today cell's number."""

_BUTTON_JS = r"""
const sel = arguments[0];
const norm = s => s.replace(/[\s,]+/g, ' ').trim().toLowerCase();
const want = norm(arguments[1]);
for (const button of document.querySelectorAll(sel.day_button)) {
  if (norm(button.textContent) === want) return button;
}
return null;
"""
"""The older form's button of a day, by its label (``Sat, Sep 6``)."""

_HEADER_JS = r"""
return Array.from(arguments[0].querySelectorAll(arguments[1])).map(e => e.textContent).join(' ');
"""
"""The picker header's labels as one text: ``2025  September``."""
