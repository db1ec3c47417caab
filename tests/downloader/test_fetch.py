"""The fetch module: URL checks, Retry-After, ``.part`` names and the fetcher's edge cases.

The main download paths are tested against the replica in ``test_download_image``;
the answers the replica never gives (a redirect, a 403, an empty 200, a body that
drips in slower than the timeout) come from a tiny server of this module.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modules.backoff import Backoff
from modules.downloader.fetch import (
    HOST_TAG,
    JPEG_MAGIC,
    PART_SUFFIX,
    FetchError,
    NotFound,
    PictureFetcher,
    UnsafeURL,
    check_url,
    new_http_session,
    parse_retry_after,
    part_path_for,
    sha256_of,
)
from modules.replica import Faults, ReplicaServer
from tests.downloader.conftest import DAY, day_times, expected_bytes, url_of

NETLOC = "cdn.draydog.com"
BODY = JPEG_MAGIC + b"\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.draydog.com/apm/x.jpeg",
        "http://cdn.draydog.com/apm/x.jpeg",
        "https://CDN.draydog.com/apm/x.jpeg",
        "https://cdn.draydog.com/apm/x.jpeg?x=1#y",
    ],
)
def test_check_url_accepts_the_cdn(url: str) -> None:
    check_url(url, NETLOC)


@pytest.mark.parametrize(
    "url, words",
    [
        ("https://evil.example/apm/x.jpeg", "not the CDN host"),
        ("https://cdn.draydog.com.evil.example/x.jpeg", "not the CDN host"),
        ("https://cdn.draydog.com:8443/x.jpeg", "not the CDN host"),
        ("file:///etc/passwd", "only http(s)"),
        ("ftp://cdn.draydog.com/x.jpeg", "only http(s)"),
        ("//cdn.draydog.com/x.jpeg", "scheme-less"),
        ("cdn.draydog.com/x.jpeg", "only http(s)"),
        ("https://user:secret@cdn.draydog.com/x.jpeg", "credentials"),
        ("https://user@cdn.draydog.com/x.jpeg", "credentials"),
        ("http://[::1/x.jpeg", "not a URL"),
    ],
)
def test_check_url_refuses(url: str, words: str) -> None:
    with pytest.raises(UnsafeURL, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_url(url, NETLOC)
    assert issubclass(UnsafeURL, ValueError)


def test_credentials_are_not_echoed() -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_url("https://user:secret@cdn.draydog.com/x.jpeg", NETLOC)
    assert "secret" not in str(caught.value)


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) == 0.0
    assert parse_retry_after("") == 0.0
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("soon") == 0.0
    assert parse_retry_after("-5") == 0.0
    future = datetime.now(timezone.utc) + timedelta(seconds=30)
    waited = parse_retry_after(email.utils.format_datetime(future, usegmt=True))
    assert 25.0 <= waited <= 30.0
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    assert parse_retry_after(email.utils.format_datetime(past, usegmt=True)) == 0.0
    # A date without a zone ("-0000") is read as UTC, not as local time.
    naive_future = (datetime.now(timezone.utc) + timedelta(seconds=60)).replace(
        tzinfo=None
    )
    waited = parse_retry_after(email.utils.format_datetime(naive_future))
    assert 55.0 <= waited <= 60.0


def test_part_path_names_host_and_process(tmp_path: Path) -> None:
    destination = tmp_path / "in_gate_20250906T230734.jpg"
    first, second = part_path_for(destination), part_path_for(destination)
    assert first != second
    assert first.parent == tmp_path
    assert first.name.startswith(".in_gate_20250906T230734.jpg.")
    assert first.name.endswith(PART_SUFFIX)
    import os

    assert f"{HOST_TAG}-{os.getpid()}-" in first.name
    assert "." not in HOST_TAG


def test_sha256_of(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    data = bytes(range(256)) * 10_000
    path.write_bytes(data)
    assert sha256_of(path) == hashlib.sha256(data).hexdigest()


def test_new_http_session_pool_fits_the_workers() -> None:
    session = new_http_session(12)
    adapter: Any = session.get_adapter("http://127.0.0.1/")
    assert adapter.max_retries.total == 0
    assert adapter._pool_maxsize == 12
    assert session.get_adapter("https://cdn.draydog.com/") is adapter
    assert "draydog-archiver" in session.headers["User-Agent"]
    session.close()


# --- a tiny server for answers the replica does not give ------------------------


class _Edge(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: dict[str, int] = {}
    other_origin = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        _Edge.hits[self.path] = _Edge.hits.get(self.path, 0) + 1
        if self.path == "/forbidden.jpeg":
            self._answer(403, b"no", "text/plain")
        elif self.path == "/empty.jpeg":
            self._answer(200, b"", "image/jpeg")
        elif self.path == "/redirect.jpeg":
            self.send_response(302)
            self.send_header("Location", f"{_Edge.other_origin}/picture.jpeg")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/picture.jpeg":
            self._answer(200, BODY, "image/jpeg")
        elif self.path == "/no-length.jpeg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
        elif self.path == "/cut-no-length.jpeg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.close_connection = True
        elif self.path == "/drip.jpeg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            for start in range(0, len(BODY), len(BODY) // 8):
                self.wfile.write(BODY[start : start + len(BODY) // 8])
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self._answer(404, b"Not Found", "text/plain")

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def edge() -> Iterator[str]:
    """The edge server's origin; ``_Edge.other_origin`` is the same server by another name."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Edge)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    _Edge.other_origin = f"http://localhost:{port}"
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def edge_fetcher(edge: str) -> Iterator[PictureFetcher]:
    _Edge.hits.clear()
    session = new_http_session(2)
    yield PictureFetcher(
        session,
        allowed_netloc=edge.split("//", 1)[1],
        backoff=Backoff(attempts=3, base_delay=0.01),
        timeout=0.5,
        max_bytes=1_000_000,
    )
    session.close()


