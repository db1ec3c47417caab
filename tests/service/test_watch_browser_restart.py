"""After a stream fails, the watch quits that browser and the next stream gets a fresh one.

Real headless Chromium on the replica: the site lost its out_gate camera, so that
stream's page cannot be read. The browsers' profiles are made in a folder of this
test, so the processes of each browser can be told apart from anyone else's.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest

from modules.replica import ReplicaServer
from tests.service.watch_helpers import (
    TERMINAL,
    MovingClock,
    WatchFactory,
    archive_db,
    clock,
    make_watch,
    schedule,
    site,
)

__all__ = ["archive_db", "clock", "make_watch", "site"]  # fixtures used here

pytestmark = pytest.mark.browser


def _processes_naming(profile: str) -> set[int]:
    """The pids of processes whose ``--user-data-dir`` starts with ``profile``."""
    marker = f"--user-data-dir={profile}".encode()
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(
                arg.startswith(marker)
                for arg in (proc / "cmdline").read_bytes().split(b"\0")
            ):
                found.add(int(proc.name))
        except OSError:
            continue  # gone meanwhile
    return found


def _started(caplog: pytest.LogCaptureFixture) -> int:
    return sum("Chromium started" in r.getMessage() for r in caplog.records)


def test_a_failed_stream_gets_the_browser_restarted_and_the_old_one_is_gone(
    site: ReplicaServer,
    clock: MovingClock,
    make_watch: WatchFactory,
    archive_db: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(profiles))
    site.schedule = schedule(clock, streams=("in_gate",))
    # out_gate first: its failure must not leave its browser to in_gate.
    watch = make_watch(backfill_days=0, streams=("out_gate", "in_gate"), timeout=3.0)

    with caplog.at_level(logging.INFO, logger="modules.downloader.browser"):
        first = watch.run_cycle()
        assert first.failed == [(TERMINAL, "out_gate")]
        assert [s for (_, s), _, r in first.reports if r.error is None] == ["in_gate"]
        assert _started(caplog) == 2  # one for out_gate, a fresh one after its failure
        # Only the fresh browser is left: the failed one's profile and processes are gone.
        (profile,) = list(profiles.iterdir())
        running = _processes_naming(f"{profiles}/")
        assert running and running == _processes_naming(str(profile))

        # Failed again: restarted again; then it sits a cycle out, and in_gate goes
        # on in the browser it has.
        clock.advance(minutes=10)
        second = watch.run_cycle()
        assert second.failed == [(TERMINAL, "out_gate")]
        assert _started(caplog) == 3
        (profile,) = list(profiles.iterdir())
        clock.advance(minutes=10)
        third = watch.run_cycle()
        assert third.backing_off == [(TERMINAL, "out_gate")] and third.ok
        assert _started(caplog) == 3
        assert list(profiles.iterdir()) == [profile]

    watch.close()
    assert list(profiles.iterdir()) == [] and _processes_naming(f"{profiles}/") == set()
