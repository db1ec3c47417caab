"""interrupt() while Chromium is still starting: the new browser does not survive.

A seam holds the real Browser's construction (real Chromium and chromedriver, on
the replica) until interrupt() has run, which is the window where interrupt()
finds no browser to kill. The browser must then be quit by the read itself: no
process naming its profile is left and the profile is gone. Once through
BrowserDiscovery, once through the downloader leaving a range early, which cuts
(and detaches) the discovery reading the next day ahead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from modules.database import days, models
from modules.downloader import DrayDogDownloader, discovery
from modules.downloader.browser import Browser
from modules.downloader.discovery import BrowserDiscovery, DiscoveryError
from modules.replica.server import ReplicaServer
from tests.discovery.conftest import TIMEOUT, browser_paths

pytestmark = pytest.mark.browser

DAY = date(2025, 9, 10)
WAIT = 60.0


def _processes_with(profile: str) -> list[int]:
    marker = f"--user-data-dir={profile}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "cmdline").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


class HeldStart:
    """Stands in for ``discovery.Browser``: starts the real one, then waits for ``go``."""

    def __init__(self) -> None:
        self.built = threading.Event()
        self.go = threading.Event()
        self.browsers: list[Browser] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Browser:
        browser = Browser(*args, **kwargs)
        self.browsers.append(browser)
        self.built.set()
        assert self.go.wait(WAIT), "the test never let the browser start finish"
        return browser

    def assert_none_left(self) -> None:
        assert self.browsers, "no browser was started"
        for browser in self.browsers:
            assert _processes_with(browser.profile) == []
            assert not Path(browser.profile).exists()

    def clean_up(self) -> None:
        self.go.set()
        for browser in self.browsers:
            if _processes_with(browser.profile) or Path(browser.profile).exists():
                browser.quit(polite=False)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldStart]:
    seam = HeldStart()
    monkeypatch.setattr(discovery, "Browser", seam)
    yield seam
    seam.clean_up()


def test_an_interrupt_while_the_browser_starts_quits_it(
    replica: ReplicaServer,
    new_discovery: Callable[..., BrowserDiscovery],
    held: HeldStart,
) -> None:
    reader = new_discovery()
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(reader.timestamps_for_date(DAY, "in_gate"))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    assert held.built.wait(WAIT)
    reader.interrupt()  # finds no browser yet: the start is held
    held.go.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], DiscoveryError), outcome
    assert "interrupted" in str(outcome[0])
    held.assert_none_left()


def test_a_range_left_early_leaves_no_browser_of_the_read_ahead(
    replica: ReplicaServer,
    sqlite_url: str,
    tmp_path: Path,
    held: HeldStart,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models.configure(sqlite_url)
    models.init_db()
    first, second = DAY, date(2025, 9, 11)
    # The first day is done: the range hands it out without a browser, while the
    # second day's read ahead starts Chromium in the background.
    days.record_day("apm", "in_gate", first, status="complete", listed=1, stored=1)
    interrupt = BrowserDiscovery.interrupt

    def interrupt_then_let_go(self: BrowserDiscovery) -> None:
        interrupt(self)
        held.go.set()  # only now does the held start finish

    monkeypatch.setattr(BrowserDiscovery, "interrupt", interrupt_then_let_go)
    chromium, chromedriver = browser_paths()
    with DrayDogDownloader(
        download_dir=tmp_path / "images",
        app_url=replica.app_url,
        cdn_url=replica.cdn_url,
        timeout=TIMEOUT,
        chromium_path=chromium,
        chromedriver_path=chromedriver,
    ) as downloader:
        reports = downloader.download_days([(first, "in_gate"), (second, "in_gate")])
        day, _, report = next(reports)
        assert day == first and report.recorded == days.COMPLETE
        assert held.built.wait(WAIT)
        reports.close()  # the caller leaves the range: the read ahead is cut
        assert downloader._discovery is None
        held.assert_none_left()