def test_a_redirect_off_the_cdn_is_not_followed(
    edge: str, edge_fetcher: PictureFetcher, tmp_path: Path
) -> None:
    with pytest.raises(FetchError) as caught:
        edge_fetcher.fetch(f"{edge}/redirect.jpeg", tmp_path / "x.jpg")
    assert "302" in caught.value.reason
    assert not caught.value.retryable
    assert _Edge.hits.get("/picture.jpeg", 0) == 0
    assert list(tmp_path.iterdir()) == []


def test_another_status_is_a_failure_not_retried(
    edge: str, edge_fetcher: PictureFetcher, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="HTTP 403") as caught:
        edge_fetcher.fetch(f"{edge}/forbidden.jpeg", tmp_path / "x.jpg")
    assert not isinstance(caught.value, NotFound)
    assert _Edge.hits["/forbidden.jpeg"] == 1


def test_an_empty_body_is_retried_then_refused(
    edge: str, edge_fetcher: PictureFetcher, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="empty body"):
        edge_fetcher.fetch(f"{edge}/empty.jpeg", tmp_path / "x.jpg")
    assert _Edge.hits["/empty.jpeg"] == 3
    assert list(tmp_path.iterdir()) == []


def test_a_body_without_content_length_is_kept_when_it_is_a_jpeg(
    edge: str, edge_fetcher: PictureFetcher, tmp_path: Path
) -> None:
    fetched = edge_fetcher.fetch(f"{edge}/no-length.jpeg", tmp_path / "x.jpg")
    assert fetched.path.read_bytes() == BODY
    assert fetched.size == len(BODY)
    assert fetched.sha256 == hashlib.sha256(BODY).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jpg"]


def test_a_body_cut_short_without_content_length_is_retried_and_never_kept(
    edge: str, edge_fetcher: PictureFetcher, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="no JPEG end marker") as caught:
        edge_fetcher.fetch(f"{edge}/cut-no-length.jpeg", tmp_path / "x.jpg")
    assert caught.value.retryable
    assert _Edge.hits["/cut-no-length.jpeg"] == edge_fetcher.backoff.attempts
    assert list(tmp_path.iterdir()) == []


