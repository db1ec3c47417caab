"""``staging_path`` and ``commit``: a verified temp file taken in (a rename in a folder,
one upload to a bucket), and ``check`` of the archive itself."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from modules.storage import ArchiveNotFound, LocalStorage, Storage, StorageError
from modules.storage.base import STAGING_ENV, default_staging_dir
from modules.storage.s3 import S3Storage
from tests.storage.test_contract import KEY, PREFIX, jpeg


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "archive")
    bucket: str = request.getfixturevalue("s3_bucket")
    return S3Storage(bucket, PREFIX, staging_dir=tmp_path / "staging")


def staged(storage: Storage, body: bytes) -> Path:
    part = storage.staging_path(KEY)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(body)
    return part


def test_a_committed_part_is_the_object_and_is_gone(storage: Storage) -> None:
    part = staged(storage, jpeg(1, 5000))
    assert part.name.startswith(".in_gate_20250906T230734.jpg.")
    assert part.name.endswith(".part")
    assert storage.staging_path(KEY) != part, "each call a fresh name"

    assert storage.commit(KEY, part) == 5000

    assert storage.read(KEY) == jpeg(1, 5000)
    assert not part.exists()
    assert [key for key, _ in storage.list()] == [KEY], "no .part is an object"


def test_a_folder_commits_by_renaming_beside_the_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "archive")
    part = staged(storage, jpeg(2))
    assert part.parent == storage.path(KEY).parent
    inode = part.stat().st_ino

    storage.commit(KEY, part)

    assert storage.path(KEY).stat().st_ino == inode, "renamed, not copied"


def test_a_part_on_another_file_system_is_copied_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    part = tmp_path / "elsewhere.part"
    part.write_bytes(jpeg(3))

    real_replace = os.replace
    calls: list[object] = []

    def first_cross_device(source: object, destination: object) -> None:
        if not calls:
            calls.append(source)
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(source, destination)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", first_cross_device)

    assert storage.commit(KEY, part) == len(jpeg(3))

    assert storage.read(KEY) == jpeg(3)
    assert not part.exists()


def test_a_failed_commit_leaves_no_part_and_no_object(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = staged(storage, jpeg(4))

    def refuse(key: str, source: Path | bytes) -> int:
        raise StorageError(key, "upload failed: refused")

    monkeypatch.setattr(storage, "put", refuse)
    if isinstance(storage, LocalStorage):

        def denied(source: object, destination: object) -> None:
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(os, "replace", denied)

    with pytest.raises(StorageError) as caught:
        storage.commit(KEY, part)

    assert caught.value.key == KEY
    assert not part.exists()
    monkeypatch.undo()
    assert storage.stat(KEY) is None


def test_the_staging_folder_is_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STAGING_ENV, str(tmp_path / "stage"))
    assert default_staging_dir() == tmp_path / "stage"
    monkeypatch.delenv(STAGING_ENV)
    assert default_staging_dir().name.startswith("draydog-staging-")


def test_check_refuses_a_missing_bucket_and_passes_an_existing_one(
    s3_bucket: str, tmp_path: Path
) -> None:
    S3Storage(s3_bucket, PREFIX).check()
    LocalStorage(tmp_path / "not-yet").check()  # a folder is made when needed
    with pytest.raises(ArchiveNotFound, match="no bucket 'no-such-bucket'"):
        S3Storage("no-such-bucket", PREFIX).check()
