"""Retry delays stay well under RabbitMQ's consumer_timeout: with task_acks_late a
worker holds a delayed retry unacknowledged until it is due, and a message held past
the timeout closes the channel and stops the worker (celery/celery#6760)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from modules.cli import main
from modules.tasks import settings
from modules.tasks.preflight import EnvironmentBroken, check_environment

DEFAULT_CONSUMER_TIMEOUT = 1800.0  # RabbitMQ 3.8.17 and later, seconds


def _server_consumer_timeout() -> float | None:
    """The local RabbitMQ's consumer_timeout in seconds, or None when not readable."""
    if shutil.which("rabbitmqctl") is None:
        return None
    try:
        out = subprocess.run(
            ["rabbitmqctl", "eval", "application:get_env(rabbit, consumer_timeout)."],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\{ok,\s*(\d+)\}", out)
    return int(found.group(1)) / 1000 if found else None


def test_the_default_schedule_never_comes_near_the_consumer_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(settings.RETRY_DELAY_ENV, raising=False)
    monkeypatch.delenv(settings.RETRIES_ENV, raising=False)
    policy = settings.retry_policy()
    delays = [policy.countdown(n) for n in range(policy.retries)]
    assert delays == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0]
    # Even past the configured retries, at most half the default timeout: the other
    # half is for the task's own run, still unacknowledged.
    assert max(policy.countdown(n) for n in range(200)) == settings.MAX_RETRY_DELAY
    assert settings.MAX_RETRY_DELAY <= DEFAULT_CONSUMER_TIMEOUT / 2


def test_the_longest_delay_allowed_is_under_this_servers_consumer_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeout = _server_consumer_timeout()
    if timeout is None:
        pytest.skip("no local RabbitMQ whose consumer_timeout rabbitmqctl can read")
    monkeypatch.setenv(settings.RETRY_DELAY_ENV, str(settings.MAX_RETRY_DELAY))
    monkeypatch.setenv(settings.RETRIES_ENV, "100")
    policy = settings.retry_policy()
    assert max(policy.countdown(n) for n in range(100)) <= timeout / 2


@pytest.mark.parametrize("value", ["901", "3600", "1e9", "nan", "inf", "-1"])
def test_a_retry_delay_over_the_cap_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(settings.RETRY_DELAY_ENV, value)
    with pytest.raises(ValueError, match=r"DRAYDOG_TASK_RETRY_DELAY must be 0\.\.900"):
        settings.retry_policy()


def test_the_cap_itself_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.RETRY_DELAY_ENV, "900")
    assert settings.retry_policy().countdown(5) == 900.0


@pytest.mark.parametrize(
    "delay, max_delay",
    [(30.0, 3600.0), (30.0, 901.0), (60.0, 30.0), (-1.0, 900.0)],
)
def test_a_policy_beyond_the_cap_cannot_be_made(delay: float, max_delay: float) -> None:
    with pytest.raises(ValueError, match="retry delays must be"):
        settings.RetryPolicy(retries=3, delay=delay, max_delay=max_delay)


def test_a_retry_delay_over_the_cap_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.RETRY_DELAY_ENV, "3600")
    # A closed port: were the setting let through, nothing would be sent (exit 1).
    monkeypatch.setenv(settings.BROKER_ENV, "amqp://guest:guest@127.0.0.1:1//")
    assert main(["enqueue", "--date", "2025-09-06"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("draydog: error: "), err
    assert "DRAYDOG_TASK_RETRY_DELAY" in err and "consumer_timeout" in err


def test_a_celery_worker_with_a_retry_delay_over_the_cap_takes_no_task(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``celery -A modules.tasks.app worker`` reads no options: its preflight refuses."""
    monkeypatch.setenv(settings.RETRY_DELAY_ENV, "3600")
    # Were the delay let through, the other checks would touch only these.
    monkeypatch.setenv("DRAYDOG_ARCHIVE", str(tmp_path / "images"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'archive.sqlite3'}")
    with pytest.raises(EnvironmentBroken, match="DRAYDOG_TASK_RETRY_DELAY"):
        check_environment()
