"""The replica server over real HTTP: CDN paths, both URL forms, every fault knob, the CLI."""

from __future__ import annotations

import http.client
import io
import os
import selectors
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from modules.site.urls import build_image_url, wall_clock_to_utc
from modules.replica import server as server_module
from modules.replica.page import PageOptions, Response
from modules.replica.schedule import Schedule
from modules.replica.server import Fault, Faults, ReplicaServer

TODAY = date(2025, 9, 10)
DAY = date(2025, 9, 6)
EMPTY = date(2025, 9, 4)
SCHEDULE = Schedule(
    today=TODAY, first_day=date(2025, 1, 1), empty_days=frozenset({EMPTY})
)
TIMES = SCHEDULE.timestamps("apm", "in_gate", DAY)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def running() -> Iterator[ReplicaServer]:
    with ReplicaServer(schedule=SCHEDULE) as replica:
        yield replica


@pytest.fixture()
def replica(running: ReplicaServer) -> ReplicaServer:
    """The module's server with no faults and fresh counters."""
    running.faults = Faults()
    running.schedule = SCHEDULE
    running.reset_counters()
    return running


def _url(replica: ReplicaServer, index: int = 0, thumbnail: bool = False) -> str:
    return build_image_url(replica.cdn_url, "apm", "in_gate", TIMES[index], thumbnail)


def _get(url: str, **kwargs: object) -> requests.Response:
    return requests.get(url, timeout=10, **kwargs)  # type: ignore[arg-type]


def test_full_size_picture(replica: ReplicaServer) -> None:
    answer = _get(_url(replica))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert int(answer.headers["Content-Length"]) == len(answer.content) == 60_000
    Image.open(io.BytesIO(answer.content)).load()


def test_thumbnail_is_a_smaller_picture(replica: ReplicaServer) -> None:
    answer = _get(_url(replica, thumbnail=True))
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg"
    assert 5_000 <= len(answer.content) <= 8_000
    Image.open(io.BytesIO(answer.content)).load()


def test_picture_size_follows_the_faults(replica: ReplicaServer) -> None:
    replica.faults = Faults(picture_bytes=123_456)
    assert len(_get(_url(replica)).content) == 123_456


def test_head_answers_headers_only(replica: ReplicaServer) -> None:
    answer = requests.head(_url(replica), timeout=10)
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["Content-Length"] == "60000"


@pytest.mark.parametrize(
    "path",
    [
        "/cdn/apm/2025-09-06/0/2025-09-06T00:00:00-in_gate.jpeg",
        "/cdn/apm/2025-09-04/10/2025-09-04T10:00:00-in_gate.jpeg",
        "/cdn/nothing-here",
        "/nothing-here",
        "/cdn/apm/2025-09-06/1/1757149200-in_gate.jpeg",
    ],
)
def test_unknown_paths_answer_404(replica: ReplicaServer, path: str) -> None:
    assert _get(replica.base_url + path).status_code == 404


def test_times_that_are_not_scheduled_answer_404(replica: ReplicaServer) -> None:
    later = build_image_url(
        replica.cdn_url, "apm", "in_gate", TIMES[0] + timedelta(seconds=1)
    )
    assert _get(later).status_code == 404
    other_stream = build_image_url(replica.cdn_url, "apm", "side_gate", TIMES[0])
    assert _get(other_stream).status_code == 404
    empty_day = SCHEDULE.timestamps("apm", "in_gate", EMPTY + timedelta(days=1))[0]
    assert (
        _get(build_image_url(replica.cdn_url, "apm", "in_gate", empty_day)).status_code
        == 200
    )
    future = datetime(2025, 9, 11, 10, 0, 0)
    assert (
        _get(build_image_url(replica.cdn_url, "apm", "in_gate", future)).status_code
        == 404
    )


def test_iso_name_in_the_wrong_folder_answers_404(replica: ReplicaServer) -> None:
    good = _url(replica, 100)
    hour = TIMES[100].hour
    assert _get(good.replace(f"/{hour}/", f"/{(hour + 1) % 24}/")).status_code == 404
    assert _get(good.replace("/2025-09-06/", "/2025-09-05/", 1)).status_code == 404
    assert _get(good.replace(".jpeg", ".jpg")).status_code == 404


def test_both_url_forms_serve_the_same_picture(replica: ReplicaServer) -> None:
    wall = TIMES[20]
    expected = _get(_url(replica, 20)).content
    two_digit = f"{replica.cdn_url}/apm/2025-09-06/{wall.hour:02d}/{wall:%Y-%m-%dT%H:%M:%S}-in_gate.jpeg"
    seconds = int(wall_clock_to_utc(wall).timestamp())
    unix_s = f"{replica.cdn_url}/apm/2025-09-06/{wall.hour:02d}/{seconds}-in_gate.jpeg"
    unix_ms = (
        f"{replica.cdn_url}/apm/2025-09-06/{wall.hour:02d}/{seconds}000-in_gate.jpeg"
    )
    for url in (two_digit, unix_s, unix_ms):
        assert _get(url).content == expected, url


