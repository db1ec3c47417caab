"""An archive in an S3-compatible bucket (AWS, MinIO, Ceph, R2): ``s3://<bucket>/<prefix>/<key>``.

Configured the standard way, by boto3 itself: ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` (or a
profile). A body goes up in one PutObject with its Content-MD5, which the server
checks before the object exists: S3 shows an object only once its PUT has
completed, so a reader never sees part of one, and never a multipart upload's parts.
Transient errors (throttling, 5xx, dropped connections) are retried by botocore's
``standard`` mode; what still fails is a StorageError naming the key.
"""

from __future__ import annotations

import base64
import io
import logging
import mimetypes
from collections.abc import Iterator, Sequence
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

from modules.storage.base import (
    ArchiveNotFound,
    KeyNotFound,
    Removal,
    Storage,
    StorageError,
    StoredObject,
    body_of,
    default_staging_dir,
    folder_prefix,
    md5_of,
    part_name,
    validate_key,
    validate_prefix,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
TIMEOUT_SECONDS = 30.0
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_NO_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})
DELETE_BATCH = 1000
"""S3's most keys in one DeleteObjects request."""


def new_s3_client(*, max_attempts: int = MAX_ATTEMPTS) -> S3Client:
    """A client configured from the environment, with standard retries and timeouts.

    Checksums are sent only where S3 requires them: newer botocore otherwise adds
    CRC headers some S3-compatible stores refuse; Content-MD5 is understood by all.
    """
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=TIMEOUT_SECONDS,
        read_timeout=TIMEOUT_SECONDS,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", config=config)


def _add_content_md5(request: AWSRequest, **_: object) -> None:
    """Give a DeleteObjects request its Content-MD5: S3 requires a checksum of its
    body, and botocore 1.36+ sends a CRC32 alone, which stores such as MinIO refuse
    (``MissingContentMD5``); every store accepts the MD5."""
    body: object = request.body
    if isinstance(body, str):
        body = body.encode()
    if isinstance(body, bytes):
        request.headers["Content-MD5"] = base64.b64encode(md5_of(body)).decode()


