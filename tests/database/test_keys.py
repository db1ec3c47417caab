"""Storage keys and a picture's identity: paths under the archive root are stored
relative to it, one row per picture whatever path it came through."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from modules.database import models, queries
from modules.database.keys import (
    ArchiveRoot,
    is_key,
    key_for,
    path_for,
    stored_form,
)

T0 = datetime(2025, 9, 6, 23, 7, 34, tzinfo=timezone.utc)
KEY = "apm/in_gate/2025-09-06/in_gate_20250906T160734.jpg"


def picture(path: str, **fields: Any) -> dict[str, Any]:
    return {"filepath": path, "camera_id": "in_gate", "timestamp": T0, **fields}


def test_keys_are_posix_paths_relative_to_the_root(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    root.mkdir()
    assert key_for(root / KEY, root) == KEY
    assert key_for(f"{root}/apm/../apm/x.jpg", root) == "apm/x.jpg"
    assert key_for(tmp_path / "elsewhere.jpg", root) is None
    assert key_for(root, root) is None  # the root itself names no picture
    assert key_for(f"{root}-2/x.jpg", root) is None  # a sibling sharing the prefix


def test_a_root_reached_through_a_link_gives_the_same_keys(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "archive"
    real.mkdir(parents=True)
    mount = tmp_path / "mnt"
    mount.symlink_to(real)
    # A path through the link, or already resolved, under either form of the root.
    assert key_for(mount / KEY, mount) == KEY
    assert key_for(real / KEY, mount) == KEY
    assert key_for(mount / KEY, real) == KEY


def test_stored_and_full_forms() -> None:
    root = ArchiveRoot.of("/srv/archive")
    assert stored_form(f"/srv/archive/{KEY}", root) == KEY
    assert stored_form("/home/me/x.jpg", root) == "/home/me/x.jpg"
    assert stored_form(KEY, root) == KEY  # a relative path is a key already
    assert stored_form(f"/srv/archive/{KEY}", None) == f"/srv/archive/{KEY}"
    assert path_for(KEY, "/mnt/copy") == Path("/mnt/copy") / KEY
    assert path_for("/home/me/x.jpg", "/mnt/copy") == Path("/home/me/x.jpg")
    with pytest.raises(ValueError, match="archive root is needed"):
        path_for(KEY, None)
    assert root.key_of_stored(f"/srv/archive/{KEY}") == KEY
    assert root.key_of_stored("/srv/other/x.jpg") is None
    assert root.key_of_stored(KEY) == KEY


def test_a_path_under_the_root_is_stored_as_its_key_and_read_back_whole(
    database: str,
) -> None:
    image_id = queries.insert_image(
        f"/srv/archive/{KEY}", "in_gate", T0, root="/srv/archive"
    )
    outside = queries.insert_image(
        "/home/me/x.jpg", "in_gate", T0 + timedelta(1), root="/srv/archive"
    )
    first, second = queries.list_images()
    assert (first.id, first.filepath) == (image_id, KEY)
    assert (second.id, second.filepath) == (outside, "/home/me/x.jpg")
    assert queries.image_location(first, "/mnt/copy") == Path("/mnt/copy") / KEY
    assert queries.image_location(second, "/mnt/copy") == Path("/home/me/x.jpg")
    found = queries.get_image_by_path(f"/mnt/copy/{KEY}", root="/mnt/copy")
    assert found is not None and found.id == image_id
    assert queries.known_filepaths(
        [f"/mnt/copy/{KEY}", "/mnt/copy/no.jpg"], root="/mnt/copy"
    ) == {f"/mnt/copy/{KEY}"}


def test_the_configured_root_else_the_environment_keys_paths(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert models.archive_root() is None
    monkeypatch.setenv(models.ARCHIVE_ENV, "/env/archive")
    queries.insert_image(f"/env/archive/{KEY}", "in_gate", T0)
    models.configure(archive_root="/srv/archive")
    queries.insert_image(f"/srv/archive/x/{KEY}", "in_gate", T0 + timedelta(1))
    queries.insert_image(f"/env/archive/y/{KEY}", "in_gate", T0 + timedelta(2))
    first, second, third = queries.list_images()
    assert first.filepath == KEY
    assert second.filepath == f"x/{KEY}"
    assert third.filepath == f"/env/archive/y/{KEY}"  # not under the configured root
    assert queries.image_location(second) == Path("/srv/archive/x") / KEY


def test_a_repeated_identity_under_another_path_is_a_duplicate(database: str) -> None:
    """Two workers mounting one archive at two paths, without a root to key them."""
    first = queries.insert_images(
        [picture(f"/mnt/a/{KEY}"), picture(f"/mnt/a/{KEY}.thumb", is_thumbnail=True)]
    )
    assert (first.inserted, first.duplicates, first.failed) == (2, 0, [])
    second = queries.insert_images(
        [
            picture(f"/mnt/b/{KEY}"),  # the same picture through another mount
            picture(f"/mnt/b/{KEY}.thumb", is_thumbnail=True),
            picture(f"/mnt/b/{KEY}.other", camera_id="out_gate"),  # another stream
        ],
        chunk_size=2,
    )
    assert (second.inserted, second.duplicates, second.failed) == (1, 2, [])
    assert second.ids[f"/mnt/b/{KEY}"] == first.ids[f"/mnt/a/{KEY}"]
    assert second.ids[f"/mnt/b/{KEY}.thumb"] == first.ids[f"/mnt/a/{KEY}.thumb"]
    # In one batch too, and for one picture at a time.
    same = queries.insert_images(
        [picture("/x/1.jpg", camera_id="c"), picture("/x/2.jpg", camera_id="c")]
    )
    assert (same.inserted, same.duplicates) == (1, 1)
    assert same.ids["/x/2.jpg"] == same.ids["/x/1.jpg"]
    assert (
        queries.insert_image(f"/mnt/c/{KEY}", "in_gate", T0)
        == first.ids[f"/mnt/a/{KEY}"]
    )
    assert queries.count_images() == 4


def test_two_roots_of_one_folder_store_one_row_per_picture(
    database: str, tmp_path: Path
) -> None:
    real = tmp_path / "archive"
    (real / "apm").mkdir(parents=True)
    mount = tmp_path / "mount"
    mount.symlink_to(real)
    one = queries.insert_images([picture(str(real / KEY))], root=real)
    two = queries.insert_images([picture(str(mount / KEY))], root=mount)
    three = queries.insert_images([picture(os.path.realpath(mount / KEY))], root=mount)
    assert (one.inserted, two.inserted, three.inserted) == (1, 0, 0)
    (row,) = queries.list_images()
    assert row.filepath == KEY


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (KEY, True),
        ("/srv/archive/" + KEY, False),
        ("\\\\nas\\archive\\in_gate.jpg", False),
        ("s3://bucket/prefix/" + KEY, False),
    ],
)
def test_is_key_tells_keys_from_files_outside_any_archive(
    stored: str, expected: bool
) -> None:
    assert is_key(stored) is expected
