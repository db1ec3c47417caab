"""A remote control command by which a worker's pool process stops its worker.

A pool process that finds this machine cannot archive any more (the browser will not
start: :class:`BrowserUnavailable`) hands its task back to the queue and broadcasts
``draydog_broken`` to its own worker only: the worker logs the reason and shuts down
with exit status 3 (what ``draydog worker`` exits with when the preflight finds the
same), so a service manager and its operator see a failure, and healthy workers
take the queue.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import WorkerShutdown
from celery.worker.control import control_command

logger = logging.getLogger(__name__)

EXIT_BROKEN = 3
"""The exit status of a worker that cannot archive (no browser, no database)."""


@control_command(args=[("reason", str)], signature="<reason>")
def draydog_broken(state: Any, reason: str = "", **kwargs: Any) -> None:
    """Stop this worker (warm: tasks in progress finish) with exit status 3."""
    logger.critical("this worker cannot archive, so it stops: %s", reason)
    raise WorkerShutdown(EXIT_BROKEN)
