"""Bad input to enqueue, worker and beat (one line, exit 2, nothing sent), and the
pieces that need no broker: broker URLs, the retry policy, failure classes, summaries.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from modules.cli import main
from modules.downloader.discovery_errors import (
    BrowserUnavailable,
    DayNotAvailable,
    DiscoveryError,
    PageUnreachable,
    UnusableHistory,
)
from modules.downloader.report import UNUSABLE_ITEM, DownloadReport
from modules.site.urls import terminal_today
from modules.tasks import failures, settings
from modules.tasks.summary import failure_summary, key_of, to_report, to_summary

TOMORROW = (terminal_today() + timedelta(days=1)).isoformat()

BAD_COMMAND_LINES = {
    "date-impossible": ["enqueue", "--date", "2025-02-30"],
    "date-words": ["enqueue", "--date", "yesterday"],
    "date-us": ["enqueue", "--date", "09/06/2025"],
    "date-tomorrow": ["enqueue", "--date", TOMORROW],
    "range-reversed": ["enqueue", "--start", "2025-09-07", "--end", "2025-09-01"],
    "range-open": ["enqueue", "--start", "2025-09-07"],
    "end-with-date": ["enqueue", "--date", "2025-09-07", "--end", "2025-09-08"],
    "no-day": ["enqueue"],
    "stream-dots": ["enqueue", "--date", "2025-09-06", "--stream", "../x"],
    "stream-upper": ["enqueue", "--date", "2025-09-06", "--stream", "In_Gate"],
    "terminal-slash": ["enqueue", "--date", "2025-09-06", "--terminal", "a/b"],
    "queue-space": ["enqueue", "--date", "2025-09-06", "--queue", "a queue"],
    "queue-empty": ["enqueue", "--date", "2025-09-06", "--queue", ""],
    "broker-scheme": ["enqueue", "--date", "2025-09-06", "--broker", "http://x/"],
    "broker-no-host": ["enqueue", "--date", "2025-09-06", "--broker", "amqp://"],
    "broker-port": ["enqueue", "--date", "2025-09-06", "--broker", "amqp://h:port//"],
    "broker-words": ["enqueue", "--date", "2025-09-06", "--broker", "rabbit"],
    "broker-redis-db": ["enqueue", "--date", "2025-09-06", "--broker", "redis://h/x"],
    "timezone": ["enqueue", "--date", "2025-09-06", "--timezone", "Mars/Base"],
    "worker-concurrency-0": ["worker", "--concurrency", "0"],
    "worker-concurrency-65": ["worker", "--concurrency", "65"],
    "worker-workers-0": ["worker", "--workers", "0"],
    "worker-queue": ["worker", "--queue", "-x"],
    "worker-db": ["worker", "--db", "://"],
    "worker-cdn": ["worker", "--cdn-url", "file:///etc"],
    "worker-broker": ["worker", "--broker", "amqp://h:99999//"],
    "beat-interval": ["beat", "--interval", "-5"],
    "beat-stream": ["beat", "--stream", "a b"],
    "beat-queue": ["beat", "--queue", "q/1"],
    "beat-broker": ["beat", "--broker", "mqtt://h"],
}


@pytest.mark.parametrize(
    "argv", list(BAD_COMMAND_LINES.values()), ids=list(BAD_COMMAND_LINES)
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unreachable broker: were anything sent, it would fail with exit 1, not 2.
    monkeypatch.setenv(settings.BROKER_ENV, "amqp://guest:guest@127.0.0.1:1//")
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("draydog: error: "), err


def test_a_malformed_broker_url_in_the_environment_is_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.BROKER_ENV, "amqp://user:secret@:5672//")
    assert main(["enqueue", "--date", "2025-09-06"]) == 2
    err = capsys.readouterr().err
    assert "malformed broker URL" in err and "secret" not in err


def test_a_bad_retry_setting_is_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.RETRIES_ENV, "many")
    assert main(["enqueue", "--date", "2025-09-06"]) == 2
    assert "DRAYDOG_TASK_RETRIES" in capsys.readouterr().err


def test_an_unreachable_broker_is_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.BROKER_ENV, "amqp://guest:guest@127.0.0.1:1//")
    assert main(["enqueue", "--date", "2025-09-06"]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("draydog: cannot send to the broker")
        and len(err.splitlines()) == 1
    )


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@127.0.0.1:5672//",
        "amqps://u:p@rabbit.example:5671/vhost",
        "pyamqp://localhost",
        "redis://127.0.0.1:6379/0",
        "rediss://:pw@cache.example:6380",
    ],
)
def test_good_broker_urls(url: str) -> None:
    assert settings.check_broker_url(url) == url


def test_the_result_backend_follows_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.RESULT_BACKEND_ENV, raising=False)
    assert settings.result_backend("amqp://h//") == "rpc://"
    assert settings.result_backend("redis://h:6379/1") == "redis://h:6379/1"
    monkeypatch.setenv(settings.RESULT_BACKEND_ENV, "redis://other/2")
    assert settings.result_backend("amqp://h//") == "redis://other/2"


def test_the_retry_backoff_is_exponential_and_capped() -> None:
    policy = settings.RetryPolicy(retries=5, delay=2.0, max_delay=20.0)
    assert [policy.countdown(n) for n in range(5)] == [2.0, 4.0, 8.0, 16.0, 20.0]


def test_the_app_acknowledges_late_and_takes_one_task_at_a_time() -> None:
    from modules.tasks.app import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_failures_are_classified() -> None:
    assert failures.classify_exception(BrowserUnavailable("x")) == failures.ENVIRONMENT
    assert failures.classify_exception(DayNotAvailable("x")) == failures.PERMANENT
    assert failures.classify_exception(ValueError("future")) == failures.PERMANENT
    assert failures.classify_exception(DiscoveryError("x")) == failures.TRANSIENT
    assert failures.classify_exception(UnusableHistory("x")) == failures.PERMANENT
    assert failures.classify_exception(PageUnreachable("x")) == failures.TRANSIENT
    assert failures.classify_exception(OSError("reset")) == failures.TRANSIENT
    absent = DownloadReport(failed=[("t", "404: no picture, no thumbnail")])
    assert failures.transient_trouble(absent) is None
    assert failures.transient_trouble(DownloadReport(db_failed=3)) is not None
    refused = DownloadReport(db_failed=3, db_refused=1)
    assert failures.transient_trouble(refused) == "2 rows not written (the database)"
    assert failures.transient_trouble(DownloadReport(db_failed=2, db_refused=2)) is None
    timeout = DownloadReport(
        failed=[("t", "timeout"), ("u", "403: no picture, no thumbnail")]
    )
    assert failures.transient_trouble(timeout) == "1 pictures failed (timeout)"
    elsewhere = DownloadReport(
        failed=[("t", f"{UNUSABLE_ITEM}on another host than the CDN, not fetched: u")]
    )
    assert failures.transient_trouble(elsewhere) is None


def test_a_summary_is_json_and_gives_back_the_report() -> None:
    import json

    report = DownloadReport(
        files=["a", "b"],
        downloaded=1,
        already_present=1,
        thumbnails=1,
        failed=[("2025-09-06T01:00:00", "timeout")],
        bytes=1000,
        db_inserted=2,
        requested=3,
        seconds=1.5,
    )
    summary = json.loads(
        json.dumps(
            to_summary("apm", "in_gate", "2025-09-06", report, attempts=2, worker="w")
        )
    )
    assert summary["stored"] == 2 and summary["attempts"] == 2 and not summary["ok"]
    back = to_report(summary)
    for name in (
        "downloaded",
        "already_present",
        "thumbnails",
        "bytes",
        "db_inserted",
        "requested",
    ):
        assert getattr(back, name) == getattr(report, name)
    assert back.failed == report.failed and back.seconds == report.seconds
    assert key_of(summary) == (date(2025, 9, 6), "in_gate")
    failed = failure_summary(
        "apm",
        "in_gate",
        "2025-09-06",
        "DayNotAvailable: x",
        attempts=1,
        worker=None,
        permanent=True,
    )
    assert to_report(failed).error == "DayNotAvailable: x" and failed["permanent"]
