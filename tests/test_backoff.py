"""The shared retry policy: exponential delays with a cap, a floor and jitter."""

from __future__ import annotations

import logging
import random
import time

import pytest


from modules.backoff import Backoff, call_with_retries


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: 0.0)


@pytest.fixture
def full_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: high)


def test_delays_double(no_jitter: None) -> None:
    policy = Backoff(attempts=6, base_delay=0.5, max_delay=100.0)
    assert [policy.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_delays_are_capped(no_jitter: None) -> None:
    policy = Backoff(attempts=10, base_delay=1.0, max_delay=5.0)
    assert [policy.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert policy.delay(200) == 5.0  # no overflow for a large retry number


def test_jitter_adds_at_most_ten_percent(full_jitter: None) -> None:
    policy = Backoff(attempts=10, base_delay=1.0, max_delay=5.0)
    assert policy.delay(0) == pytest.approx(1.1)
    assert policy.delay(9) == pytest.approx(5.5)


def test_jitter_spreads_real_delays() -> None:
    policy = Backoff(attempts=3, base_delay=2.0, max_delay=30.0)
    delays = [policy.delay(1) for _ in range(200)]
    assert all(4.0 <= delay <= 4.4 for delay in delays)
    assert len(set(delays)) > 1


def test_floor(no_jitter: None) -> None:
    policy = Backoff(attempts=3, base_delay=1.0, max_delay=10.0)
    assert policy.delay(0, floor=3.0) == 3.0
    assert policy.delay(3, floor=3.0) == 8.0  # a floor below the delay changes nothing
    assert policy.delay(0, floor=60.0) == 10.0  # the floor is capped too


@pytest.mark.parametrize(
    "arguments",
    [
        {"attempts": 0},
        {"attempts": -1},
        {"base_delay": -0.1},
        {"max_delay": -1.0},
    ],
)
def test_invalid_policies_are_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**arguments)  # type: ignore[arg-type]


def test_a_single_attempt_is_allowed() -> None:
    assert Backoff(attempts=1).attempts == 1


class Flaky:
    """Fails with the queued errors, then returns ``value``."""

    def __init__(self, *errors: Exception, value: str = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.value = value

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def retry_connection_errors(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError)


def test_retries_retryable_errors_then_succeeds(no_jitter: None) -> None:
    operation = Flaky(ConnectionError("1"), ConnectionError("2"))
    sleeps = Sleeps()
    result = call_with_retries(
        operation,
        Backoff(attempts=3, base_delay=0.25, max_delay=10.0),
        retry_connection_errors,
        sleep=sleeps,
    )
    assert result == "ok"
    assert operation.calls == 3
    assert sleeps.waits == [0.25, 0.5]


def test_an_error_can_ask_for_a_longer_wait(no_jitter: None) -> None:
    """An HTTP 429's Retry-After, say: the wait is at least what the error asks for."""
    operation = Flaky(ConnectionError("slow down"), ConnectionError("again"))
    sleeps = Sleeps()
    call_with_retries(
        operation,
        Backoff(attempts=3, base_delay=0.25, max_delay=10.0),
        retry_connection_errors,
        min_wait=lambda exc: 3.0 if str(exc) == "slow down" else 0.0,
        sleep=sleeps,
    )
    assert sleeps.waits == [3.0, 0.5]


def test_re_raises_the_last_error_when_attempts_run_out() -> None:
    errors = [
        ConnectionError("first"),
        ConnectionError("second"),
        ConnectionError("third"),
    ]
    operation = Flaky(*errors)
    sleeps = Sleeps()
    with pytest.raises(ConnectionError) as raised:
        call_with_retries(
            operation,
            Backoff(attempts=3, base_delay=0.0),
            retry_connection_errors,
            sleep=sleeps,
        )
    assert raised.value is errors[2]
    assert operation.calls == 3
    assert len(sleeps.waits) == 2  # no wait after the last attempt


def test_does_not_retry_what_is_not_retryable() -> None:
    error = ValueError("permanent")
    operation = Flaky(error)
    sleeps = Sleeps()
    with pytest.raises(ValueError) as raised:
        call_with_retries(
            operation, Backoff(attempts=5), retry_connection_errors, sleep=sleeps
        )
    assert raised.value is error
    assert operation.calls == 1
    assert sleeps.waits == []


def test_a_non_retryable_error_after_retries_stops_at_once() -> None:
    operation = Flaky(ConnectionError("transient"), KeyError("permanent"))
    sleeps = Sleeps()
    with pytest.raises(KeyError):
        call_with_retries(
            operation,
            Backoff(attempts=5, base_delay=0.0),
            retry_connection_errors,
            sleep=sleeps,
        )
    assert operation.calls == 2 and len(sleeps.waits) == 1


def test_one_attempt_means_no_retry() -> None:
    operation = Flaky(ConnectionError("once"))
    with pytest.raises(ConnectionError):
        call_with_retries(
            operation, Backoff(attempts=1), retry_connection_errors, sleep=Sleeps()
        )
    assert operation.calls == 1


def test_base_exceptions_are_never_retried() -> None:
    calls: list[int] = []

    def interrupted() -> str:
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call_with_retries(
            interrupted, Backoff(attempts=3), lambda exc: True, sleep=Sleeps()
        )
    assert calls == [1]


def test_the_predicate_sees_each_error() -> None:
    errors = [ConnectionError("a"), TimeoutError("b")]
    seen: list[BaseException] = []

    def retry_all(exc: BaseException) -> bool:
        seen.append(exc)
        return True

    call_with_retries(
        Flaky(*errors), Backoff(attempts=3, base_delay=0.0), retry_all, sleep=Sleeps()
    )
    assert seen == errors


def test_retries_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="modules.backoff")
    call_with_retries(
        Flaky(ConnectionError("refused")),
        Backoff(attempts=2, base_delay=0.0),
        retry_connection_errors,
        describe="fetch of x.jpeg",
        sleep=Sleeps(),
    )
    (message,) = [r.getMessage() for r in caplog.records if r.name == "modules.backoff"]
    assert "fetch of x.jpeg" in message and "refused" in message and "1/1" in message


def test_the_default_sleep_really_waits() -> None:
    started = time.monotonic()
    call_with_retries(
        Flaky(ConnectionError("x")),
        Backoff(attempts=2, base_delay=0.05),
        retry_connection_errors,
    )
    assert time.monotonic() - started >= 0.05
