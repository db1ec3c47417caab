"""``gaps`` looks at several streams at once (threads, each on its own connection):
the report is the one a stream-by-stream pass gives, in the same order; an
in-memory SQLite database, whose connections are databases of their own, is
looked at by one thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from modules.database import models
from modules.service import gaps
from modules.service.gaps import find_gaps
from tests.conftest import reset_database_state
from tests.service.archive_builder import Archive, day, outage_hours, record, wall_times

STREAMS = ("in_gate", "out_gate", "rail_gate", "yard_gate")
TODAY = day(6)


def build(archive: Archive) -> None:
    """Per stream n (0-3): day n+1 never archived, a camera outage at hour 8 + n."""
    for n, stream in enumerate(STREAMS):
        for d in range(1, 6):
            if d == n + 1:
                continue
            off = outage_hours(day(d), 8 + n, 10 + n) if d == 5 else set()
            archive.store(
                (t for t in wall_times(day(d)) if t not in off), stream=stream
            )
            record(day(d), "complete", 144 - len(off), 144 - len(off), stream=stream)


def threads_used(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    names: set[str] = set()
    check = gaps._check_stream

    def watched(*args: Any, **kwargs: Any) -> None:
        names.add(threading.current_thread().name)
        check(*args, **kwargs)

    monkeypatch.setattr(gaps, "_check_stream", watched)
    return names


def test_streams_at_once_report_what_one_at_a_time_does(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path / "images")
    build(archive)
    names = threads_used(monkeypatch)

    at_once = find_gaps(start=day(1), archive=archive.root, today=TODAY)
    assert len(names) > 1, names
    monkeypatch.setattr(gaps, "_readers", lambda streams: 1)
    one_by_one = find_gaps(start=day(1), archive=archive.root, today=TODAY)

    assert at_once == one_by_one
    assert [s.stream for s in at_once.streams] == sorted(STREAMS)
    assert sorted((d.stream, d.day) for d in at_once.never_archived) == sorted(
        (stream, day(n + 1)) for n, stream in enumerate(STREAMS)
    )
    assert sorted((o.stream, o.last_before.hour) for o in at_once.outages) == sorted(
        (stream, (8 + n + 7 - 1) % 24) for n, stream in enumerate(STREAMS)
    )


def test_an_in_memory_database_is_looked_at_by_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models.configure("sqlite:///:memory:")
    try:
        models.init_db()
        archive = Archive(tmp_path / "images")
        build(archive)
        names = threads_used(monkeypatch)
        report = find_gaps(start=day(1), today=TODAY)
        assert len(names) == 1
        assert len(report.streams) == 4
        assert sum(s.pictures for s in report.streams) == 4 * (4 * 144 - 12)
        assert len(report.never_archived) == 4
    finally:
        reset_database_state()
