"""The fetcher's stop path and wall-time limit: cancelling cuts what is in flight.

A tiny server of this module stalls before its headers, trickles a body a few
bytes at a time, or answers 503 with a long Retry-After; each records the
request headers it got.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modules.backoff import Backoff
from modules.downloader.fetch import (
    JPEG_MAGIC,
    Absent,
    Cancelled,
    FetchError,
    Forbidden,
    NotFound,
    PictureFetcher,
    new_http_session,
)

BODY = JPEG_MAGIC + b"\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"
STALL_SECONDS = 20.0


class _Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    headers_seen: list[dict[str, str]] = []
    hits: dict[str, int] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        _Slow.headers_seen.append(dict(self.headers.items()))
        _Slow.hits[self.path] = _Slow.hits.get(self.path, 0) + 1
        try:
            if self.path == "/stall.jpeg":
                time.sleep(STALL_SECONDS)
                self._answer(200, BODY)
            elif self.path == "/trickle.jpeg":
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                for start in range(0, len(BODY), 16):
                    self.wfile.write(BODY[start : start + 16])
                    self.wfile.flush()
                    time.sleep(0.05)
            elif self.path == "/busy.jpeg":
                self.send_response(503)
                self.send_header("Retry-After", "30")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/forbidden.jpeg":
                self._answer(403, b"<Error><Code>AccessDenied</Code></Error>")
            elif self.path == "/picture.jpeg":
                self._answer(200, BODY)
            else:
                self._answer(404, b"Not Found")
        except OSError:
            pass  # the client cut the connection, as it should

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def slow() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_fetcher(slow: str) -> Iterator[Any]:
    sessions = []
    _Slow.headers_seen.clear()
    _Slow.hits.clear()

    def make(timeout: float = 30.0, attempts: int = 3) -> PictureFetcher:
        session = new_http_session(4)
        sessions.append(session)
        return PictureFetcher(
            session,
            allowed_netloc=slow.split("//", 1)[1],
            backoff=Backoff(attempts=attempts, base_delay=0.01),
            timeout=timeout,
            max_bytes=1_000_000,
        )

    yield make
    for session in sessions:
        session.close()


def _fetch_in_thread(
    fetcher: PictureFetcher, url: str, destination: Path
) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fetcher.fetch(url, destination)
        except BaseException as exc:  # the test looks at what it was
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_the_cdn_is_asked_for_the_bytes_as_stored(
    slow: str, make_fetcher: Any, tmp_path: Path
) -> None:
    make_fetcher().fetch(f"{slow}/picture.jpeg", tmp_path / "x.jpg")
    assert _Slow.headers_seen[-1]["Accept-Encoding"] == "identity"
    assert (tmp_path / "x.jpg").read_bytes() == BODY


def test_a_403_is_an_absent_picture_not_retried(
    slow: str, make_fetcher: Any, tmp_path: Path
) -> None:
    with pytest.raises(Forbidden) as caught:
        make_fetcher().fetch(f"{slow}/forbidden.jpeg", tmp_path / "x.jpg")
    assert isinstance(caught.value, Absent) and not isinstance(caught.value, NotFound)
    assert _Slow.hits["/forbidden.jpeg"] == 1
    assert list(tmp_path.iterdir()) == []


def test_a_trickling_body_is_cut_at_the_timeout_in_wall_time(
    slow: str, make_fetcher: Any, tmp_path: Path
) -> None:
    # 10 KB at 16 bytes per 50 ms would take 30 s; every read gets bytes well
    # within the timeout, so only a wall-time limit can cut it.
    fetcher = make_fetcher(timeout=1.0, attempts=1)
    started = time.monotonic()
    with pytest.raises(FetchError, match="longer than the timeout") as caught:
        fetcher.fetch(f"{slow}/trickle.jpeg", tmp_path / "x.jpg")
    assert caught.value.retryable
    assert 1.0 <= time.monotonic() - started < 1.5
    assert list(tmp_path.iterdir()) == []


def test_cancel_cuts_a_request_waiting_for_a_stalled_cdn(
    slow: str, make_fetcher: Any, tmp_path: Path
) -> None:
    fetcher = make_fetcher(timeout=60.0)
    thread, errors = _fetch_in_thread(fetcher, f"{slow}/stall.jpeg", tmp_path / "x.jpg")
    time.sleep(0.3)
    started = time.monotonic()
    fetcher.cancel()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0
    assert [type(e) for e in errors] == [Cancelled]
    assert _Slow.hits["/stall.jpeg"] == 1  # no retry after the cut
    assert list(tmp_path.iterdir()) == []


def test_cancel_during_a_body_leaves_no_part(
    slow: str, make_fetcher: Any, tmp_path: Path
) -> None:
    fetcher = make_fetcher(timeout=60.0)
    thread, errors = _fetch_in_thread(
        fetcher, f"{slow}/trickle.jpeg", tmp_path / "x.jpg"
    )
    deadline = time.monotonic() + 5
    while not list(tmp_path.glob(".*.part")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(tmp_path.glob(".*.part")), "the body never started"
    started = time.monotonic()
    fetcher.cancel()
    thread.join(5)
    assert time.monotonic() - started < 1.0
    assert [type(e) for e in errors] == [Cancelled]
    assert list(tmp_path.iterdir()) == []


def test_cancel_ends_a_backoff_pause_at_once(
    slow: str, make_fetcher: Any, tmp_path: Path
) -> None:
    fetcher = make_fetcher(timeout=5.0, attempts=3)
    fetcher.backoff = Backoff(attempts=3, base_delay=0.01, max_delay=60)
    thread, errors = _fetch_in_thread(fetcher, f"{slow}/busy.jpeg", tmp_path / "x.jpg")
    deadline = time.monotonic() + 5
    while _Slow.hits.get("/busy.jpeg", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # now in the 30 s pause the Retry-After asked for
    started = time.monotonic()
    fetcher.cancel()
    thread.join(5)
    assert time.monotonic() - started < 0.5
    assert [type(e) for e in errors] == [Cancelled]
    assert _Slow.hits["/busy.jpeg"] == 1


def test_a_cancelled_fetcher_makes_no_request(
    slow: str, make_fetcher: Any, tmp_path: Path
) -> None:
    fetcher = make_fetcher()
    fetcher.cancel()
    with pytest.raises(Cancelled):
        fetcher.fetch(f"{slow}/picture.jpeg", tmp_path / "x.jpg")
    assert _Slow.hits == {}
