"""Chromium's command line: the sandbox stays on unless the process runs as root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException

from modules.downloader import browser as browser_module
from modules.downloader.browser import ROOT_FLAGS, Browser
from modules.downloader.discovery_errors import BrowserUnavailable


class _FakeService:
    """A chromedriver service that starts nothing."""

    def __init__(self, executable_path: str) -> None:
        self.path = executable_path
        self.service_url = "http://127.0.0.1:9"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def _arguments(monkeypatch: pytest.MonkeyPatch, euid: int) -> list[str]:
    """Chromium's arguments as Browser builds them for a process of this ``euid``."""
    seen: list[list[str]] = []

    def remote(*, command_executor: object, options: object) -> None:
        seen.append(list(getattr(options, "arguments")))
        raise WebDriverException("no browser in this test")

    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(browser_module, "ChromeService", _FakeService)
    monkeypatch.setattr(webdriver, "Remote", remote)
    with pytest.raises(BrowserUnavailable) as raised:
        Browser("/usr/bin/chromium", "/usr/bin/chromedriver", True, 5.0)
    assert "no browser in this test" in str(raised.value)
    assert len(seen) == 1
    profile = next(a for a in seen[0] if a.startswith("--user-data-dir="))
    assert not Path(profile.split("=", 1)[1]).exists()  # removed on the way out
    return seen[0]


def test_chromium_keeps_its_sandbox_when_not_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arguments = _arguments(monkeypatch, 1000)
    assert "--no-sandbox" not in arguments
    assert "--headless=new" in arguments


def test_chromium_runs_without_sandbox_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    arguments = _arguments(monkeypatch, 0)
    assert ROOT_FLAGS == ("--no-sandbox",)
    assert arguments.count("--no-sandbox") == 1
