"""Each worker process keeps one downloader, and so one browser, for all its tasks.

Created lazily by the first task (a pool process that never gets one never starts
a browser), replaced when a task is for another terminal, and quit when the process
exits (``worker_process_shutdown``; ``worker_shutdown`` for the solo and thread
pools), so no Chromium outlives its worker. The parent process opens no database
connection a pool process could inherit (the preflight disposes of its own engine);
each process connects on its first task.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from celery.signals import worker_process_shutdown, worker_shutdown

from modules.database import models
from modules.downloader.browser import CHROMEDRIVER_ENV, CHROMIUM_ENV
from modules.downloader.selenium_client import DrayDogDownloader
from modules.tasks import settings

logger = logging.getLogger(__name__)

APP_URL_ENV = "DRAYDOG_APP_URL"
CDN_URL_ENV = "DRAYDOG_CDN_URL"
DEFAULT_ARCHIVE = "data/images"


@dataclass(frozen=True)
class DownloaderSettings:
    """What a worker's downloader is built with, from the environment."""

    archive: str
    app_url: str
    cdn_url: str
    chromium: str | None
    chromedriver: str | None
    fetch_workers: int


def downloader_settings() -> DownloaderSettings:
    """``$DRAYDOG_ARCHIVE``, ``$DRAYDOG_APP_URL``, ``$DRAYDOG_CDN_URL``,
    ``$DRAYDOG_CHROMIUM``, ``$DRAYDOG_CHROMEDRIVER``, ``$DRAYDOG_FETCH_WORKERS``
    (the database is ``$DATABASE_URL``, read by :mod:`modules.database.models`)."""
    return DownloaderSettings(
        archive=os.environ.get(models.ARCHIVE_ENV) or DEFAULT_ARCHIVE,
        app_url=os.environ.get(APP_URL_ENV) or "https://app.draydog.com",
        cdn_url=os.environ.get(CDN_URL_ENV) or "https://cdn.draydog.com",
        chromium=os.environ.get(CHROMIUM_ENV) or None,
        chromedriver=os.environ.get(CHROMEDRIVER_ENV) or None,
        fetch_workers=settings.fetch_workers(),
    )


_lock = threading.Lock()
_downloader: DrayDogDownloader | None = None


def downloader_for(terminal: str) -> DrayDogDownloader:
    """This process's downloader for ``terminal`` (the one browser it keeps)."""
    global _downloader
    with _lock:
        if _downloader is not None and _downloader.terminal != terminal:
            _downloader.close()
            _downloader = None
        if _downloader is None:
            config = downloader_settings()
            _downloader = DrayDogDownloader(
                download_dir=config.archive,
                terminal=terminal,
                app_url=config.app_url,
                cdn_url=config.cdn_url,
                max_workers=config.fetch_workers,
                chromium_path=config.chromium,
                chromedriver_path=config.chromedriver,
            )
            logger.info("process %d: a downloader for %s", os.getpid(), terminal)
        return _downloader


def close_downloader() -> None:
    """Quit this process's browser and close its HTTP session (idempotent)."""
    global _downloader
    with _lock:
        downloader, _downloader = _downloader, None
    if downloader is not None:
        logger.info("process %d: quitting its browser", os.getpid())
        downloader.close()


@worker_process_shutdown.connect
def _on_process_shutdown(**kwargs: Any) -> None:
    close_downloader()


@worker_shutdown.connect
def _on_worker_shutdown(**kwargs: Any) -> None:
    close_downloader()


def restart_browser() -> None:
    """A fresh browser for the next task (after a page failure)."""
    with _lock:
        downloader = _downloader
    if downloader is not None:
        downloader.restart_browser()
