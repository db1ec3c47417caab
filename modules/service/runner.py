"""Running a watch as a service: signals, the stop deadline, the metrics endpoint.

The loop runs on a worker thread and the main thread waits for it, because only
the main thread hears signals: SIGTERM or SIGINT stops the watch (fetches in flight
are cut, the browser is killed), then the worker has ``stop_timeout`` seconds to
write the rows of the files it completed and quit. A service manager's grace
period is thereby never the thing that ends it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from modules.service.metrics import MetricsServer
from modules.service.watch import CycleResult, Watch

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
JOIN_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Outcome:
    """How a watch run ended."""

    result: CycleResult | None
    """The last cycle's result; None if the loop itself crashed."""
    signalled: bool
    stopped_in_time: bool


def serve(
    watch: Watch, *, once: bool, on_metrics_port: Callable[[int], None] | None = None
) -> Outcome:
    """Run ``watch`` until a signal (or one cycle with ``once``), with /metrics if configured."""
    port = watch.config.metrics_port
    with contextlib.ExitStack() as stack:
        if port is not None:
            server = stack.enter_context(MetricsServer(watch.metrics, port))
            if on_metrics_port is not None:
                on_metrics_port(server.port)
        return _run_in_worker(watch, once)


def _run_in_worker(watch: Watch, once: bool) -> Outcome:
    results: list[CycleResult] = []
    signalled = threading.Event()

    def work() -> None:
        try:
            results.append(watch.run(once=once))
        except Exception:
            logger.exception("the watch loop crashed")

    worker = threading.Thread(target=work, name="draydog-watch", daemon=True)
    with _stop_on_signals(watch, signalled):
        worker.start()
        while worker.is_alive() and not signalled.is_set():
            worker.join(JOIN_POLL_SECONDS)
    if signalled.is_set():
        worker.join(watch.config.stop_timeout)
    stopped_in_time = not worker.is_alive()
    if not stopped_in_time:
        logger.error(
            "the watch did not stop within %.0f s; leaving anyway",
            watch.config.stop_timeout,
        )
    return Outcome(results[0] if results else None, signalled.is_set(), stopped_in_time)


@contextlib.contextmanager
def _stop_on_signals(watch: Watch, signalled: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT stop ``watch`` (the first one; later ones are only logged)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signalled.is_set():
            logger.warning("%s again: already stopping", name)
            return
        logger.warning("%s: stopping", name)
        signalled.set()
        started = time.monotonic()
        watch.stop()
        logger.info("interrupted what ran in %.2f s", time.monotonic() - started)

    previous = {number: signal.signal(number, handle) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
