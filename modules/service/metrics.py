"""The watch's Prometheus metrics and its HTTP endpoint (/metrics, /healthz) on 127.0.0.1.

Each watch has a registry of its own rather than prometheus_client's global one,
so several watches (tests, say) in one process never share or clash on a metric.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from types import TracebackType
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from modules.service.health import Health, Key

logger = logging.getLogger(__name__)

LABELS = ("terminal", "stream")
SECONDS_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
_REASONS = (
    (re.compile(r"^404"), "not_found"),
    (re.compile(r"^403"), "forbidden"),
    (re.compile(r"failed to load on the page"), "page"),
    (re.compile(r"longer than the timeout|Timeout"), "timeout"),
    (re.compile(r"connection failed|interrupted"), "connection"),
    (re.compile(r"truncated|empty body"), "truncated"),
    (re.compile(r"not a JPEG"), "not_jpeg"),
    (re.compile(r"too large"), "too_large"),
    (re.compile(r"HTTP (429|5\d\d)"), "server_error"),
    (re.compile(r"HTTP \d+"), "http_status"),
    (re.compile(r"cannot write"), "disk"),
)


def reason_label(reason: str | None) -> str:
    """A failure's reason as one of a few label values (a label per message would explode)."""
    text = (reason or "").removeprefix("thumbnail: ")
    for pattern, label in _REASONS:
        if pattern.search(text):
            return label
    return "other"


class WatchMetrics:
    """The counters, histograms and gauges of one watch, in its own registry."""

    def __init__(self, health: Health, keys: list[Key]) -> None:
        self.registry = CollectorRegistry()
        self.health = health
        r = self.registry
        self.downloaded = Counter(
            "draydog_pictures_downloaded",
            "Pictures fetched and stored, by kind (full or thumbnail).",
            [*LABELS, "kind"],
            registry=r,
        )
        self.failed = Counter(
            "draydog_pictures_failed",
            "Pictures that could not be had, by reason.",
            [*LABELS, "reason"],
            registry=r,
        )
        self.bytes = Counter(
            "draydog_downloaded_bytes", "Bytes of pictures stored.", LABELS, registry=r
        )
        self.rows_failed = Counter(
            "draydog_rows_failed",
            "Rows that could not be written (the files stay; the next cycle retries).",
            LABELS,
            registry=r,
        )
        self.cycles = Counter(
            "draydog_stream_cycles",
            "Cycles of a stream, by outcome (ok, failed).",
            [*LABELS, "outcome"],
            registry=r,
        )
        self.discovery_seconds = Histogram(
            "draydog_discovery_seconds",
            "Seconds to read a day's list from the camera page.",
            LABELS,
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.download_seconds = Histogram(
            "draydog_download_seconds",
            "Seconds to fetch and record a day's pictures.",
            LABELS,
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        newest = Gauge(
            "draydog_newest_picture_timestamp_seconds",
            "Capture time (Unix) of the stream's newest picture in the archive.",
            LABELS,
            registry=r,
        )
        lag = Gauge(
            "draydog_lag_seconds",
            "Seconds the stream's newest archived picture is behind now.",
            LABELS,
            registry=r,
        )
        failures = Gauge(
            "draydog_stream_consecutive_failures",
            "Cycles of the stream that failed in a row.",
            LABELS,
            registry=r,
        )
        for key in keys:
            newest.labels(*key).set_function(_bound(self._newest, key))
            lag.labels(*key).set_function(_bound(health.lag, key))
            failures.labels(*key).set_function(_bound(health.failures, key))

    def _newest(self, key: Key) -> float:
        newest = self.health.newest(key)
        return float("nan") if newest is None else newest.timestamp()

    def scrape(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


def _bound(read: Callable[[Key], float], key: Key) -> Callable[[], float]:
    """``read`` of one stream, as a gauge's function (read at each scrape)."""
    return lambda: float(read(key))


class MetricsServer:
    """/metrics and /healthz on ``host:port`` (port 0 picks a free one) on a daemon thread."""

    def __init__(
        self, metrics: WatchMetrics, port: int, host: str = "127.0.0.1"
    ) -> None:
        self.metrics = metrics
        self._httpd = _Server((host, port), metrics)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="draydog-metrics",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def __enter__(self) -> MetricsServer:
        self._thread.start()
        logger.info("metrics and health on http://127.0.0.1:%d/", self.port)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], metrics: WatchMetrics) -> None:
        self.metrics = metrics
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server_version = "draydog-watch"

    def do_GET(self) -> None:
        assert isinstance(self.server, _Server)
        metrics = self.server.metrics
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, metrics.scrape())
        elif path == "/healthz":
            healthy, body = metrics.health.report()
            payload = json.dumps(body, indent=1).encode()
            self._send(200 if healthy else 503, "application/json", payload)
        else:
            self._send(404, "text/plain", b"try /metrics or /healthz\n")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
