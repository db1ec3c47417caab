"""Failures leave nothing half-written, and two writers of one key leave one whole object."""

from __future__ import annotations

import errno
import multiprocessing
import socket
import threading
from pathlib import Path
from multiprocessing.synchronize import Barrier
from typing import TYPE_CHECKING

import boto3
import pytest

from modules.storage import LocalStorage, Storage, StorageError, open_storage
from modules.storage.s3 import S3Storage, new_s3_client
from tests.s3_server import MotoServer, make_bucket, point_boto3_at
from tests.storage.test_contract import KEY, PREFIX, jpeg

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.slow

OTHER = "apm/in_gate/2025-09-06/in_gate_20250906T230800.jpg"


def test_s3_stopped_mid_test_is_a_clear_error_and_leaves_nothing(
    own_server: MotoServer,
) -> None:
    storage = S3Storage(
        make_bucket(own_server.endpoint), PREFIX, client=new_s3_client(max_attempts=2)
    )
    storage.put(KEY, jpeg(1))
    own_server.stop()

    with pytest.raises(StorageError, match="upload failed") as caught:
        storage.put(OTHER, jpeg(2))
    assert caught.value.key == OTHER
    assert OTHER in str(caught.value)
    with pytest.raises(StorageError, match="stat failed"):
        storage.stat(KEY)  # an outage is not an absence
    with pytest.raises(StorageError, match="list failed"):
        list(storage.list())

    own_server.start_again()
    assert storage.stat(OTHER) is None
    assert list(storage.list()) == [(KEY, len(jpeg(1)))]
    assert storage.read(KEY) == jpeg(1)


class CuttingProxy:
    """Forwards to the server, then goes dead after ``limit`` bytes of a request, as a
    server that stops in the middle of a body."""

    def __init__(self, upstream_port: int, limit: int) -> None:
        self.upstream_port = upstream_port
        self.limit = limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        threading.Thread(
            target=self._pipe, args=(upstream, client), daemon=True
        ).start()
        sent = 0
        with client, upstream:
            while data := client.recv(65536):
                if sent + len(data) > self.limit:
                    upstream.sendall(data[: self.limit - sent])
                    self.cuts += 1
                    return  # both sockets close: the body never arrives whole
                upstream.sendall(data)
                sent += len(data)

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            return


def test_s3_upload_cut_off_mid_body_leaves_no_object(
    own_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = make_bucket(own_server.endpoint)
    proxy = CuttingProxy(own_server.port, limit=300_000)
    point_boto3_at(monkeypatch, f"http://127.0.0.1:{proxy.port}", tmp_path)
    storage = S3Storage(bucket, PREFIX, client=new_s3_client(max_attempts=3))
    storage.put(KEY, jpeg(1, 1000))  # small bodies pass

    with pytest.raises(StorageError, match="upload failed") as caught:
        storage.put(OTHER, jpeg(2, 2_000_000))

    assert caught.value.key == OTHER
    assert proxy.cuts >= 3, "every one of the standard mode's attempts was cut"
    direct = S3Storage(bucket, PREFIX, client=_direct_client(own_server))
    assert direct.stat(OTHER) is None
    assert [key for key, _ in direct.list()] == [KEY]
    uploads = direct.client.list_multipart_uploads(Bucket=bucket)
    assert uploads.get("Uploads", []) == []


def _direct_client(server: MotoServer) -> S3Client:
    """A client that talks to the server itself, past the proxy."""
    return boto3.session.Session().client("s3", endpoint_url=server.endpoint)


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_local_write_that_fails_leaves_the_old_object_and_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    storage = LocalStorage(tmp_path)
    storage.put(KEY, jpeg(1))

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(f"modules.storage.local.os.{failing}", disk_full)
    for key in (KEY, OTHER):
        with pytest.raises(StorageError, match="No space left") as caught:
            storage.put(key, jpeg(2))
        assert caught.value.key == key

    monkeypatch.undo()
    assert storage.read(KEY) == jpeg(1)
    assert storage.stat(OTHER) is None
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [KEY.split("/")[-1]]


def _write_repeatedly(location: str, seed: int, rounds: int, start: Barrier) -> None:
    storage = open_storage(location)
    body = jpeg(seed, 1_000_000)
    start.wait()
    for _ in range(rounds):
        storage.put(KEY, body)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_two_processes_writing_one_key_leave_one_whole_object(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "local":
        location = str(tmp_path / "archive")
    else:
        location = f"s3://{request.getfixturevalue('s3_bucket')}/{PREFIX}"
    storage: Storage = open_storage(location)
    storage.put(KEY, jpeg(0, 1_000_000))
    bodies = {jpeg(seed, 1_000_000) for seed in (0, 1, 2)}
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writers = [
        context.Process(target=_write_repeatedly, args=(location, seed, 15, start))
        for seed in (1, 2)
    ]
    for writer in writers:
        writer.start()

    reads = 0
    while any(writer.is_alive() for writer in writers):
        assert storage.read(KEY) in bodies, "a reader saw a mixed or partial body"
        reads += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0

    assert storage.read(KEY) in bodies - {jpeg(0, 1_000_000)}
    assert storage.stat(KEY) == 1_000_000
    assert reads > 0
    if kind == "local":
        assert [p.name for p in tmp_path.rglob("*.part")] == []


def test_local_put_survives_a_delete_emptying_its_folder(tmp_path: Path) -> None:
    """A delete removes the folder its last object leaves empty; a put that made
    that folder a moment before makes it again rather than fail."""
    storage = LocalStorage(tmp_path)
    errors: list[Exception] = []

    def churn(key: str) -> None:
        try:
            for number in range(400):
                storage.put(key, jpeg(number, 256))
                storage.delete(key)
        except StorageError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(key,)) for key in (KEY, OTHER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert list(tmp_path.iterdir()) == []
