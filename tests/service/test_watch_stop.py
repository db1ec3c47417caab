"""``draydog watch`` as a process: SIGTERM while the CDN stalls, and ``--once`` for cron.

These run on the real clock (the process has no other), with a replica whose
cameras follow it; yesterday gives a full day of pictures whatever the hour.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from modules import cli
from modules.replica import Faults, ReplicaServer
from tests.service.watch_helpers import (  # noqa: F401 (real_time_site: a fixture)
    assert_complete_files_have_one_row_each,
    real_time_site,
)

pytestmark = pytest.mark.browser

STOP_TIMEOUT = 10.0


def test_sigterm_while_the_cdn_stalls_stops_within_the_bound(
    real_time_site: ReplicaServer, tmp_path: Path
) -> None:
    # A quarter of the pictures stall for two minutes before any header, with a
    # request timeout of a minute: only cutting them can stop the process in time.
    site = real_time_site
    site.faults = Faults(hang_rate=0.25, hang_seconds=120, seed=11)
    root = tmp_path / "images"
    db = f"sqlite:///{tmp_path}/archive.sqlite3"
    # Chromium's profile goes here; short, as Chromium puts a Unix socket in it.
    scratch = Path(tempfile.mkdtemp(prefix="dd-"))
    command = [sys.executable, "-m", "modules", "watch", "--stream", "in_gate"]
    command += ["--backfill-days", "1", "--timeout", "60", "--workers", "4"]
    command += ["--stop-timeout", str(STOP_TIMEOUT), "--dir", str(root), "--db", db]
    command += ["--app-url", site.app_url, "--cdn-url", site.cdn_url]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            stalled = [
                r
                for r in site.request_log
                if r.path.startswith("/cdn/") and site.faults.hangs(r.path, 1)
            ]
            if len(stalled) >= 4 and list(root.rglob("*.jpg")):
                break  # every worker waits on a stalled picture now
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=STOP_TIMEOUT + 5)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, err.decode()
    assert took < STOP_TIMEOUT, err.decode()
    assert_complete_files_have_one_row_each(root, db)
    # The browser was quit: its throwaway profile is gone with it.
    assert not list(scratch.glob("draydog-chromium-*"))
    assert not list(scratch.iterdir())  # quit politely: not even Chromium's own
    scratch.rmdir()
    assert b"stopped" in err


def test_once_exits_0_after_a_good_cycle_and_1_after_a_failed_one(
    real_time_site: ReplicaServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = real_time_site
    base = ["watch", "--once", "--backfill-days", "0", "--dir", str(tmp_path / "i")]
    base += ["--db", f"sqlite:///{tmp_path}/a.sqlite3", "--app-url", site.app_url]
    base += ["--cdn-url", site.cdn_url, "--timeout", "5"]

    assert cli.main([*base, "--stream", "in_gate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("apm ") and "in_gate:" in out
    assert "cycle: 1 days read" in out and "0 streams failed" in out

    assert cli.main([*base, "--stream", "in_gate", "--stream", "no_such"]) == 1
    out = capsys.readouterr().out
    assert "no_such: FAILED" in out and "1 streams failed" in out
