"""The archive layout: names, paths read back, walking a folder, stale ``.part`` files."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from modules.downloader import InvalidName
from modules.downloader.archive import (
    ArchivedPicture,
    day_folder,
    file_name,
    picture_path,
    read_picture_path,
    remove_stale_parts,
    walk_archive,
)
from modules.downloader.fetch import HOST_TAG, PART_SUFFIX, part_path_for

WALL = datetime(2025, 9, 6, 23, 7, 34)


def test_file_names() -> None:
    assert file_name("in_gate", WALL) == "in_gate_20250906T230734.jpg"
    assert (
        file_name("in_gate", WALL, thumbnail=True)
        == "in_gate_20250906T230734_thumb.jpg"
    )
    assert file_name("out-gate", datetime(2025, 1, 2, 3, 4, 5)) == (
        "out-gate_20250102T030405.jpg"
    )
    assert ":" not in file_name("in_gate", WALL)


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "IN"])
def test_layout_refuses_bad_names(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidName):
        file_name(bad, WALL)
    with pytest.raises(InvalidName):
        picture_path(tmp_path, bad, "in_gate", WALL)
    with pytest.raises(InvalidName):
        day_folder(tmp_path, "apm", bad, WALL)


def test_picture_path_layout(tmp_path: Path) -> None:
    assert picture_path(tmp_path, "apm", "in_gate", WALL) == (
        tmp_path / "apm" / "in_gate" / "2025-09-06" / "in_gate_20250906T230734.jpg"
    )
    assert picture_path(tmp_path, "apm", "in_gate", WALL, thumbnail=True).name == (
        "in_gate_20250906T230734_thumb.jpg"
    )


@pytest.mark.parametrize("thumbnail", [False, True])
def test_read_picture_path_round_trip(tmp_path: Path, thumbnail: bool) -> None:
    path = picture_path(tmp_path, "pier_t", "out-gate", WALL, thumbnail)
    assert read_picture_path(path) == ArchivedPicture(
        path, "pier_t", "out-gate", WALL, thumbnail
    )


@pytest.mark.parametrize(
    "relative",
    [
        "apm/in_gate/2025-09-06/in_gate_20250906T230734.jpeg",  # extension
        "apm/in_gate/2025-09-06/out_gate_20250906T230734.jpg",  # other stream
        "apm/in_gate/2025-09-07/in_gate_20250906T230734.jpg",  # other day
        "APM/in_gate/2025-09-06/in_gate_20250906T230734.jpg",  # bad terminal
        "apm/in_gate/2025-13-06/in_gate_20251306T230734.jpg",  # no such date
        "apm/in_gate/2025-09-06/in_gate_20250906T230734_thumb_thumb.jpg",
        "apm/in_gate/2025-09-06/in_gate_2025-09-06T23:07:34.jpg",
        "apm/in_gate/2025-09-06/.in_gate_20250906T230734.jpg.x-1-abcdef12.part",
        "in_gate/2025-09-06/in_gate_20250906T230734.jpg",  # too shallow
        "in_gate_20250906T230734.jpg",
    ],
)
def test_read_picture_path_refuses_foreign_paths(relative: str) -> None:
    assert read_picture_path(Path(relative)) is None


def _touch(path: Path, content: bytes = b"\xff\xd8\xff") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_walk_archive_yields_layout_pictures_in_order_and_skips_the_rest(
    tmp_path: Path,
) -> None:
    walls = [WALL, WALL.replace(hour=1), datetime(2025, 9, 5, 12, 0, 0)]
    wanted = [_touch(picture_path(tmp_path, "apm", "in_gate", w)) for w in walls]
    wanted.append(_touch(picture_path(tmp_path, "apm", "in_gate", WALL, True)))
    wanted.append(_touch(picture_path(tmp_path, "apm", "out_gate", WALL)))
    wanted.append(_touch(picture_path(tmp_path, "lbct", "in_gate", WALL)))
    _touch(tmp_path / "README.txt")
    _touch(tmp_path / "apm" / "in_gate" / "2025-09-06" / "notes.txt")
    _touch(tmp_path / "apm" / "in_gate" / "2025-09-06" / "holiday.jpg")
    _touch(tmp_path / "apm" / "in_gate" / "2025-09-07" / "in_gate_20250906T230734.jpg")
    _touch(tmp_path / "apm" / "in_gate" / "in_gate_20250906T230734.jpg")
    _touch(
        part_path_for(picture_path(tmp_path, "apm", "in_gate", WALL.replace(hour=2)))
    )

    found = list(walk_archive(tmp_path))

    assert sorted(p.path for p in found) == sorted(wanted)
    assert [p.path for p in found] == [p.path for p in walk_archive(tmp_path)]
    by_path = {p.path: p for p in found}
    thumb = by_path[picture_path(tmp_path, "apm", "in_gate", WALL, True)]
    assert thumb.is_thumbnail and thumb.wall_time == WALL and thumb.terminal == "apm"
    # Within a folder the order is the names' order.
    folder = tmp_path / "apm" / "in_gate" / "2025-09-06"
    day = [p.path.name for p in found if p.path.parent == folder]
    assert len(day) == 3 and day == sorted(day)


def test_walk_archive_of_an_empty_or_missing_folder(tmp_path: Path) -> None:
    assert list(walk_archive(tmp_path)) == []
    assert list(walk_archive(tmp_path / "missing")) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _part(folder: Path, host: str, pid: int, name: str = "in_gate_x.jpg") -> Path:
    return _touch(folder / f".{name}.{host}-{pid}-0123abcd{PART_SUFFIX}", b"partial")


def test_remove_stale_parts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modules.downloader.archive")
    folder = tmp_path / "apm" / "in_gate" / "2025-09-06"
    mine = _touch(part_path_for(folder / "in_gate_20250906T230734.jpg"), b"partial")
    dead_here = _part(folder, HOST_TAG, _dead_pid(), "a.jpg")
    live_here = _part(folder, HOST_TAG, 1, "b.jpg")  # init is always alive
    other_host_fresh = _part(folder, "elsewhere", 12345, "c.jpg")
    other_host_old = _part(folder, "elsewhere", 12345, "d.jpg")
    unknown_old = _touch(folder / f".e.jpg.whatever{PART_SUFFIX}", b"x")
    unknown_fresh = _touch(folder / f".f.jpg.whatever{PART_SUFFIX}", b"x")
    picture = _touch(folder / "in_gate_20250906T230734.jpg")
    two_hours_ago = time.time() - 2 * 3600
    for old in (other_host_old, unknown_old):
        os.utime(old, (two_hours_ago, two_hours_ago))

    assert remove_stale_parts(folder) == 3

    assert not dead_here.exists()
    assert not other_host_old.exists()
    assert not unknown_old.exists()
    for kept in (mine, live_here, other_host_fresh, unknown_fresh, picture):
        assert kept.exists(), kept
    assert "removed 3 stale .part file(s)" in caplog.text
    # A smaller max_age makes the fresh foreign ones stale too; ours and live ones stay.
    assert remove_stale_parts(folder, max_age=-1) == 4
    assert picture.exists()
    assert remove_stale_parts(folder) == 0
    assert remove_stale_parts(tmp_path / "missing") == 0


def test_a_part_of_this_host_name_in_another_pid_namespace_or_boot_is_judged_by_age(
    tmp_path: Path,
) -> None:
    # Containers sharing a host name: a pid dead here may be alive over there.
    host = socket.gethostname().replace(".", "_")
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = os.stat("/proc/self/ns/pid").st_ino
    assert HOST_TAG == f"{host}_{boot.replace('-', '')[:12]}_{namespace}"
    dead_pid = _dead_pid()
    theirs = _part(
        tmp_path, HOST_TAG.replace(str(namespace), "4026599999"), dead_pid, "a.jpg"
    )
    other_machine = _part(
        tmp_path, f"{host}_0123456789ab_{namespace}", dead_pid, "c.jpg"
    )
    ours = _part(tmp_path, HOST_TAG, dead_pid, "b.jpg")
    assert remove_stale_parts(tmp_path) == 1
    assert theirs.exists() and other_machine.exists() and not ours.exists()
    two_hours_ago = time.time() - 2 * 3600
    for old in (theirs, other_machine):
        os.utime(old, (two_hours_ago, two_hours_ago))
    assert remove_stale_parts(tmp_path) == 2
    assert not theirs.exists() and not other_machine.exists()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_a_process_in_its_own_pid_namespace_tags_its_parts_apart() -> None:
    child = subprocess.run(
        [
            "unshare",
            "--pid",
            "--fork",
            sys.executable,
            "-c",
            "import os; from modules.storage.base import HOST_TAG; print(os.getpid(), HOST_TAG)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if child.returncode != 0 and "Operation not permitted" in child.stderr:
        pytest.skip("creating a pid namespace needs privileges here")
    assert child.returncode == 0, child.stderr
    pid, tag = child.stdout.split()
    assert pid == "1"  # another process-id space, where our pids mean nothing
    assert tag.split("_")[:-1] == HOST_TAG.split("_")[:-1]
    assert tag != HOST_TAG


def test_a_part_whose_pid_is_not_ours_to_signal_counts_as_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("modules.downloader.archive.os.kill", refuse)
    part = _part(tmp_path, HOST_TAG, 4242)
    assert remove_stale_parts(tmp_path) == 0
    assert part.exists()


def test_a_part_that_vanishes_while_looking_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = _part(tmp_path, "elsewhere", 1)
    real_stat = Path.stat

    def vanish(self: Path, **kwargs: bool) -> os.stat_result:
        if self == part:
            raise FileNotFoundError(2, "No such file", str(self))
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", vanish)
    assert remove_stale_parts(tmp_path) == 0