def test_foreign_host_serves_the_same_cdn(replica: ReplicaServer) -> None:
    assert urlsplit(replica.foreign_cdn_url).hostname == "localhost"
    foreign = build_image_url(replica.foreign_cdn_url, "apm", "in_gate", TIMES[0])
    assert _get(foreign).content == _get(_url(replica)).content


def test_page_route_answers_first(
    replica: ReplicaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, dict[str, list[str]]]] = []

    def fake_route(
        path: str, query: dict[str, list[str]], server: ReplicaServer
    ) -> Response | None:
        seen.append((path, query))
        if path == "/terminal_cameras/apm":
            return Response(201, "text/html", b"<p>page</p>", {"X-Replica": "page"})
        return None

    monkeypatch.setattr(server_module, "route", fake_route)
    answer = _get(replica.app_url + "/terminal_cameras/apm?streamName=in_gate")
    assert (answer.status_code, answer.content) == (201, b"<p>page</p>")
    assert (
        answer.headers["X-Replica"] == "page"
        and answer.headers["Content-Type"] == "text/html"
    )
    assert seen[0] == ("/terminal_cameras/apm", {"streamName": ["in_gate"]})
    assert _get(_url(replica)).status_code == 200
    assert isinstance(replica.page_options, PageOptions)


def test_errors_per_url_alone_fails_every_url_n_times(replica: ReplicaServer) -> None:
    replica.faults = Faults(errors_per_url=2)
    statuses = [_get(_url(replica)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [_get(_url(replica, thumbnail=True)).status_code for _ in range(3)] == [
        503,
        503,
        200,
    ]


def test_error_rate_without_count_fails_forever(replica: ReplicaServer) -> None:
    replica.faults = Faults(error_rate=1.0)
    assert {_get(_url(replica)).status_code for _ in range(3)} == {503}


def test_error_rate_picks_a_reproducible_fraction(replica: ReplicaServer) -> None:
    replica.faults = Faults(error_rate=0.3, seed=7)
    urls = [_url(replica, i) for i in range(100)]
    statuses = [_get(url).status_code for url in urls]
    expected = [
        503 if replica.faults.fault_for(urlsplit(url).path, 1) is Fault.ERROR else 200
        for url in urls
    ]
    assert statuses == expected
    assert 15 <= statuses.count(503) <= 45


def test_retry_after_answers_429_then_the_picture(replica: ReplicaServer) -> None:
    replica.faults = Faults(retry_after_rate=1.0, retry_after=2)
    first = _get(_url(replica))
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert _get(_url(replica)).status_code == 200
    replica.faults = Faults(retry_after_rate=1.0, retry_after=0.25)
    assert _get(_url(replica, 1)).headers["Retry-After"] == "0.25"


def test_missing_full_size_keeps_the_thumbnail(replica: ReplicaServer) -> None:
    replica.faults = Faults(missing_full_rate=1.0)
    assert _get(_url(replica)).status_code == 404
    assert _get(_url(replica, thumbnail=True)).status_code == 200


def test_missing_rate_removes_both(replica: ReplicaServer) -> None:
    replica.faults = Faults(missing_rate=1.0)
    assert _get(_url(replica)).status_code == 404
    assert _get(_url(replica, thumbnail=True)).status_code == 404


def test_explicit_missing_sets(replica: ReplicaServer) -> None:
    replica.faults = Faults(
        missing=frozenset({TIMES[1].isoformat()}),
        missing_full=frozenset({TIMES[2].isoformat()}),
    )
    assert [_get(_url(replica, i)).status_code for i in range(4)] == [
        200,
        404,
        404,
        200,
    ]
    assert [_get(_url(replica, i, thumbnail=True)).status_code for i in range(4)] == [
        200,
        404,
        200,
        200,
    ]


def test_truncated_body_is_cut_half_way(replica: ReplicaServer) -> None:
    replica.faults = Faults(truncated_rate=1.0)
    with pytest.raises(requests.RequestException):
        _get(_url(replica))
    connection = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=10)
    connection.request("GET", urlsplit(_url(replica)).path)
    answer = connection.getresponse()
    assert answer.getheader("Content-Length") == "60000"
    with pytest.raises(http.client.IncompleteRead) as cut:
        answer.read()
    assert len(cut.value.partial) == 30_000
    connection.close()


def test_truncation_heals_after_errors_per_url(replica: ReplicaServer) -> None:
    replica.faults = Faults(truncated_rate=1.0, errors_per_url=1)
    with pytest.raises(requests.RequestException):
        _get(_url(replica))
    assert len(_get(_url(replica)).content) == 60_000


def test_html_instead_of_a_picture(replica: ReplicaServer) -> None:
    replica.faults = Faults(html_rate=1.0)
    answer = _get(_url(replica))
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(
        "text/html"
    )
    assert answer.content.startswith(b"<html>") and answer.content.endswith(b"</html>")


def test_reset_closes_without_an_answer(replica: ReplicaServer) -> None:
    replica.faults = Faults(reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        _get(_url(replica))
    assert replica.requests_for(_url(replica)) == 1


def test_hang_makes_the_client_time_out_then_heals(replica: ReplicaServer) -> None:
    replica.faults = Faults(hang_rate=1.0, hang_seconds=0.6, errors_per_url=1)
    with pytest.raises(requests.Timeout):
        requests.get(_url(replica), timeout=0.2)
    started = time.monotonic()
    assert _get(_url(replica)).status_code == 200
    assert time.monotonic() - started < 0.5


def test_endless_answer_streams_until_the_client_leaves(replica: ReplicaServer) -> None:
    replica.faults = Faults(endless_rate=1.0)
    with _get(_url(replica), stream=True) as answer:
        assert answer.status_code == 200 and "Content-Length" not in answer.headers
        received = 0
        for chunk in answer.iter_content(64 * 1024):
            received += len(chunk)
            if received >= 3 * 1024 * 1024:
                break
    assert received >= 3 * 1024 * 1024
    replica.faults = Faults()
    assert _get(_url(replica)).status_code == 200


def test_oversize_answer_is_valid_and_says_its_size(replica: ReplicaServer) -> None:
    replica.faults = Faults(oversize_rate=1.0, oversize_bytes=3 * 1024 * 1024)
    answer = _get(_url(replica))
    assert (
        int(answer.headers["Content-Length"]) == len(answer.content) == 3 * 1024 * 1024
    )
    Image.open(io.BytesIO(answer.content)).load()


def test_latency_delays_every_cdn_answer(replica: ReplicaServer) -> None:
    replica.faults = Faults(latency=0.3)
    started = time.monotonic()
    assert _get(replica.cdn_url + "/nothing").status_code == 404
    assert time.monotonic() - started >= 0.3


def test_fault_precedence_and_validation() -> None:
    faults = Faults(reset_rate=1.0, error_rate=1.0, errors_per_url=1)
    assert faults.fault_for("/cdn/x", 1) is Fault.RESET
    assert faults.fault_for("/cdn/x", 2) is None
    assert Faults(retry_after_rate=1.0).fault_for("/cdn/x", 1) is Fault.RETRY_AFTER
    assert Faults(retry_after_rate=1.0).fault_for("/cdn/x", 2) is None
    assert Faults(errors_per_url=1, html_rate=1.0).fault_for("/cdn/x", 1) is Fault.HTML
    with pytest.raises(ValueError):
        Faults(error_rate=1.5)
    with pytest.raises(ValueError):
        Faults(latency=-1)


def test_counters(replica: ReplicaServer) -> None:
    url = _url(replica)
    _get(url)
    requests.head(url, timeout=10)
    _get(_url(replica, 1))
    assert replica.requests_for(url) == 2
    assert replica.requests_for(urlsplit(url).path) == 2
    assert replica.total_requests == 3
    log = replica.request_log
    path = urlsplit(url).path
    assert [(r.method, r.path) for r in log[:2]] == [("GET", path), ("HEAD", path)]
    assert log[0].monotonic <= log[1].monotonic <= log[2].monotonic
    replica.reset_counters()
    assert replica.total_requests == 0 and replica.requests_for(url) == 0


def test_concurrent_downloads(replica: ReplicaServer) -> None:
    urls = [_url(replica, i, thumbnail=i % 2 == 0) for i in range(len(TIMES))]
    with requests.Session() as session, ThreadPoolExecutor(16) as pool:
        statuses = list(
            pool.map(lambda url: session.get(url, timeout=10).status_code, urls)
        )
    assert statuses == [200] * len(urls)
    assert replica.total_requests == len(urls)


def test_start_stop_as_context_manager() -> None:
    with ReplicaServer(schedule=SCHEDULE) as replica:
        url = build_image_url(replica.cdn_url, "apm", "in_gate", TIMES[0])
        with requests.Session() as session:
            assert session.get(url, timeout=10).status_code == 200
            with pytest.raises(RuntimeError):
                replica.start()
            replica.stop()
            with pytest.raises(requests.ConnectionError):
                session.get(url, timeout=10)
    with pytest.raises(RuntimeError):
        replica.port


def _wait_for_line(process: subprocess.Popen[str], seconds: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(seconds):
            raise AssertionError("the replica printed nothing")
    return process.stdout.readline()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_command_line_serves_until_interrupted(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modules.replica",
            "--port",
            "0",
            "--today",
            "2025-09-10",
        ]
        + ["--first-day", "2025-01-01", "--fault", "missing_full_rate=1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = _wait_for_line(process, 20)
        assert "serving on http://127.0.0.1:" in line
        base = line.split("serving on ")[1].split()[0]
        assert (
            _get(build_image_url(base + "/cdn", "apm", "in_gate", TIMES[0])).status_code
            == 404
        )
        thumbnail = build_image_url(
            base + "/cdn", "apm", "in_gate", TIMES[0], thumbnail=True
        )
        assert _get(thumbnail).status_code == 200
        process.send_signal(stop_signal)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_command_line_refuses_unknown_faults() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modules.replica", "--fault", "bogus=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 2 and "unknown fault 'bogus'" in done.stderr
