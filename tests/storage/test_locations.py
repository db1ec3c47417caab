"""``--dir`` as the user writes it, to its storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from modules.storage import InvalidKey, LocalStorage, open_storage
from modules.storage.s3 import S3Storage


def test_a_path_is_a_local_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    storage = open_storage("data/images")

    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "data" / "images"
    assert isinstance(open_storage(tmp_path), LocalStorage)


def test_an_s3_url_is_a_bucket_and_prefix(s3_env: str) -> None:
    storage = open_storage("s3://pictures/draydog/archive/")

    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("pictures", "draydog/archive")
    assert storage.client.meta.endpoint_url == s3_env
    assert storage.location("apm/x.jpg") == "s3://pictures/draydog/archive/apm/x.jpg"
    bare = open_storage("s3://pictures")
    assert isinstance(bare, S3Storage)
    assert bare.location("apm/x.jpg") == "s3://pictures/apm/x.jpg"


@pytest.mark.parametrize(
    "location", ["s3://", "s3:///prefix", "s3://bucket/p?versionId=1", "s3://b/p#x"]
)
def test_malformed_s3_urls_are_refused(location: str) -> None:
    with pytest.raises(ValueError, match="not an S3 location"):
        open_storage(location)


def test_an_s3_prefix_is_checked_like_a_key(s3_env: str) -> None:
    with pytest.raises(InvalidKey):
        open_storage("s3://bucket/a/../b")
