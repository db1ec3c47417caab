"""Fixtures: one replica for the session, one shared headless Chromium per module.

Browser tests skip when Chromium or chromedriver is missing, unless
DRAYDOG_REQUIRE_BROWSER=1 (CI), where a missing browser fails them instead. The
same holds for the real widget's assets (Vue 2.7 and Element UI 2.15, fetched by
``scripts/fetch-widget.sh``): the replica serves its camera page on the real widget
by default, and the tests that are about that page (``widget_page``, and every test
using the shared ``discovery``) fail without the assets in CI and skip elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from modules.downloader import DrayDogDownloader
from modules.downloader.browser import find_browser
from modules.downloader.discovery import BrowserDiscovery, BrowserUnavailable
from modules.replica import widget
from modules.replica.page import PageOptions
from modules.replica.schedule import Schedule
from modules.replica.server import Faults, ReplicaServer

TERMINAL = "apm"
TODAY = date(2025, 9, 20)
EMPTY_DAY = date(2025, 9, 14)
FIRST_DAY = date(2024, 6, 1)
SCHEDULE = Schedule(today=TODAY, empty_days=frozenset({EMPTY_DAY}), first_day=FIRST_DAY)
TIMEOUT = 20.0
REQUIRE_ENV = "DRAYDOG_REQUIRE_BROWSER"


def expected(day: date, stream: str = "in_gate") -> list[str]:
    """The replica's capture times of ``day`` as discovery reports them."""
    return [moment.isoformat() for moment in SCHEDULE.timestamps(TERMINAL, stream, day)]


def browser_downloader(
    replica: ReplicaServer, root: Path, *, persist: bool
) -> DrayDogDownloader:
    """A downloader on the replica and this machine's Chromium, archiving into ``root``."""
    chromium, chromedriver = browser_paths()
    return DrayDogDownloader(
        download_dir=root,
        app_url=replica.app_url,
        cdn_url=replica.cdn_url,
        timeout=TIMEOUT,
        retry_delay=0.01,
        persist=persist,
        chromium_path=chromium,
        chromedriver_path=chromedriver,
    )


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def browser_paths() -> tuple[str, str]:
    """Chromium and chromedriver, or skip (fail under DRAYDOG_REQUIRE_BROWSER=1)."""
    try:
        return find_browser()
    except BrowserUnavailable as exc:
        if _required():
            pytest.fail(f"{REQUIRE_ENV}=1 but {exc}")
        pytest.skip(f"no browser: {exc}")  # exc names the apt-get install line


def require_widget() -> None:
    """Skip unless the real widget's assets are cached (fail under DRAYDOG_REQUIRE_BROWSER=1)."""
    missing = widget.missing_assets()
    if not missing:
        return
    message = (
        f"the real widget's assets are missing from {widget.widget_dir()} "
        f"({', '.join(missing)}); fetch them with `{widget.FETCH_HINT}`"
    )
    if _required():
        pytest.fail(f"{REQUIRE_ENV}=1 but {message}")
    pytest.skip(message)


@pytest.fixture
def widget_page() -> None:
    """The test is about the camera page on the real widget: its assets must be there."""
    require_widget()


@pytest.fixture(scope="session")
def replica() -> Iterator[ReplicaServer]:
    with ReplicaServer(SCHEDULE) as server:
        yield server


@pytest.fixture
def page_options(replica: ReplicaServer) -> Iterator[Callable[..., None]]:
    """Set the replica's PageOptions for one test; the defaults come back after it."""

    def apply(**options: Any) -> None:
        replica.page_options = PageOptions(**options)

    yield apply
    replica.page_options = PageOptions()


@pytest.fixture
def faults(replica: ReplicaServer) -> Iterator[Callable[..., None]]:
    """Set the replica's CDN Faults for one test; none after it."""

    def apply(**options: Any) -> None:
        replica.faults = Faults(**options)

    yield apply
    replica.faults = Faults()


@pytest.fixture
def history_failures(replica: ReplicaServer) -> Iterator[ReplicaServer]:
    """The replica, whose ``history_failures`` are set back to 0 after the test."""
    yield replica
    replica.history_failures = 0


@pytest.fixture
def new_discovery(replica: ReplicaServer) -> Iterator[Callable[..., BrowserDiscovery]]:
    """Make discovery objects with their own browser; all are closed after the test.

    ``make(server=...)`` points one at another replica (a schedule of its own)."""
    made: list[BrowserDiscovery] = []
    chromium, chromedriver = browser_paths()

    def make(
        timeout: float = TIMEOUT,
        server: ReplicaServer | None = None,
        app_url: str | None = None,
    ) -> BrowserDiscovery:
        site = server or replica
        made.append(
            BrowserDiscovery(
                app_url or site.app_url,
                site.cdn_url,
                TERMINAL,
                timeout=timeout,
                chromium_path=chromium,
                chromedriver_path=chromedriver,
            )
        )
        return made[-1]

    yield make
    for discovery in made:
        discovery.close()


@pytest.fixture(scope="module")
def discovery(replica: ReplicaServer) -> Iterator[BrowserDiscovery]:
    """The module's shared browser on the real-widget page: started on first use,
    reused across days and streams."""
    chromium, chromedriver = browser_paths()
    require_widget()
    with BrowserDiscovery(
        replica.app_url,
        replica.cdn_url,
        TERMINAL,
        timeout=TIMEOUT,
        chromium_path=chromium,
        chromedriver_path=chromedriver,
    ) as shared:
        yield shared
