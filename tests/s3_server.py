"""A real S3 API on 127.0.0.1 for the tests: moto's server, never AWS.

``s3_endpoint`` (session) serves for the whole run from a process of its own
(:class:`MotoProcess`: the server's work runs beside the tests' rather than in their
process, where it would share one interpreter lock and the coverage tracer);
``s3_env`` points boto3 at it with fake credentials and no profile files, so nothing
a test does can reach AWS, and ``s3_bucket`` is a fresh, empty bucket per test. Import the fixtures into any
test folder's conftest.py (``from tests.s3_server import s3_bucket, ...``).
A test that stops the server makes its own :class:`MotoServer`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from modules.storage.s3 import new_s3_client

REGION = "us-east-1"


class MotoServer:
    """moto's S3 on 127.0.0.1 in a thread; stopped and started again on the same port."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.stop()

    def start_again(self) -> None:
        """Serve again on the same port (moto keeps its buckets in this process)."""
        self._server = ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.port, verbose=False
        )
        self._server.start()


_SERVE = """
import logging
import sys
from moto.server import ThreadedMotoServer

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # serve until the test process closes the pipe (or is gone)
server.stop()
"""


class MotoProcess:
    """moto's S3 on 127.0.0.1 in a Python process of its own, until :meth:`stop`.

    The same server as :class:`MotoServer`, run by another interpreter: its request
    handling no longer competes with the tests for this process's interpreter lock,
    and coverage (which measures ``modules`` only) does not trace it. It ends when
    its stdin closes, so it cannot outlive the test run."""

    def __init__(self) -> None:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("COVERAGE_")
        }
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"moto's server did not start: {line!r}")
        self.port = int(line)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def point_boto3_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, home: Path) -> None:
    """The standard variables for ``endpoint``, fake credentials, no profile or config files."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config-absent"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-creds-absent"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def make_bucket(endpoint: str) -> str:
    """A new empty bucket on the server at ``endpoint``; its name."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=REGION
    )
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of the moto server shared by the run (in a process of its own)."""
    server = MotoProcess()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """boto3 configured by the environment for the test server only; its URL."""
    point_boto3_at(monkeypatch, s3_endpoint, tmp_path)
    client = new_s3_client()
    assert client.meta.endpoint_url == s3_endpoint, "boto3 would leave this machine"
    return s3_endpoint


@pytest.fixture
def s3_bucket(s3_env: str) -> str:
    """A fresh, empty bucket on the test server (boto3 pointed at it)."""
    return make_bucket(s3_env)


@pytest.fixture
def own_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MotoServer]:
    """A moto server of this test alone, which it may stop; boto3 pointed at it."""
    server = MotoServer()
    point_boto3_at(monkeypatch, server.endpoint, tmp_path)
    try:
        yield server
    finally:
        server.stop()