def test_a_body_slower_than_the_timeout_is_abandoned(
    edge: str, edge_fetcher: PictureFetcher, tmp_path: Path
) -> None:
    edge_fetcher.backoff = Backoff(attempts=1)
    started = time.monotonic()
    with pytest.raises(FetchError, match="longer than the timeout") as caught:
        edge_fetcher.fetch(f"{edge}/drip.jpeg", tmp_path / "x.jpg")
    assert caught.value.retryable
    assert time.monotonic() - started < 2.0
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_is_gone_is_a_retryable_connection_failure(
    tmp_path: Path,
) -> None:
    session = new_http_session(1)
    fetcher = PictureFetcher(
        session,
        allowed_netloc="127.0.0.1:1",
        backoff=Backoff(attempts=2, base_delay=0.01),
        timeout=0.5,
        max_bytes=1000,
    )
    with pytest.raises(FetchError, match="connection failed") as caught:
        fetcher.fetch("http://127.0.0.1:1/x.jpeg", tmp_path / "x.jpg")
    assert caught.value.retryable
    session.close()


# --- the fetcher against the replica ----------------------------------------------


@pytest.fixture
def fetcher(replica: ReplicaServer) -> Iterator[PictureFetcher]:
    session = new_http_session(4)
    yield PictureFetcher(
        session,
        allowed_netloc=replica.cdn_url.split("//", 1)[1].split("/", 1)[0],
        backoff=Backoff(attempts=3, base_delay=0.01),
        timeout=2,
        max_bytes=200_000,
    )
    session.close()


def test_fetch_checks_the_url_before_any_request(
    replica: ReplicaServer, fetcher: PictureFetcher, tmp_path: Path
) -> None:
    wall = day_times(DAY)[0]
    foreign = url_of(replica, wall).replace(replica.cdn_url, replica.foreign_cdn_url)
    with pytest.raises(UnsafeURL):
        fetcher.fetch(foreign, tmp_path / "x.jpg")
    assert replica.total_requests == 0


def test_fetch_writes_the_verified_body(
    replica: ReplicaServer, fetcher: PictureFetcher, tmp_path: Path
) -> None:
    wall = day_times(DAY)[5]
    destination = tmp_path / "deep" / "er" / "x.jpg"
    fetched = fetcher.fetch(url_of(replica, wall), destination)
    assert fetched.path == destination
    assert destination.read_bytes() == expected_bytes(wall)
    assert fetched.sha256 == hashlib.sha256(expected_bytes(wall)).hexdigest()
    assert [p.name for p in destination.parent.iterdir()] == ["x.jpg"]


def test_fetch_of_an_endless_body_stops_at_the_cap(
    replica: ReplicaServer, fetcher: PictureFetcher, tmp_path: Path
) -> None:
    replica.faults = Faults(endless_rate=1.0)
    with pytest.raises(FetchError, match="too large") as caught:
        fetcher.fetch(url_of(replica, day_times(DAY)[0]), tmp_path / "x.jpg")
    assert not caught.value.retryable
    assert replica.requests_for(url_of(replica, day_times(DAY)[0])) == 1
    assert list(tmp_path.iterdir()) == []


def test_fetch_of_a_declared_oversize_body_is_refused_before_reading(
    replica: ReplicaServer, fetcher: PictureFetcher, tmp_path: Path
) -> None:
    replica.faults = Faults(oversize_rate=1.0, oversize_bytes=2_000_000)
    with pytest.raises(FetchError, match="2000000 bytes declared"):
        fetcher.fetch(url_of(replica, day_times(DAY)[0]), tmp_path / "x.jpg")
    assert list(tmp_path.iterdir()) == []


def test_fetch_raises_not_found_at_once(
    replica: ReplicaServer, fetcher: PictureFetcher, tmp_path: Path
) -> None:
    wall = day_times(DAY)[0] + timedelta(seconds=1)
    with pytest.raises(NotFound):
        fetcher.fetch(url_of(replica, wall), tmp_path / "x.jpg")
    assert replica.requests_for(url_of(replica, wall)) == 1
