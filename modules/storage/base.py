"""The storage interface: pictures by key, wherever the archive lives.

A key is a picture's path relative to the archive root, in POSIX form
(``apm/in_gate/2025-09-06/in_gate_20250906T230734.jpg``), so the same key names the
same picture in a local folder, under another mount point or in a bucket. Keys are
checked here, once, so no implementation can be led outside its root.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import io
import os
import socket
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

MiB = 1024 * 1024
MAX_PUT_BYTES = 64 * MiB
"""The largest body ``put`` takes: one request (or one rename) for any picture (a
JPEG is under 25 MiB), far below S3's 5 GiB single-PUT limit, so nothing is ever
uploaded in parts."""


PART_SUFFIX = ".part"


def _host_tag() -> str:
    """This machine, and on Linux its boot and its process-id namespace: containers
    that share a host name but not their process ids (on one machine or, over a
    shared folder, on several) must not judge each other's writers by pid."""
    tag = socket.gethostname().replace(".", "_")
    with contextlib.suppress(OSError):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        tag += f"_{boot.replace('-', '')[:12]}"
    with contextlib.suppress(OSError):
        tag += f"_{os.stat('/proc/self/ns/pid').st_ino}"
    return tag


HOST_TAG = _host_tag()
"""This machine in ``.part`` names: a part names the host and process that own it, so
``archive.remove_stale_parts`` knows whose they are and clears a dead writer's."""


def part_name(name: str) -> str:
    """A unique hidden ``.part`` name for a body of ``name`` being written:
    ``.<name>.<host>-<pid>-<hex>.part``."""
    token = f"{HOST_TAG}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return f".{name}.{token}{PART_SUFFIX}"


STAGING_ENV = "DRAYDOG_STAGING_DIR"


def default_staging_dir() -> Path:
    """Where bodies bound for a remote store are written first: ``$DRAYDOG_STAGING_DIR``,
    else a folder of this user's in the system's temporary folder (a dead process's
    parts there are cleared)."""
    configured = os.environ.get(STAGING_ENV)
    if configured:
        return Path(configured)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = str(os.getpid())
    return Path(tempfile.gettempdir()) / f"draydog-staging-{user}"


class InvalidKey(ValueError):
    """A key or prefix that could name something outside the archive, or differently per OS."""


