"""The replica's HTTP server: DrayDog's CDN, the camera page, and fault knobs.

One threaded server on 127.0.0.1 answers both hosts of the real site: the camera
page (delegated to ``modules.replica.page.route``) and the CDN under ``/cdn/``. A
picture exists iff the ``Schedule`` says so. ``Faults`` make the CDN misbehave the
way real networks do, deterministically per URL so tests are reproducible.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from modules.site.urls import ImageRef, build_image_url, parse_image_url
from modules.replica.jpeg import DEFAULT_SIZE, picture_bytes
from modules.replica.page import PageOptions, route
from modules.replica.schedule import Schedule

logger = logging.getLogger(__name__)

CDN_PREFIX = "/cdn"
DEFAULT_PORT = 8765
ENDLESS_CAP = 200 * 1024 * 1024
"""An endless answer stops after this many bytes, so a careless client still ends."""
HTML_BODY = (
    b"<html><head><title>DrayDog</title></head><body>Please wait...</body></html>"
)
"""What the html fault answers with status 200, like a captive portal or an error page."""
_PICTURE_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "Access-Control-Allow-Origin": "*",
}

_CLIENT_GONE = (
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    TimeoutError,
)


class Fault(str, Enum):
    """What a faulty picture URL does instead of answering, in order of precedence."""

    RESET = "reset"
    RETRY_AFTER = "retry_after"
    ERROR = "error"
    HTML = "html"
    TRUNCATED = "truncated"
    ENDLESS = "endless"
    OVERSIZE = "oversize"


@dataclass
class Faults:
    """How the CDN misbehaves; assign a new one to a running server at any time.

    Each ``*_rate`` picks that fraction of picture URLs by a hash of ``seed``, the
    knob and the URL *path* (``/cdn/apm/2025-09-06/23/2025-09-06T23:07:34-in_gate.jpeg``;
    the full-size and thumbnail paths are drawn separately, the host does not count).
    A picked URL misbehaves for its first ``errors_per_url`` requests and then
    answers normally, or forever when that is 0; 429 always lasts at least one
    request. With every failure rate at 0 (the missing rates aside), ``errors_per_url``
    alone makes every picture URL answer 503 for its first N requests. When one URL is
    picked by several knobs the first in ``Fault`` order wins; ``hang`` only delays,
    then the rest applies. Faults touch only pictures that exist; ``latency`` delays
    every CDN answer, 404s included.

    ``missing_rate``/``missing_full_rate``/``missing_thumbnail_rate`` (a thumbnail
    that fails to load in the page while its full-size picture exists) are
    permanent states, not failures: they
    are drawn per picture (``terminal/stream/wall-clock ISO time``) so both URL forms
    agree. ``missing``, ``missing_full`` and ``missing_thumbnail`` list wall-clock ISO times
    (``"2025-09-06T23:07:34"``) missing on every terminal and stream.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    errors_per_url: int = 0
    retry_after_rate: float = 0.0
    retry_after: float = 1.0
    missing_full_rate: float = 0.0
    missing_rate: float = 0.0
    truncated_rate: float = 0.0
    html_rate: float = 0.0
    reset_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 5.0
    endless_rate: float = 0.0
    oversize_rate: float = 0.0
    oversize_bytes: int = 25 * 1024 * 1024
    picture_bytes: int = DEFAULT_SIZE
    seed: int = 0
    missing_full: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()
    missing_thumbnail_rate: float = 0.0
    missing_thumbnail: frozenset[str] = frozenset()
    missing_status: int = 404
    """What a missing picture answers: 404, or 403 as a CDN in front of S3 does."""

    def __post_init__(self) -> None:
        if self.missing_status not in (403, 404):
            raise ValueError(
                f"missing_status must be 403 or 404, not {self.missing_status}"
            )
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{item.name} must be within 0..1, not {value}")
            if item.name != "seed" and isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"{item.name} must not be negative, not {value}")

    def is_missing(
        self, terminal: str, stream: str, wall_time: datetime, thumbnail: bool
    ) -> bool:
        """Whether the CDN answers 404 for this existing picture (or its thumbnail)."""
        stamp = wall_time.isoformat()
        key = f"{terminal}/{stream}/{stamp}"
        if stamp in self.missing or self._picks(self.missing_rate, "missing", key):
            return True
        if thumbnail:
            return stamp in self.missing_thumbnail or self._picks(
                self.missing_thumbnail_rate, "missing_thumbnail", key
            )
        return stamp in self.missing_full or self._picks(
            self.missing_full_rate, "missing_full", key
        )

    def fault_for(self, path: str, attempt: int) -> Fault | None:
        """The fault of the ``attempt``-th (1-based) request to ``path``, if any."""
        for fault in Fault:
            rate = (
                self._error_rate() if fault is Fault.ERROR else self._rate(fault.value)
            )
            lasts = (
                max(1, self.errors_per_url)
                if fault is Fault.RETRY_AFTER
                else self.errors_per_url
            )
            if self._picks(rate, fault.value, path) and (
                lasts == 0 or attempt <= lasts
            ):
                return fault
        return None

    def hangs(self, path: str, attempt: int) -> bool:
        """Whether the ``attempt``-th request to ``path`` waits ``hang_seconds`` first."""
        lasts = self.errors_per_url
        return self._picks(self.hang_rate, "hang", path) and (
            lasts == 0 or attempt <= lasts
        )

    def _rate(self, knob: str) -> float:
        return float(getattr(self, f"{knob}_rate"))

    def _error_rate(self) -> float:
        others = [self.hang_rate] + [
            self._rate(f.value) for f in Fault if f is not Fault.ERROR
        ]
        if self.error_rate == 0 and self.errors_per_url > 0 and not any(others):
            return 1.0
        return self.error_rate

    def _picks(self, rate: float, knob: str, key: str) -> bool:
        if rate <= 0:
            return False
        digest = hashlib.blake2b(
            f"{self.seed}|{knob}|{key}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64 < rate


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server received it (``monotonic`` from ``time.monotonic()``)."""

    method: str
    path: str
    monotonic: float
    query: str = ""
    """The query string, as sent (``date=2025-09-10&offset=0``)."""


class ReplicaServer:
    """The replica on a background thread: ``with ReplicaServer() as server: ...``.

    ``schedule``, ``faults`` and ``page_options`` are read per request, so tests may
    swap them while it runs. Counters are keyed by unquoted URL path.
    """

    def __init__(
        self,
        schedule: Schedule | None = None,
        faults: Faults | None = None,
        page_options: PageOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.schedule = schedule if schedule is not None else Schedule()
        self.faults = faults if faults is not None else Faults()
        self.page_options = page_options if page_options is not None else PageOptions()
        self.host = host
        self._wanted_port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._counts: Counter[str] = Counter()
        self.history_failures = 0
        """How many of the next History requests fail (503), as a flaky API does."""

    def start(self) -> ReplicaServer:
        """Bind and serve on a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("the replica is already running")
        self._httpd = _HTTPServer((self.host, self._wanted_port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"replica-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("replica serving on %s (CDN %s)", self.base_url, self.cdn_url)
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections (keep-alive, hanging, endless ones)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        thread.join()
        self._httpd = self._thread = None
        logger.info("replica stopped")

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        if self._httpd is None:
            raise RuntimeError("the replica is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def app_url(self) -> str:
        """Where the camera page lives (the real site's app.draydog.com)."""
        return self.base_url

    @property
    def cdn_url(self) -> str:
        """The CDN root to give ``build_image_url`` (the real site's cdn.draydog.com)."""
        return self.base_url + CDN_PREFIX

    @property
    def foreign_cdn_url(self) -> str:
        """The same CDN under another host name, for pictures "on another host"."""
        return f"http://localhost:{self.port}{CDN_PREFIX}"

    def requests_for(self, path_or_url: str) -> int:
        """How many requests (GET and HEAD) reached this path or URL since the last reset."""
        with self._lock:
            return self._counts[_path_of(path_or_url)]

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    @property
    def total_requests(self) -> int:
        with self._lock:
            return len(self._log)

    def reset_counters(self) -> None:
        with self._lock:
            self._log.clear()
            self._counts.clear()

    def take_history_failure(self) -> bool:
        """Whether this History request fails: one of ``history_failures`` is used up."""
        with self._lock:
            if self.history_failures <= 0:
                return False
            self.history_failures -= 1
            return True

    def _record(self, method: str, path: str, query: str = "") -> int:
        """Log a request; returns how many requests this path has had, this one included."""
        with self._lock:
            self._log.append(RequestRecord(method, path, time.monotonic(), query))
            self._counts[path] += 1
            return self._counts[path]


def run_forever(
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    schedule: Schedule | None = None,
    faults: Faults | None = None,
    page_options: PageOptions | None = None,
    on_ready: Callable[[ReplicaServer], None] | None = None,
) -> None:
    """Serve until KeyboardInterrupt; ``on_ready`` gets the running server (to show its URL)."""
    with ReplicaServer(schedule, faults, page_options, host, port) as server:
        if on_ready is not None:
            on_ready(server)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logger.info("interrupted")


def _path_of(path_or_url: str) -> str:
    return unquote(urlsplit(path_or_url).path)


class _HTTPServer(ThreadingHTTPServer):
    """Knows its ReplicaServer and its open connections, so stop() can cut them."""

    daemon_threads = True
    request_queue_size = 128
    """A CDN takes bursts of new connections: with socketserver's backlog of 5, a
    burst (8 workers reconnecting after resets) overflows it, the kernel drops SYNs
    and clients see connect timeouts the replica never logged."""

    def __init__(self, address: tuple[str, int], replica: ReplicaServer) -> None:
        self.replica = replica
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, _CLIENT_GONE):
            logger.debug("client %s went away: %r", client_address, error)
        else:
            logger.exception("error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    """One connection: the page first, then CDN paths, else 404."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real CDN offers
    # Headers and body go out in separate writes: with Nagle on, the body waits for
    # the client's delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server_version = "DrayDogReplica/1.0"
    timeout = 30  # idle keep-alive connections and stalled writes end

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _answer(self, head: bool) -> None:
        assert isinstance(self.server, _HTTPServer)
        replica = self.server.replica
        split = urlsplit(self.path)
        path = unquote(split.path)
        attempt = replica._record(self.command, path, split.query)
        try:
            response = route(path, parse_qs(split.query), replica)
            if response is not None:
                self._send(
                    response.status,
                    response.content_type,
                    response.body,
                    head,
                    response.headers,
                )
            elif path.startswith(CDN_PREFIX + "/"):
                self._cdn(replica, path, attempt, head)
            else:
                self._send(404, "text/plain", b"Not Found\n", head)
        except _CLIENT_GONE as error:
            logger.debug("client went away during %s %s: %r", self.command, path, error)
            self.close_connection = True

    def _cdn(self, replica: ReplicaServer, path: str, attempt: int, head: bool) -> None:
        faults, schedule = replica.faults, replica.schedule
        if faults.latency:
            time.sleep(faults.latency)
        ref = _find_picture(schedule, path[len(CDN_PREFIX) :])
        if ref is None or faults.is_missing(
            ref.terminal, ref.stream, ref.local_time, ref.is_thumbnail
        ):
            status = faults.missing_status
            self._send(
                status, "text/plain", f"{HTTPStatus(status).phrase}\n".encode(), head
            )
            return
        if faults.hangs(path, attempt):
            time.sleep(faults.hang_seconds)
        fault = faults.fault_for(path, attempt)
        if fault is Fault.RESET:
            self._reset()
            return
        if fault is Fault.RETRY_AFTER:
            # Whole seconds as HTTP says; a fraction (fast tests) keeps its decimals.
            seconds = f"{faults.retry_after:.3f}".rstrip("0").rstrip(".")
            headers = {"Retry-After": seconds}
            self._send(429, "text/plain", b"Too Many Requests\n", head, headers)
            return
        if fault is Fault.ERROR:
            self._send(503, "text/plain", b"Service Unavailable\n", head)
            return
        if fault is Fault.HTML:
            self._send(200, "text/html; charset=utf-8", HTML_BODY, head)
            return
        size = (
            faults.oversize_bytes if fault is Fault.OVERSIZE else faults.picture_bytes
        )
        body = picture_bytes(
            ref.terminal,
            ref.stream,
            ref.local_time,
            thumbnail=ref.is_thumbnail,
            size=size,
        )
        if fault is Fault.TRUNCATED:
            self._send_truncated(body, head)
        elif fault is Fault.ENDLESS:
            self._send_endless(body, head)
        else:
            self._send(200, "image/jpeg", body, head, _PICTURE_HEADERS)

    def _send(
        self,
        status: int,
        content_type: str,
        body: bytes,
        head: bool,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _reset(self) -> None:
        """Close the connection with a TCP reset and no answer at all."""
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.connection.close()
        self.close_connection = True

    def _send_truncated(self, body: bytes, head: bool) -> None:
        """Promise the whole body, send half, hang up."""
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body[: len(body) // 2])
        self.close_connection = True

    def _send_endless(self, body: bytes, head: bool) -> None:
        """A JPEG answer without Content-Length that streams until the client leaves."""
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent = 0
        while not head and sent < ENDLESS_CAP:
            self.wfile.write(body)
            sent += len(body)


def _find_picture(schedule: Schedule, cdn_path: str) -> ImageRef | None:
    """The picture a CDN path names, if the schedule has it and the path is well formed.

    ISO names must sit in their own date and hour folder (hour as ``7`` or ``07``);
    in the Unix form the number wins over the folders, as in the parser. An ISO name
    is a wall-clock time, which names one picture even in the repeated autumn hour
    (no two captures share a second), so both occurrences are served; a Unix name is
    an exact instant and must be that picture's.
    """
    try:
        ref = parse_image_url(cdn_path, schedule.source_timezone)
        moment = ref.timestamp if ref.exact else ref.local_time
        if not schedule.has_picture(ref.terminal, ref.stream, moment):
            return None
    except ValueError:
        return None
    name = cdn_path.rsplit("/", 1)[-1]
    if name[:10].isdigit():
        return ref
    canonical = build_image_url(
        "",
        ref.terminal,
        ref.stream,
        ref.local_time,
        ref.is_thumbnail,
        source_timezone=schedule.source_timezone,
    )
    day, hour = ref.local_time.date().isoformat(), ref.local_time.hour
    two_digit = canonical.replace(f"/{day}/{hour}/", f"/{day}/{hour:02d}/", 1)
    return ref if cdn_path in (canonical, two_digit) else None
