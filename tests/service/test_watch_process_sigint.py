"""``draydog watch --metrics-port 0`` as a process: scraped while it runs, then SIGINT while the CDN stalls.

The SIGTERM test (test_watch_stop.py) covers the other signal. Here the same
service is started from the command line with its metrics endpoint, /healthz and
/metrics are read over HTTP from the running process, and SIGINT (Ctrl-C) must
stop it within the bound with exit 0, no ``.part``, one row per file, and no
Chromium or chromedriver process of it left anywhere on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modules.replica import Faults, ReplicaServer
from tests.service.watch_helpers import (  # noqa: F401 (real_time_site: a fixture)
    assert_complete_files_have_one_row_each,
    real_time_site,
)

pytestmark = pytest.mark.browser

STOP_TIMEOUT = 10.0


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _listening(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp* says) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # LISTEN
                found.append(address)
    return found


def _processes_with_tmpdir(folder: Path) -> list[int]:
    """Processes (this user's) whose environment has TMPDIR=``folder``: the watch's
    children (chromedriver, Chromium and its helpers) inherit it."""
    marker = f"TMPDIR={folder}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile, or another user's
    return found


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The watch's TMPDIR (short: Chromium puts a socket there). Whatever the test's
    outcome, no process of it outlives the test and the folder goes."""
    folder = Path(tempfile.mkdtemp(prefix="dd-"))
    yield folder
    for pid in _processes_with_tmpdir(folder):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)


def test_sigint_stops_a_watch_whose_metrics_were_scraped_while_the_cdn_stalls(
    real_time_site: ReplicaServer, tmp_path: Path, scratch: Path
) -> None:
    site = real_time_site
    site.faults = Faults(hang_rate=0.25, hang_seconds=120, seed=11)
    root = tmp_path / "images"
    db = f"sqlite:///{tmp_path}/archive.sqlite3"
    command = [sys.executable, "-m", "modules", "watch", "--stream", "in_gate"]
    command += ["--backfill-days", "1", "--timeout", "60", "--workers", "4"]
    command += ["--stop-timeout", str(STOP_TIMEOUT), "--metrics-port", "0"]
    command += ["--dir", str(root), "--db", db]
    command += ["--app-url", site.app_url, "--cdn-url", site.cdn_url]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    lines: list[str] = []
    errors: list[bytes] = []
    readers = [
        threading.Thread(
            target=lambda: lines.extend(
                line.decode() for line in iter(process.stdout.readline, b"")  # type: ignore[union-attr]
            ),
            daemon=True,
        ),
        threading.Thread(
            target=lambda: errors.append(process.stderr.read()),  # type: ignore[union-attr]
            daemon=True,
        ),
    ]
    for reader in readers:
        reader.start()
    try:
        port = _wait_for_port(lines, process)
        # Bound on the loopback address only.
        assert _listening(port) == ["0100007F"]

        status, body = _get(port, "/healthz")
        assert status == 200
        health = json.loads(body)
        assert health["healthy"] is True
        assert [(s["terminal"], s["stream"]) for s in health["streams"]] == [
            ("apm", "in_gate")
        ]

        # Pictures arrive while a quarter of them stall: /healthz shows the newest.
        deadline = time.monotonic() + 60
        newest = None
        while time.monotonic() < deadline and process.poll() is None:
            stalled = [
                r
                for r in site.request_log
                if r.path.startswith("/cdn/") and site.faults.hangs(r.path, 1)
            ]
            newest = json.loads(_get(port, "/healthz")[1])["streams"][0][
                "newest_picture"
            ]
            if len(stalled) >= 4 and list(root.rglob("*.jpg")) and newest:
                break  # every worker waits on a stalled picture now
            time.sleep(0.1)
        assert process.poll() is None, b"".join(errors)
        assert newest is not None
        status, body = _get(port, "/metrics")
        assert status == 200
        names = {
            sample.name
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }
        assert {
            "draydog_newest_picture_timestamp_seconds",
            "draydog_lag_seconds",
            "draydog_stream_consecutive_failures",
        } <= names

        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=STOP_TIMEOUT + 5)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for reader in readers:
            reader.join(5)
    err = b"".join(errors).decode()

    assert process.returncode == 0, err
    assert took < STOP_TIMEOUT, err
    assert "SIGINT: stopping" in err and "draydog: watch stopped" in err
    assert_complete_files_have_one_row_each(root, db)
    # Chromium and chromedriver are gone, and so is the endpoint.
    assert _processes_with_tmpdir(scratch) == []
    assert not list(scratch.iterdir())
    assert _listening(port) == []


def _wait_for_port(lines: list[str], process: subprocess.Popen[bytes]) -> int:
    """The port the process says it serves /metrics on (it was asked for any)."""
    prefix = "metrics: http://127.0.0.1:"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        for line in list(lines):
            if line.startswith(prefix):
                return int(line[len(prefix) :].split("/", 1)[0])
        time.sleep(0.05)
    raise AssertionError(f"no metrics line; output so far: {lines}")
