"""Fixtures of the Celery tests: the broker (started when down) and fresh queue names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.workers_helpers import require_browser
from tests.tasks.helpers import delete_queues, require_rabbitmq, unique_queue


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> Iterator[str]:
    """A queue of this test's own on the running RabbitMQ, deleted afterwards."""
    require_rabbitmq()
    require_browser()
    name = unique_queue(request.node.name[:30].replace("[", "-").replace("]", ""))
    yield name
    try:
        delete_queues([name])
    except Exception:
        pass


from tests.s3_server import s3_bucket, s3_endpoint, s3_env  # noqa: E402

__all__ = ["queue", "s3_bucket", "s3_endpoint", "s3_env"]