class S3Storage(Storage):
    """Pictures as objects of ``bucket`` under ``prefix`` (no leading or trailing ``/``).

    Bodies fetched for it are written first to ``staging_dir`` (by default a folder
    of this user's in the system's temporary folder), then uploaded.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: S3Client | None = None,
        staging_dir: Path | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"not a bucket name: {bucket!r}")
        self.bucket = bucket
        self.prefix = validate_prefix(prefix.strip("/"))
        self.client = client if client is not None else new_s3_client()
        self.client.meta.events.register(
            "before-sign.s3.DeleteObjects",
            _add_content_md5,
            unique_id="draydog-delete-content-md5",
        )
        self._base = f"{self.prefix}/" if self.prefix else ""
        self.staging_dir = staging_dir

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def same_place(self, other: Storage) -> bool:
        """The same bucket and prefix at the same endpoint (one name may be two
        buckets on two S3-compatible services)."""
        return (
            isinstance(other, S3Storage)
            and (other.bucket, other.prefix) == (self.bucket, self.prefix)
            and other.client.meta.endpoint_url == self.client.meta.endpoint_url
        )

    def object_name(self, key: str) -> str:
        """The S3 key of ``key``: the storage's prefix, then the key."""
        return self._base + validate_key(key)

    def check(self) -> None:
        """The bucket must exist and answer (HeadBucket)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) in _NO_BUCKET_CODES:
                raise ArchiveNotFound(
                    str(self), f"no bucket {self.bucket!r} at this endpoint"
                ) from exc
            raise _failure(str(self), "bucket check", exc) from exc
        except BotoCoreError as exc:
            raise _failure(str(self), "bucket check", exc) from exc

    def staging_path(self, key: str) -> Path:
        folder = self.staging_dir or default_staging_dir()
        return folder / part_name(validate_key(key).rpartition("/")[2])

    def stat(self, key: str) -> int | None:
        name = self.object_name(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise _failure(key, "stat", exc) from exc
        except BotoCoreError as exc:
            raise _failure(key, "stat", exc) from exc
        return head["ContentLength"]

    def put(self, key: str, source: Path | bytes) -> int:
        name = self.object_name(key)
        body = body_of(key, source)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=body,
                ContentLength=len(body),
                ContentMD5=base64.b64encode(md5_of(body)).decode("ascii"),
                ContentType=mimetypes.guess_type(name)[0] or "application/octet-stream",
            )
        except (ClientError, BotoCoreError) as exc:
            raise _failure(key, "upload", exc) from exc
        return len(body)

    def open(self, key: str) -> io.BufferedIOBase:
        name = self.object_name(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise KeyNotFound(key) from exc
            raise _failure(key, "download", exc) from exc
        except BotoCoreError as exc:
            raise _failure(key, "download", exc) from exc
        return io.BufferedReader(_Body(key, response["Body"]))

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_name(key))
        except (ClientError, BotoCoreError) as exc:
            raise _failure(key, "delete", exc) from exc

    def remove_many(self, keys: Sequence[str]) -> Removal:
        """DeleteObjects, up to 1,000 keys a request, in place of a HEAD and a DELETE per key.

        S3 answers "deleted" for a key with no object too, so which keys were already
        gone is read first from a listing of the keys' ranges (a request per 1,000
        keys of a folder); every key is still sent to be deleted, so an object that
        appears after the listing goes as well. A key refused (the response's
        ``Errors``) or of a request that failed stays in ``failed`` with its reason.
        """
        result = Removal()
        unique = result.valid(keys)
        try:
            present = self._present(unique)
        except StorageError as exc:
            result.failed.update({key: exc.reason for key in unique})
            return result
        refused: dict[str, str] = {}
        for start in range(0, len(unique), DELETE_BATCH):
            refused.update(self._delete_batch(unique[start : start + DELETE_BATCH]))
        for key in unique:
            if key in refused:
                result.failed[key] = refused[key]
            elif key in present:
                result.removed.append(key)
            else:
                result.already_gone.append(key)
        return result

    def _present(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` are stored: per folder, a listing from its first key to its
        last (rather than a HEAD per key), stopped once past the last."""
        present: set[str] = set()
        names = sorted(self.object_name(key) for key in keys)
        start = len(self._base)
        for folder, group in groupby(names, key=lambda name: name.rpartition("/")[0]):
            wanted = set(group)
            first, last = min(wanted), max(wanted)
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket,
                Prefix=f"{folder}/" if folder else "",
                StartAfter=first[:-1],  # just before the first key
            )
            try:
                for page in pages:
                    contents = page.get("Contents", [])
                    present.update(
                        entry["Key"][start:]
                        for entry in contents
                        if entry["Key"] in wanted
                    )
                    if not contents or contents[-1]["Key"] >= last:
                        break
            except (ClientError, BotoCoreError) as exc:
                raise _failure(folder, "list", exc) from exc
        return present

    def _delete_batch(self, keys: list[str]) -> dict[str, str]:
        """One DeleteObjects (quiet: only errors come back); the keys refused, with reasons."""
        start = len(self._base)
        try:
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={
                    "Objects": [{"Key": self.object_name(key)} for key in keys],
                    "Quiet": True,
                },
            )
        except (ClientError, BotoCoreError) as exc:
            reason = _failure(keys[0], "delete", exc).reason
            logger.warning("DeleteObjects of %d keys failed: %s", len(keys), reason)
            return {key: reason for key in keys}
        refused = {}
        for error in response.get("Errors", []):
            name = error.get("Key", "")
            reason = (
                f"delete failed: {error.get('Code', '')} {error.get('Message', '')}"
            )
            refused[name[start:]] = reason.strip()
        return refused

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        start = len(self._base)
        for page in self._pages(validate_prefix(prefix)):
            for entry in page.get("Contents", []):
                key = entry["Key"][start:]
                if _valid(key):
                    yield StoredObject(key, entry["Size"])

    def folders(self, prefix: str = "") -> Iterator[str]:
        start = len(self._base) + len(folder_prefix(prefix))
        for page in self._pages(prefix, delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"][start:].rstrip("/")

    def _pages(
        self, prefix: str, *, delimiter: str | None = None
    ) -> Iterator[ListObjectsV2OutputTypeDef]:
        """ListObjectsV2's pages (1,000 keys each) under the storage's prefix."""
        paginator = self.client.get_paginator("list_objects_v2")
        full = self._base + prefix
        if delimiter is None:
            pages = paginator.paginate(Bucket=self.bucket, Prefix=full)
        else:
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=full, Delimiter=delimiter
            )
        try:
            yield from pages
        except (ClientError, BotoCoreError) as exc:
            raise _failure(prefix, "list", exc) from exc

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_name(key)}"


class _Body(io.RawIOBase):
    """An object's streamed body as a file; a dropped connection is a StorageError."""

    def __init__(self, key: str, stream: StreamingBody) -> None:
        self.key = key
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        try:
            chunk = self.stream.read(len(view))
        except (BotoCoreError, HTTPError) as exc:
            raise _failure(self.key, "download", exc) from exc
        view[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self.stream.close()
        super().close()


def _valid(key: str) -> bool:
    """Whether a listed name is a key (another tool may have stored anything)."""
    try:
        validate_key(key)
    except ValueError:
        logger.debug("skipping object %r: not a valid key", key)
        return False
    return True


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _failure(key: str, action: str, exc: Exception) -> StorageError:
    if isinstance(exc, ClientError):
        reason = f"{action} failed: {_error_code(exc)} {exc.response.get('Error', {}).get('Message', '')}"
    else:
        reason = f"{action} failed: {type(exc).__name__}: {exc}"
    return StorageError(key, reason.strip())
