"""Which storages name one archive: the downloader keeps day records and key rows
only for its own, so a scratch copy elsewhere must never pass for it."""

from __future__ import annotations

from pathlib import Path

import boto3

from modules.storage import LocalStorage
from modules.storage.s3 import S3Storage


def _s3(bucket: str, prefix: str, endpoint: str) -> S3Storage:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    return S3Storage(bucket, prefix, client=client)


def test_a_folder_is_the_same_place_by_its_real_path(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (tmp_path / "link").symlink_to(archive)
    own = LocalStorage(archive)
    assert own.same_place(LocalStorage(tmp_path / "link"))
    assert own.same_place(LocalStorage(tmp_path / "archive" / ".." / "archive"))
    assert not own.same_place(LocalStorage(tmp_path / "scratch"))
    assert not own.same_place(_s3("archive", "", "http://127.0.0.1:9"))


def test_a_bucket_is_the_same_place_at_the_same_endpoint_only() -> None:
    own = _s3("pictures", "v1", "http://127.0.0.1:9000")
    assert own.same_place(_s3("pictures", "v1", "http://127.0.0.1:9000"))
    assert not own.same_place(_s3("pictures", "v1", "http://minio.internal:9000"))
    assert not own.same_place(_s3("pictures", "v2", "http://127.0.0.1:9000"))
    assert not own.same_place(_s3("other", "v1", "http://127.0.0.1:9000"))
    assert not own.same_place(LocalStorage(Path("/pictures/v1")))
