"""prune on a bucket deletes in batches (DeleteObjects), through moto's real S3 server.

Requests are counted by operation with a botocore event hook on the storage's
client. A key the server refuses is made for real: a bucket policy denying
``s3:DeleteObject`` on it, which S3 (and moto) report in DeleteObjects' ``Errors``.
A server that is down is a MotoServer of the test's own, stopped.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from modules.database import queries
from modules.downloader.archive import picture_key
from modules.service.prune import prune
from modules.storage import LocalStorage, StorageError
from modules.storage.s3 import S3Storage, new_s3_client
from tests.s3_server import MotoServer, make_bucket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TERMINAL, STREAM, PREFIX = "apm", "in_gate", "archive/v1"
OLD = datetime(2025, 1, 10, 12, 0, tzinfo=timezone.utc)  # 1,500 minutes: two days
NEW = datetime(2025, 1, 25, 12, 0, tzinfo=timezone.utc)
CUTOFF = date(2025, 1, 20)


class Requests:
    """The S3 requests a client sends, by operation (``before-send``: each retry too)."""

    def __init__(self, client: S3Client) -> None:
        self.sent: Counter[str] = Counter()
        client.meta.events.register("before-send.s3", self._count)

    def _count(self, event_name: str, **kwargs: Any) -> None:
        self.sent[event_name.rsplit(".", 1)[-1]] += 1


def instants(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(minutes=n) for n in range(count)]


def key(instant: datetime) -> str:
    return picture_key(TERMINAL, STREAM, instant)


def store(
    client: S3Client, bucket: str, times: list[datetime], *, rows: bool = True
) -> list[str]:
    """Objects (and, if asked, rows) of pictures at ``times``; their keys."""
    keys = [key(t) for t in times]

    def put(name: str) -> None:
        client.put_object(Bucket=bucket, Key=f"{PREFIX}/{name}", Body=b"\xff\xd8jpeg")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))
    if rows:
        result = queries.insert_images(
            {"filepath": k, "camera_id": STREAM, "timestamp": t, "file_size": 6}
            for k, t in zip(keys, times)
        )
        assert result.inserted == len(keys)
    return keys


def bucket_keys(client: S3Client, bucket: str) -> set[str]:
    found: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update(entry["Key"] for entry in page.get("Contents", []))
    return found


@pytest.fixture
def client(s3_env: str) -> S3Client:
    return new_s3_client()


def test_prune_of_1500_pictures_deletes_in_batches(
    database: str, s3_bucket: str, client: S3Client
) -> None:
    old = store(client, s3_bucket, instants(OLD, 1500))
    new = store(client, s3_bucket, instants(NEW, 20))
    orphans = store(
        client, s3_bucket, instants(OLD + timedelta(seconds=30), 5), rows=False
    )
    gone = old[100:110]  # rows whose objects went before the prune
    client.delete_objects(
        Bucket=s3_bucket,
        Delete={"Objects": [{"Key": f"{PREFIX}/{k}"} for k in gone]},
    )
    storage = S3Storage(s3_bucket, PREFIX, client=client)
    requests = Requests(client)

    report = prune(CUTOFF, archive=storage)

    assert (report.files_removed, report.files_already_gone) == (1490 + 5, 10)
    assert (report.rows_removed, report.failed) == (1500, [])
    assert bucket_keys(client, s3_bucket) == {f"{PREFIX}/{k}" for k in new}
    assert {image.filepath for image in queries.iter_images()} == set(new)
    assert not bucket_keys(client, s3_bucket) & {f"{PREFIX}/{k}" for k in orphans}
    # Batched: three pages of 500 rows and one of the files without rows, one
    # DeleteObjects each; no HEAD or DELETE per picture; a few listings.
    assert requests.sent["DeleteObjects"] == 4
    assert requests.sent["HeadObject"] == requests.sent["DeleteObject"] == 0
    assert requests.sent["ListObjectsV2"] <= 20, requests.sent
    assert sum(requests.sent.values()) <= 25, requests.sent

    requests.sent.clear()
    again = prune(CUTOFF, archive=storage)
    assert (again.files_removed, again.files_already_gone, again.rows_removed) == (
        0,
        0,
        0,
    )
    assert requests.sent["DeleteObjects"] == 0


def test_remove_many_sends_at_most_1000_keys_a_request(
    s3_bucket: str, client: S3Client
) -> None:
    keys = [f"{TERMINAL}/{STREAM}/2025-01-10/k{n:04d}.jpg" for n in range(1500)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda k: client.put_object(
                    Bucket=s3_bucket, Key=f"{PREFIX}/{k}", Body=b"x"
                ),
                keys[:1400],
            )
        )
    storage = S3Storage(s3_bucket, PREFIX, client=client)
    requests = Requests(client)
    removal = storage.remove_many(keys)
    assert removal.removed == keys[:1400]
    assert removal.already_gone == keys[1400:]
    assert removal.failed == {}
    assert requests.sent["DeleteObjects"] == 2
    assert requests.sent["ListObjectsV2"] == 2  # one folder, 1,400 objects
    assert bucket_keys(client, s3_bucket) == set()


def test_a_delete_objects_request_carries_its_content_md5(
    s3_bucket: str, client: S3Client
) -> None:
    # Stores such as MinIO refuse a DeleteObjects without Content-MD5, and botocore
    # 1.36+ sends only a CRC32; moto takes either, so the header is checked here.
    sent: list[tuple[bytes, bytes | None]] = []

    def capture(request: Any, **_: Any) -> None:  # a prepared request: bytes
        sent.append((bytes(request.body), request.headers.get("Content-MD5")))

    client.meta.events.register("before-send.s3.DeleteObjects", capture)
    keys = [f"{TERMINAL}/{STREAM}/2025-01-10/k{n}.jpg" for n in range(3)]
    for name in keys:
        client.put_object(Bucket=s3_bucket, Key=f"{PREFIX}/{name}", Body=b"x")
    removal = S3Storage(s3_bucket, PREFIX, client=client).remove_many(keys)
    assert removal.removed == keys
    assert len(sent) == 1
    body, md5 = sent[0]
    assert md5 == base64.b64encode(hashlib.md5(body).digest())


def deny_delete(client: S3Client, bucket: str, keys: list[str]) -> None:
    """A bucket policy denying DeleteObject on ``keys``: S3 refuses them one by one."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": [f"arn:aws:s3:::{bucket}/{PREFIX}/{k}" for k in keys],
            }
        ],
    }
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def test_a_key_the_bucket_refuses_keeps_its_row(
    database: str, s3_bucket: str, client: S3Client
) -> None:
    old = store(client, s3_bucket, instants(OLD, 600))
    stuck = [old[7], old[555]]  # one in each page of rows
    deny_delete(client, s3_bucket, stuck)
    storage = S3Storage(s3_bucket, PREFIX, client=client)

    report = prune(CUTOFF, archive=storage)

    assert report.failed == [
        (storage.location(k), "delete failed: AccessDenied Access Denied")
        for k in stuck
    ]
    assert (report.files_removed, report.rows_removed) == (598, 598)
    assert {image.filepath for image in queries.iter_images()} == set(stuck)
    assert bucket_keys(client, s3_bucket) == {f"{PREFIX}/{k}" for k in stuck}

    client.delete_bucket_policy(Bucket=s3_bucket)
    again = prune(CUTOFF, archive=storage)
    assert (again.files_removed, again.rows_removed, again.failed) == (2, 2, [])
    assert queries.count_images() == 0 and bucket_keys(client, s3_bucket) == set()