class StorageError(Exception):
    """An operation on a stored object that failed; ``key`` says which."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class ArchiveNotFound(StorageError):
    """The archive itself is not there: a bucket that does not exist, say."""


class KeyNotFound(StorageError):
    """The key names no stored object."""

    def __init__(self, key: str) -> None:
        super().__init__(key, "no such object")


class StoredObject(NamedTuple):
    """One stored object as a listing gives it."""

    key: str
    size: int


def validate_key(key: str) -> str:
    """``key`` if it is a relative POSIX path of plain names; InvalidKey otherwise."""
    _check_parts(key, key.split("/"))
    return key


def validate_prefix(prefix: str) -> str:
    """``prefix`` if a valid key starts with it (``""``, a folder ``a/b/``, or ``a/b/2025-``)."""
    if prefix == "":
        return prefix
    parts = prefix.split("/")
    if parts[-1] == "":
        parts = parts[:-1]
    _check_parts(prefix, parts)
    return prefix


def _check_parts(text: str, parts: list[str]) -> None:
    if not text:
        raise InvalidKey("empty key")
    if "\\" in text or "\0" in text:
        raise InvalidKey(f"backslash or NUL in key {text!r}")
    if text.startswith("/"):
        raise InvalidKey(
            f"absolute key {text!r}: keys are relative to the archive root"
        )
    if ":" in text:
        raise InvalidKey(
            f"':' in key {text!r}: a drive on Windows, invalid in its names"
        )
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidKey(f"key {text!r} has an empty, '.' or '..' part")


def body_of(key: str, source: Path | bytes) -> bytes:
    """The whole body to store, from bytes or a complete local file, within the cap."""
    if isinstance(source, bytes):
        body = source
    else:
        try:
            with open(source, "rb") as handle:
                body = handle.read(MAX_PUT_BYTES + 1)
        except OSError as exc:
            raise StorageError(
                key, f"cannot read {source}: {exc.strerror or exc}"
            ) from exc
    if len(body) > MAX_PUT_BYTES:
        raise StorageError(key, f"body over the cap of {MAX_PUT_BYTES} bytes")
    return body


def md5_of(body: bytes) -> bytes:
    """The MD5 digest S3 checks a body against (Content-MD5); not used for security."""
    return hashlib.md5(body, usedforsecurity=False).digest()


@dataclass
class Removal:
    """What :meth:`Storage.remove_many` did, key by key: each key is in one of the three."""

    removed: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    """Keys with no object to remove: gone is gone, as prune (which may run twice) needs."""
    failed: dict[str, str] = field(default_factory=dict)
    """Key -> reason, for the objects that may still be there."""

    def valid(self, keys: Sequence[str]) -> list[str]:
        """``keys`` once each, in order, but those that are not keys, which fail here
        (a row's path that is no key): one bad key must not stop the others."""
        valid = []
        for key in dict.fromkeys(keys):
            try:
                valid.append(validate_key(key))
            except InvalidKey as exc:
                self.failed[key] = str(exc)
        return valid


class Storage(ABC):
    """Where an archive's pictures live: a local folder or an S3 bucket and prefix.

    An object is visible under its key only complete: ``put`` of a body that was
    verified before (a finished temp file, or bytes) appears at once or not at all.
    """

    @abstractmethod
    def stat(self, key: str) -> int | None:
        """The object's size in bytes, or None when there is none."""

    @abstractmethod
    def put(self, key: str, source: Path | bytes) -> int:
        """Store a verified body under ``key``, replacing any; the size stored."""

    def staging_path(self, key: str) -> Path:
        """A fresh local file name to write ``key``'s body to before :meth:`commit`.

        Where committing costs least: for a remote store a ``.part`` in the staging
        folder (:func:`default_staging_dir`); the folder is made by the writer.
        """
        return default_staging_dir() / part_name(validate_key(key).rpartition("/")[2])

    def commit(self, key: str, part: Path) -> int:
        """Store the complete, verified and synced file ``part`` under ``key``, and
        remove ``part`` (also when storing fails); the size stored.

        The object appears whole or not at all, as with :meth:`put`.
        """
        try:
            return self.put(key, part)
        finally:
            part.unlink(missing_ok=True)

    def check(self) -> None:
        """Raise ArchiveNotFound when the archive cannot exist as configured (a missing
        bucket), StorageError when it cannot be reached; a folder is made when needed.
        """

    @abstractmethod
    def open(self, key: str) -> io.BufferedIOBase:
        """The object's body to read (close it); KeyNotFound when there is none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; nothing to remove is no error (prune may run twice)."""

    def remove_many(self, keys: Sequence[str]) -> Removal:
        """Remove these objects, saying for each whether it went, was gone or stays.

        Never raises for a key that cannot be removed (its reason is in ``failed``),
        so one stuck object does not keep the others. This default asks and deletes
        one key at a time; a store with a batch delete (S3's DeleteObjects) does better.
        """
        result = Removal()
        for key in result.valid(keys):
            try:
                if self.stat(key) is None:
                    result.already_gone.append(key)
                    continue
                self.delete(key)
            except StorageError as exc:
                result.failed[key] = _reason(exc)
                continue
            result.removed.append(key)
        return result

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix``, in key order."""

    def keys(self, prefix: str = "") -> Iterator[str]:
        """The keys ``list`` gives, without sizes: cheaper on a folder, for comparing with rows."""
        for key, _ in self.list(prefix):
            yield key

    @abstractmethod
    def folders(self, prefix: str = "") -> Iterator[str]:
        """The names of the folders right under ``prefix`` (``""`` or ending in ``/``), sorted.

        Lets gaps and prune visit only the days they look at, not every object.
        """

    @abstractmethod
    def location(self, key: str) -> str:
        """The full path or ``s3://`` URL of ``key``, for people and logs."""

    def same_place(self, other: Storage) -> bool:
        """Whether ``other`` stores its keys where this one does (a row's key names
        one picture in both)."""
        return other is self

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        return self.stat(key) is not None

    def read(self, key: str) -> bytes:
        """The object's whole body; KeyNotFound when there is none."""
        with self.open(key) as body:
            return body.read()

    def sha256(self, key: str) -> str:
        """The hex SHA-256 of the object's body, streamed (a row's hash, for reindex)."""
        digest = hashlib.sha256()
        with self.open(key) as body:
            for chunk in iter(lambda: body.read(1024 * 1024), b""):
                digest.update(chunk)
        return digest.hexdigest()


def folder_prefix(prefix: str) -> str:
    """``prefix`` checked as a folder: ``""`` or ending in ``/``."""
    validate_prefix(prefix)
    if prefix and not prefix.endswith("/"):
        raise InvalidKey(f"folder prefix {prefix!r} must end with '/'")
    return prefix


def _reason(exc: StorageError) -> str:
    """The short reason of a failure: the OS's words for a file, else the store's."""
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return exc.reason
