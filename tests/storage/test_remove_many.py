"""``Storage.remove_many`` on a folder, on S3 (moto on 127.0.0.1) and through the
one-key-at-a-time default: a key that is no key fails alone, the others go."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from modules.storage import LocalStorage, Storage, StoredObject
from modules.storage.s3 import S3Storage

GOOD = ["apm/in_gate/2025-01-10/a.jpg", "apm/in_gate/2025-01-10/b.jpg"]
BAD = ["/srv/archive/apm/in_gate/2025-01-10/c.jpg", "apm/../../etc/passwd"]


class OneAtATime(Storage):
    """A folder seen only through the abstract operations: the base class's default."""

    def __init__(self, folder: LocalStorage) -> None:
        self.folder = folder

    def stat(self, key: str) -> int | None:
        return self.folder.stat(key)

    def put(self, key: str, source: Path | bytes) -> int:
        return self.folder.put(key, source)

    def open(self, key: str) -> io.BufferedIOBase:
        return self.folder.open(key)

    def delete(self, key: str) -> None:
        self.folder.delete(key)

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        return self.folder.list(prefix)

    def folders(self, prefix: str = "") -> Iterator[str]:
        return self.folder.folders(prefix)

    def location(self, key: str) -> str:
        return self.folder.location(key)


@pytest.fixture(params=["local", "s3", "default"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "s3":
        return S3Storage(request.getfixturevalue("s3_bucket"), "archive")
    folder = LocalStorage(tmp_path / "archive")
    return folder if request.param == "local" else OneAtATime(folder)


def test_a_key_that_is_no_key_fails_alone(storage: Storage) -> None:
    for key in GOOD:
        storage.put(key, b"\xff\xd8\xff\xd9")
    removal = storage.remove_many([BAD[0], GOOD[0], BAD[1], GOOD[1], GOOD[0]])
    assert removal.removed == GOOD
    assert removal.already_gone == []
    assert sorted(removal.failed) == sorted(BAD)
    assert all("key" in reason for reason in removal.failed.values())
    assert list(storage.list()) == []
