"""An archive in a local (or mounted) folder: ``<root>/<key>``.

A body is written to a ``.part`` file beside its final name, synced, then renamed
over it, so a reader sees the old object or the new one, never half of one; two
writers of one key each rename a complete file and the last one stays.
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from stat import S_ISREG

from modules.storage.base import (
    PART_SUFFIX,
    KeyNotFound,
    Removal,
    Storage,
    StorageError,
    StoredObject,
    body_of,
    folder_prefix,
    part_name,
    validate_key,
    validate_prefix,
)

_MKDIR_ATTEMPTS = 5
"""A delete may remove a folder a put has just made (it was empty): make it again."""


class LocalStorage(Storage):
    """Pictures as files under ``root`` (made when the first one is stored)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))

    def __str__(self) -> str:
        return str(self.root)

    def same_place(self, other: Storage) -> bool:
        """The same folder, by its real path (a symlink or another spelling of it)."""
        return isinstance(other, LocalStorage) and os.path.realpath(
            other.root
        ) == os.path.realpath(self.root)

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.root.joinpath(*validate_key(key).split("/"))

    def stat(self, key: str) -> int | None:
        path = self.path(key)
        try:
            found = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(
                key, f"cannot stat {path}: {exc.strerror or exc}"
            ) from exc
        return found.st_size if S_ISREG(found.st_mode) else None

    def put(self, key: str, source: Path | bytes) -> int:
        destination = self.path(key)
        body = body_of(key, source)
        part = destination.with_name(part_name(destination.name))
        try:
            self._write_synced(part, body)
            os.replace(part, destination)
        except OSError as exc:
            raise StorageError(
                key, f"cannot write {destination}: {exc.strerror or exc}"
            ) from exc
        finally:
            part.unlink(missing_ok=True)
        return len(body)

    def staging_path(self, key: str) -> Path:
        """A ``.part`` beside the object's file: committing it is one rename."""
        destination = self.path(key)
        return destination.with_name(part_name(destination.name))

    def commit(self, key: str, part: Path) -> int:
        """Rename ``part`` over the object's file (no copy): atomic, as ``put``'s own
        rename. A part on another file system, or whose folder a concurrent delete
        removed, is stored by :meth:`put` (a synced copy) instead."""
        destination = self.path(key)
        try:
            size = part.stat().st_size
            os.replace(part, destination)
        except OSError as exc:
            elsewhere = exc.errno == errno.EXDEV or exc.errno == errno.ENOENT
            if elsewhere and part.is_file():
                return self.put(key, part)
            raise StorageError(
                key, f"cannot write {destination}: {exc.strerror or exc}"
            ) from exc
        finally:
            part.unlink(missing_ok=True)
        return size

    def _write_synced(self, part: Path, body: bytes) -> None:
        for attempt in range(1, _MKDIR_ATTEMPTS + 1):
            try:
                part.parent.mkdir(parents=True, exist_ok=True)
                handle = open(part, "xb")
            except (FileNotFoundError, FileExistsError):
                # A delete removed the folder between mkdir's steps or after it.
                if attempt == _MKDIR_ATTEMPTS:
                    raise
                continue
            with handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            return

    def open(self, key: str) -> io.BufferedIOBase:
        path = self.path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise KeyNotFound(key) from exc
        except OSError as exc:
            raise StorageError(
                key, f"cannot open {path}: {exc.strerror or exc}"
            ) from exc

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(
                key, f"cannot delete {path}: {exc.strerror or exc}"
            ) from exc
        self._remove_empty_folders(path.parent)

    def remove_many(self, keys: Sequence[str]) -> Removal:
        """One unlink per file (a folder has no batch delete); a file that is not there,
        or a key that names a folder (no object, as :meth:`stat` says), is already gone.
        Emptied folders go with their last file, as with :meth:`delete`."""
        result = Removal()
        folders: set[Path] = set()
        for key in result.valid(keys):
            path = self.path(key)
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                result.already_gone.append(key)
                continue
            except OSError as exc:
                result.failed[key] = exc.strerror or str(exc)
                continue
            result.removed.append(key)
            folders.add(path.parent)
        for folder in sorted(folders, reverse=True):
            self._remove_empty_folders(folder)
        return result

    def _remove_empty_folders(self, folder: Path) -> None:
        """Empty folders go with their last object, as in a bucket, so ``folders`` agree."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        for key, entry in self._files(prefix):
            try:
                yield StoredObject(key, entry.stat().st_size)
            except FileNotFoundError:
                continue  # deleted since the folder was read

    def keys(self, prefix: str = "") -> Iterator[str]:
        for key, _ in self._files(prefix):
            yield key

    def _files(self, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """The files whose keys start with ``prefix``, in key order.

        Depth first over a stack of sorted folder listings rather than nested
        generators, so each key passes through one frame whatever the depth.
        """
        folder = validate_prefix(prefix).rpartition("/")[0]
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        stack = [iter(_scan(start, f"{folder}/" if folder else ""))]
        while stack:
            for key, entry, is_folder in stack[-1]:
                if is_folder:
                    if key.startswith(prefix) or prefix.startswith(key):
                        stack.append(iter(_scan(entry.path, key)))
                        break
                elif key.startswith(prefix) and entry.is_file():
                    yield key, entry
            else:
                stack.pop()

    def folders(self, prefix: str = "") -> Iterator[str]:
        folder = self.root.joinpath(*folder_prefix(prefix).split("/")[:-1])
        try:
            with os.scandir(folder) as scan:
                names = [e.name for e in scan if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StorageError(
                prefix, f"cannot list {folder}: {exc.strerror or exc}"
            ) from exc
        yield from sorted(names)

    def location(self, key: str) -> str:
        return str(self.path(key))


def _scan(folder: str | Path, base: str) -> list[tuple[str, os.DirEntry[str], bool]]:
    """A folder's entries by key, and whether each is a folder, sorted.

    A folder's key ends in ``/``, so the order is S3's; a ``.part`` (a body being
    written, or a dead writer's) is never an object.
    """
    entries = []
    try:
        with os.scandir(folder) as scan:
            for entry in scan:
                name = entry.name
                if entry.is_dir(follow_symlinks=False):
                    entries.append((f"{base}{name}/", entry, True))
                elif name[0] != "." or not name.endswith(PART_SUFFIX):
                    entries.append((base + name, entry, False))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise StorageError(
            base, f"cannot list {folder}: {exc.strerror or exc}"
        ) from exc
    entries.sort(key=_first)
    return entries


def _first(item: tuple[str, os.DirEntry[str], bool]) -> str:
    return item[0]
