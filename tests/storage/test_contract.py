"""The storage contract, the same tests on a local folder and on S3 (moto on 127.0.0.1)."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modules.storage import (
    InvalidKey,
    KeyNotFound,
    LocalStorage,
    Storage,
    StorageError,
    StoredObject,
)
from modules.storage.s3 import S3Storage

KEY = "apm/in_gate/2025-09-06/in_gate_20250906T230734.jpg"
PREFIX = "archive/v1"


def jpeg(seed: int, size: int = 2048) -> bytes:
    """A body that differs at every byte from another seed's, so a mix would show."""
    filler = bytes((seed + i * 7) % 251 for i in range(size - 5))
    return b"\xff\xd8\xff" + filler + b"\xff\xd9"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "archive")
    bucket: str = request.getfixturevalue("s3_bucket")
    return S3Storage(bucket, PREFIX)


def test_put_stat_read_delete(storage: Storage) -> None:
    body = jpeg(1)
    assert storage.stat(KEY) is None
    assert not storage.exists(KEY)

    assert storage.put(KEY, body) == len(body)

    assert storage.stat(KEY) == len(body)
    assert storage.exists(KEY)
    assert storage.read(KEY) == body
    assert storage.sha256(KEY) == hashlib.sha256(body).hexdigest()
    with storage.open(KEY) as handle:
        assert handle.read(3) == b"\xff\xd8\xff"
        assert handle.read() == body[3:]
    storage.delete(KEY)
    assert storage.stat(KEY) is None
    assert list(storage.list()) == []
    storage.delete(KEY)  # again: nothing to delete is no error


def test_put_from_a_file_replaces_byte_exact(storage: Storage, tmp_path: Path) -> None:
    storage.put(KEY, jpeg(1, 10_000))
    source = tmp_path / "fetched.jpg"
    source.write_bytes(jpeg(2, 300_000))

    assert storage.put(KEY, source) == 300_000

    assert storage.read(KEY) == source.read_bytes()
    assert storage.stat(KEY) == 300_000
    assert source.read_bytes() == jpeg(2, 300_000), "the source is left as it was"


def test_missing_object_is_key_not_found(storage: Storage) -> None:
    with pytest.raises(KeyNotFound) as caught:
        storage.read(KEY)
    assert caught.value.key == KEY
    assert KEY in str(caught.value)


def test_listing_in_key_order_by_prefix(storage: Storage) -> None:
    keys = [
        "apm/in_gate/2025-09-06/in_gate_20250906T230734.jpg",
        "apm/in_gate/2025-09-06/in_gate_20250906T230734_thumb.jpg",
        "apm/in_gate/2025-09-07/in_gate_20250907T000101.jpg",
        "apm/in_gate/2025-10-01/in_gate_20251001T120000.jpg",
        "apm/in_gate-2/2025-09-06/in_gate-2_20250906T000000.jpg",
        "apm/out_gate/2025-09-06/out_gate_20250906T010203.jpg",
        "fms/in_gate/2025-09-06/in_gate_20250906T010203.jpg",
    ]
    for number, key in enumerate(reversed(keys)):
        storage.put(key, jpeg(number, 100 + number))

    everything = list(storage.list())
    assert [found.key for found in everything] == sorted(keys)
    assert StoredObject(keys[-1], 100) in everything
    assert all(isinstance(found, tuple) for found in everything)
    assert [key for key, _ in storage.list("apm/in_gate/")] == keys[:4]
    assert [key for key, _ in storage.list("apm/in_gate/2025-09-")] == keys[:3]
    assert [key for key, _ in storage.list("apm/in_gate")] == sorted(keys[:5])
    assert list(storage.list(keys[0])) == [StoredObject(keys[0], 106)]
    assert list(storage.list("zpm/")) == []
    assert list(storage.keys()) == sorted(keys)
    assert list(storage.keys("apm/in_gate/2025-09-")) == keys[:3]


def test_folders_are_the_names_under_a_prefix(storage: Storage) -> None:
    for key in (
        "apm/in_gate/2025-09-06/in_gate_20250906T230734.jpg",
        "apm/in_gate/2025-09-07/in_gate_20250907T000101.jpg",
        "apm/out_gate/2025-09-06/out_gate_20250906T010203.jpg",
        "fms/in_gate/2025-09-06/in_gate_20250906T010203.jpg",
    ):
        storage.put(key, jpeg(0, 64))

    assert list(storage.folders()) == ["apm", "fms"]
    assert list(storage.folders("apm/")) == ["in_gate", "out_gate"]
    assert list(storage.folders("apm/in_gate/")) == ["2025-09-06", "2025-09-07"]
    assert list(storage.folders("apm/in_gate/2025-09-06/")) == []
    assert list(storage.folders("ctr/")) == []
    assert storage.stat("apm/in_gate") is None, "a folder is no object"

    storage.delete("apm/in_gate/2025-09-07/in_gate_20250907T000101.jpg")
    assert list(storage.folders("apm/in_gate/")) == ["2025-09-06"]
    with pytest.raises(InvalidKey):
        list(storage.folders("apm"))


def test_listing_more_than_a_page(storage: Storage) -> None:
    keys = sorted(
        f"apm/in_gate/2025-09-{day:02d}/in_gate_202509{day:02d}T{second:06d}.jpg"
        for day in (6, 7)
        for second in range(603)
    )
    for number, key in enumerate(keys):
        storage.put(key, jpeg(number % 200, 64 + number % 50))
    requests = count_list_requests(storage)

    listed = list(storage.list("apm/"))

    assert [key for key, _ in listed] == keys
    assert [size for _, size in listed] == [64 + n % 50 for n in range(len(keys))]
    if isinstance(storage, S3Storage):
        assert requests() == 2, "1,206 keys come in two pages of at most 1,000"