def test_a_server_that_is_down_removes_nothing_and_a_rerun_mends(
    database: str, own_server: MotoServer
) -> None:
    bucket = make_bucket(own_server.endpoint)
    client = new_s3_client(max_attempts=1)
    old = store(client, bucket, instants(OLD, 50))
    storage = S3Storage(bucket, PREFIX, client=client)

    own_server.stop()
    removal = storage.remove_many(old)
    assert (removal.removed, removal.already_gone) == ([], [])
    assert set(removal.failed) == set(old)
    with pytest.raises(StorageError):  # the old day folders cannot be listed
        prune(CUTOFF, archive=storage)
    assert queries.count_images() == 50  # every row stays with its file

    own_server.start_again()
    report = prune(CUTOFF, archive=storage)
    assert (report.files_removed, report.rows_removed, report.failed) == (50, 50, [])
    assert bucket_keys(client, bucket) == set()


def test_local_remove_many_removes_one_by_one_and_empties_folders(
    tmp_path: Path,
) -> None:
    storage = LocalStorage(tmp_path / "images")
    keys = [f"{TERMINAL}/{STREAM}/2025-01-10/p{n}.jpg" for n in range(3)]
    for k in keys[:2]:
        storage.put(k, b"x")
    storage.put(f"{TERMINAL}/{STREAM}/2025-01-11/q.jpg", b"x")
    folder = f"{TERMINAL}/{STREAM}/2025-01-11"  # a folder is no object: gone

    removal = storage.remove_many(keys + [folder])

    assert removal.removed == keys[:2]
    assert removal.already_gone == [keys[2], folder]
    assert removal.failed == {}
    assert list(storage.folders(f"{TERMINAL}/{STREAM}/")) == ["2025-01-11"]
