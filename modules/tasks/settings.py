"""Where the tasks go and how they are retried, from the environment.

Every process of a deployment (the ``enqueue`` client, each worker, beat) reads the
same variables, so a worker started by ``celery -A modules.tasks.app worker`` is
configured exactly as one started by ``draydog worker``, which sets them from its
options.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

BROKER_ENV = "DRAYDOG_BROKER_URL"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
RESULT_BACKEND_ENV = "DRAYDOG_RESULT_BACKEND"
RETRIES_ENV = "DRAYDOG_TASK_RETRIES"
RETRY_DELAY_ENV = "DRAYDOG_TASK_RETRY_DELAY"
FETCH_WORKERS_ENV = "DRAYDOG_FETCH_WORKERS"
DEFAULT_QUEUE = "draydog"

AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
REDIS_SCHEMES = ("redis", "rediss")
_QUEUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")


def broker_url(value: str | None = None) -> str:
    """``value``, else ``$DRAYDOG_BROKER_URL``, else the local RabbitMQ; checked."""
    return check_broker_url(value or os.environ.get(BROKER_ENV) or DEFAULT_BROKER_URL)


def check_broker_url(url: str) -> str:
    """``url`` if it names an AMQP or Redis broker, else ValueError in one line.

    Kombu takes almost anything and fails later, at the first connection, with an
    error about something else; a bad URL is refused here instead.
    """
    shown = _hide_password(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed broker URL {shown!r}: {exc}") from exc
    if parts.scheme not in AMQP_SCHEMES + REDIS_SCHEMES:
        raise ValueError(
            f"malformed broker URL {shown!r}: expected amqp://, amqps:// or redis://"
        )
    if not parts.hostname:
        raise ValueError(f"malformed broker URL {shown!r}: no host")
    if port == 0:
        raise ValueError(f"malformed broker URL {shown!r}: port 0")
    if parts.scheme in REDIS_SCHEMES and parts.path.strip("/"):
        if not parts.path.strip("/").isdigit():
            raise ValueError(
                f"malformed broker URL {shown!r}: a Redis database is a number"
            )
    return url


def result_backend(broker: str) -> str:
    """``$DRAYDOG_RESULT_BACKEND``, else ``rpc://`` for AMQP (results come back to
    the client that sent the tasks as messages: nothing to run or clean up beside
    the broker) and the broker itself for Redis."""
    configured = os.environ.get(RESULT_BACKEND_ENV)
    if configured:
        return configured
    return "rpc://" if urlsplit(broker).scheme in AMQP_SCHEMES else broker


def check_queue(name: str) -> str:
    """A queue name: letters, digits and ``_.:-``, at most 200 characters."""
    if not isinstance(name, str) or not _QUEUE_RE.fullmatch(name):
        raise ValueError(
            f"invalid queue name {name!r}: expected [A-Za-z0-9][A-Za-z0-9_.:-]*"
        )
    return name


MAX_RETRY_DELAY = 900.0
"""The longest wait before a retry: 15 minutes, half of RabbitMQ's default
``consumer_timeout`` (30 minutes since 3.8.17). With ``task_acks_late`` a worker
takes a delayed retry at once and holds it unacknowledged until it is due, then
while it runs; a message held past ``consumer_timeout`` makes RabbitMQ close the
channel and the Celery worker exit (celery/celery#6760). The other half is the
task's own run."""


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures are retried ``retries`` times, ``delay * 2**n`` seconds
    apart (at most ``max_delay``, itself at most :data:`MAX_RETRY_DELAY`)."""

    retries: int = 8
    delay: float = 30.0
    max_delay: float = MAX_RETRY_DELAY

    def __post_init__(self) -> None:
        if not 0 <= self.delay <= self.max_delay <= MAX_RETRY_DELAY:
            raise ValueError(
                f"retry delays must be 0 <= delay ({self.delay}) <= max_delay "
                f"({self.max_delay}) <= {MAX_RETRY_DELAY:.0f} seconds"
            )

    def countdown(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` + 1 (``attempt`` counts from 0)."""
        return float(min(self.max_delay, self.delay * 2**attempt))


def retry_policy() -> RetryPolicy:
    """The policy ``$DRAYDOG_TASK_RETRIES`` and ``$DRAYDOG_TASK_RETRY_DELAY`` set."""
    default = RetryPolicy()
    retries = _number(RETRIES_ENV, default.retries, int)
    delay = _number(RETRY_DELAY_ENV, default.delay, float)
    if not 0 <= retries <= 100:
        raise ValueError(f"{RETRIES_ENV} must be 0..100, not {retries}")
    if not 0 <= delay <= MAX_RETRY_DELAY:  # also refuses nan
        raise ValueError(
            f"{RETRY_DELAY_ENV} must be 0..{MAX_RETRY_DELAY:.0f} seconds, not {delay}: "
            "a longer wait outlasts RabbitMQ's consumer_timeout (30 min by default), "
            "which closes the channel and stops the worker"
        )
    return RetryPolicy(int(retries), float(delay))


def fetch_workers() -> int:
    """Parallel downloads within one task (``$DRAYDOG_FETCH_WORKERS``, 8)."""
    return int(_number(FETCH_WORKERS_ENV, 8, int))


def _number(env: str, default: float, kind: type[int] | type[float]) -> float:
    value = os.environ.get(env)
    if not value:
        return default
    try:
        return kind(value)
    except ValueError as exc:
        raise ValueError(f"{env} must be a number, not {value!r}") from exc


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
