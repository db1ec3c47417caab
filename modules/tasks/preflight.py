"""A worker whose own environment is broken must not consume tasks.

Without a browser every day fails in milliseconds; a worker that took tasks anyway
would fail the whole queue while healthy workers got nothing. So before a worker
consumes, it checks what each task needs: the browser and its driver run, the
database answers (a new one is created at the newest revision, an outdated one is
refused) and the archive folder takes a file (or the bucket of ``s3://`` answers). If anything is missing the worker
stops with the reason and a nonzero exit status, and its share goes to the others.

``draydog worker`` runs the check itself before starting Celery (one line on
stderr); under ``celery -A modules.tasks.app worker`` the :class:`Preflight`
bootstep runs it before the consumer starts.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from typing import Any

from celery import bootsteps

logger = logging.getLogger(__name__)

_checked = False


class EnvironmentBroken(RuntimeError):
    """This machine cannot archive: no browser, no database, no archive folder."""


def mark_checked() -> None:
    """The check passed in this process already (``draydog worker`` ran it)."""
    global _checked
    _checked = True


def check_environment() -> None:
    """Raise :class:`EnvironmentBroken` with the reason unless this worker can archive."""
    from modules.tasks.process import downloader_settings
    from modules.tasks.settings import retry_policy

    try:  # a bad retry delay would only show at the first retry
        retry_policy()
    except ValueError as exc:
        raise EnvironmentBroken(str(exc)) from exc
    config = downloader_settings()
    _check_browser(config.chromium, config.chromedriver)
    _check_database()
    _check_archive(config.archive)


def _check_browser(chromium: str | None, chromedriver: str | None) -> None:
    from modules.downloader.browser import find_browser
    from modules.downloader.discovery_errors import BrowserUnavailable

    try:
        found = find_browser(chromium, chromedriver)
    except BrowserUnavailable as exc:
        raise EnvironmentBroken(f"no browser: {exc}") from exc
    for binary in found:
        try:
            subprocess.run(
                [binary, "--version"],
                check=True,
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise EnvironmentBroken(
                f"no browser: {binary} does not run: {exc}"
            ) from exc


def _check_database() -> None:
    from modules.database import models

    url = models.database_url()
    try:
        engine = models.build_engine(url)
    except Exception as exc:
        raise EnvironmentBroken(f"no database: {_first_line(exc)}") from exc
    try:
        # Creates a new database at the newest revision; refuses an outdated one.
        models.prepare_schema(engine)
    except Exception as exc:
        raise EnvironmentBroken(f"no database: {_first_line(exc)}") from exc
    finally:
        engine.dispose()  # no connection is inherited by the pool's processes


def _check_archive(archive: str) -> None:
    """A folder takes a file; a bucket exists and answers (``--dir s3://...``)."""
    from modules.storage import LocalStorage, StorageError, open_storage

    try:
        storage = open_storage(archive)
        storage.check()
    except (ValueError, StorageError) as exc:
        raise EnvironmentBroken(f"no archive at {archive}: {exc}") from exc
    if not isinstance(storage, LocalStorage):
        return
    try:
        os.makedirs(storage.root, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=storage.root, prefix=".draydog-check-"):
            pass
    except OSError as exc:
        raise EnvironmentBroken(
            f"archive folder {archive} is not writable: {exc.strerror or exc}"
        ) from exc


class Preflight(bootsteps.StartStopStep):
    """The check as a worker bootstep: a failure stops the worker before it consumes."""

    label = "draydog preflight"

    def start(self, parent: Any) -> None:
        if _checked:
            return
        try:
            check_environment()
        except EnvironmentBroken as exc:
            logger.critical(
                "this worker cannot archive, so it takes no task: %s (pid %d)",
                exc,
                os.getpid(),
            )
            raise
        mark_checked()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