def count_list_requests(storage: Storage) -> Callable[[], int]:
    """How many ListObjectsV2 requests the storage has made since (0 for a folder)."""
    calls: list[str] = []
    if isinstance(storage, S3Storage):
        storage.client.meta.events.register(
            "before-call.s3.ListObjectsV2", lambda **_: calls.append("list")
        )
    return lambda: len(calls)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside.jpg",
        "apm/../../outside.jpg",
        "apm/./in_gate.jpg",
        "apm//in_gate.jpg",
        "apm/in_gate/",
        "apm\\in_gate\\x.jpg",
        "C:/x.jpg",
        "apm/nul\0.jpg",
    ],
)
def test_invalid_keys_are_refused(storage: Storage, key: str) -> None:
    for operation in (
        storage.stat,
        storage.exists,
        storage.read,
        storage.delete,
        storage.location,
        lambda k: storage.put(k, b"\xff\xd8\xff\xd9"),
    ):
        with pytest.raises(InvalidKey):
            operation(key)
    assert list(storage.list()) == []


@pytest.mark.parametrize("prefix", ["/abs/", "../", "a/../b", "a\\b"])
def test_invalid_prefixes_are_refused(storage: Storage, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        list(storage.list(prefix))


def test_a_body_over_the_cap_is_refused(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modules.storage.base.MAX_PUT_BYTES", 1000)
    storage.put(KEY, jpeg(1, 1000))

    with pytest.raises(StorageError, match="cap") as caught:
        storage.put(KEY, jpeg(2, 1001))

    assert caught.value.key == KEY
    assert storage.read(KEY) == jpeg(1, 1000)


def test_an_unreadable_source_is_a_storage_error(
    storage: Storage, tmp_path: Path
) -> None:
    with pytest.raises(StorageError, match="cannot read") as caught:
        storage.put(KEY, tmp_path / "gone.jpg")
    assert caught.value.key == KEY
    assert storage.stat(KEY) is None


def test_local_layout_and_location(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "archive")
    storage.put(KEY, jpeg(3))

    path = tmp_path / "archive" / "apm" / "in_gate" / "2025-09-06"
    assert (path / "in_gate_20250906T230734.jpg").read_bytes() == jpeg(3)
    assert os.listdir(path) == ["in_gate_20250906T230734.jpg"], "no .part is left"
    assert storage.location(KEY) == str(tmp_path / "archive" / KEY)
    assert str(storage) == str(tmp_path / "archive")

    storage.delete(KEY)
    assert os.listdir(tmp_path / "archive") == [], "empty folders go with the last"


def test_local_listing_skips_parts_being_written(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put(KEY, jpeg(3))
    folder = tmp_path / "apm" / "in_gate" / "2025-09-06"
    (folder / ".in_gate_20250906T230735.jpg.host-1-0123abcd.part").write_bytes(b"x")

    assert [key for key, _ in storage.list()] == [KEY]


def test_s3_objects_sit_under_the_prefix(s3_bucket: str) -> None:
    storage = S3Storage(s3_bucket, f"/{PREFIX}/")
    body = jpeg(4, 5000)
    storage.put(KEY, body)
    outside = S3Storage(s3_bucket)
    outside.put("other/thing.jpg", b"not ours")

    raw = storage.client.get_object(Bucket=s3_bucket, Key=f"{PREFIX}/{KEY}")
    assert raw["Body"].read() == body
    assert raw["ContentType"] == "image/jpeg"
    assert storage.location(KEY) == f"s3://{s3_bucket}/{PREFIX}/{KEY}"
    assert str(storage) == f"s3://{s3_bucket}/{PREFIX}"
    assert list(storage.list()) == [StoredObject(KEY, 5000)]
    assert list(storage.folders()) == ["apm"]
    assert [key for key, _ in outside.list()] == [
        "archive/v1/" + KEY,
        "other/thing.jpg",
    ]


def test_s3_put_is_one_request_with_the_body_md5(s3_bucket: str) -> None:
    """The server checks the body against Content-MD5 before the object exists
    (moto does not, so the header itself is checked here), and nothing goes in parts."""
    storage = S3Storage(s3_bucket, PREFIX)
    sent: list[tuple[str, Any]] = []
    storage.client.meta.events.register(
        "before-send.s3",
        lambda request, **_: sent.append((request.method, request.headers)),
    )
    body = jpeg(5, 24 * 1024 * 1024)

    storage.put(KEY, body)

    assert [method for method, _ in sent] == ["PUT"]
    headers = sent[0][1]
    assert headers["Content-MD5"] == base64.b64encode(hashlib.md5(body).digest())
    assert int(headers["Content-Length"]) == len(body)
    assert storage.read(KEY) == body


def test_s3_missing_bucket_is_a_clear_error(s3_env: str) -> None:
    storage = S3Storage("no-such-bucket-here", PREFIX)

    with pytest.raises(StorageError, match="NoSuchBucket") as caught:
        storage.put(KEY, jpeg(1))
    assert caught.value.key == KEY
    with pytest.raises(StorageError, match="NoSuchBucket"):
        list(storage.list())
