"""Headless Chromium for the discovery: found on this machine, never downloaded.

Chromium and chromedriver come from the system, not from Selenium Manager, which
would fetch them from the internet. Each browser gets a throwaway profile; quitting
it leaves no process of it running and deletes the profile, even after a crash or
a hang.
"""

from __future__ import annotations

import logging
import math
import os
import select
import shutil
import signal
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection
from selenium.webdriver.remote.client_config import ClientConfig
from urllib3.exceptions import HTTPError as Urllib3Error

from modules.downloader.discovery_errors import BrowserUnavailable

logger = logging.getLogger(__name__)

INSTALL_HINT = "apt-get install chromium chromium-driver"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER_NAMES = ("chromedriver",)
CHROMIUM_ENV = "DRAYDOG_CHROMIUM"
CHROMEDRIVER_ENV = "DRAYDOG_CHROMEDRIVER"
CHROMIUM_FLAGS = (
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
"""Flags that run Chromium in a container with fewer background requests."""
ROOT_FLAGS = ("--no-sandbox",)
"""Chromium refuses to run its sandbox as root; anyone else keeps it."""

COMMAND_MARGIN_SECONDS = 5
"""Added to ``timeout`` for one WebDriver command: a browser slower than that has hung."""
PROCESS_EXIT_SECONDS = 5.0
"""How long to wait for a killed Chromium process to exit before deleting its profile."""
BROWSER_ERRORS = (WebDriverException, Urllib3Error, OSError)
"""What talking to a crashed or hung browser raises."""


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


class Browser:
    """One Chromium under one chromedriver, with a throwaway profile, never Selenium Manager."""

    def __init__(
        self, chromium: str, chromedriver: str, headless: bool, timeout: float
    ) -> None:
        self.profile = tempfile.mkdtemp(prefix="draydog-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS + (ROOT_FLAGS if _is_root() else ()):
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
        except BROWSER_ERRORS as exc:
            self.quit(polite=False)
            raise BrowserUnavailable(
                f"could not start {chromium} with {chromedriver}: {exc}; "
                f"check the install (`{INSTALL_HINT}`)"
            ) from exc
        logger.info(
            "Chromium started in %.2f s (%s)", time.monotonic() - started, chromium
        )

    def run_on_every_page(self, script: str) -> None:
        """Run ``script`` in every page this browser loads, before the page's own."""
        self._cdp("Page.addScriptToEvaluateOnNewDocument", {"source": script})

    def block_urls(self, patterns: list[str]) -> None:
        """Make the page's requests to these URL patterns (``*`` wildcards) fail at
        once; an empty list lifts the block."""
        self._cdp("Network.enable", {})
        self._cdp("Network.setBlockedURLs", {"urls": patterns})

    def _cdp(self, command: str, params: dict[str, object]) -> None:
        self.driver.execute("executeCdpCommand", {"cmd": command, "params": params})

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
            except BROWSER_ERRORS as exc:
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


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


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
