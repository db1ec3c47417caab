"""One picture over HTTP: pooled session, retries with backoff, verification, ``.part`` then rename.

A file only ever carries its final name once it is complete and verified, so a
file found under its final name never needs fetching again.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError

from modules.backoff import Backoff, call_with_retries

logger = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
PART_SUFFIX = ".part"
CHUNK_BYTES = 64 * 1024
HOST_TAG = socket.gethostname().replace(".", "_")
"""This machine in ``.part`` names: a part names the host and process that own it."""


class FetchError(Exception):
    """A picture that could not be had; ``retryable`` says whether trying again may help."""

    def __init__(
        self, reason: str, *, retryable: bool = False, retry_after: float = 0.0
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class NotFound(FetchError):
    """The CDN answered 404: the picture does not exist (not retried)."""


class UnsafeURL(ValueError):
    """A URL this fetcher refuses to touch: another host, another scheme, credentials."""


@dataclass(frozen=True)
class FetchedFile:
    """A verified picture in place under its final name."""

    path: Path
    size: int
    sha256: str


def new_http_session(pool_size: int) -> requests.Session:
    """A Session whose connection pool fits ``pool_size`` concurrent requests.

    urllib3's own retries are off: retrying is this module's job, with backoff.
    """
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = (
        "draydog-archiver/0.1 (+https://pypi.org/project/requests)"
    )
    return session


def check_url(url: str, allowed_netloc: str) -> None:
    """Refuse anything but plain http(s) on the CDN's own host and port."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UnsafeURL(f"not a URL: {url!r}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(
            f"refusing {parts.scheme or 'scheme-less'} URL {url!r}: only http(s)"
        )
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL(f"refusing URL with credentials: {parts.hostname}")
    if parts.netloc.lower() != allowed_netloc.lower():
        raise UnsafeURL(
            f"refusing URL on {parts.netloc!r}: not the CDN host {allowed_netloc!r}"
        )


def part_path_for(destination: Path) -> Path:
    """A unique ``.part`` name beside ``destination``: host and pid tell who owns it."""
    token = f"{HOST_TAG}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return destination.with_name(f".{destination.name}.{token}{PART_SUFFIX}")


class PictureFetcher:
    """Downloads pictures with one pooled session, retrying what may succeed later."""

    def __init__(
        self,
        session: requests.Session,
        *,
        allowed_netloc: str,
        backoff: Backoff,
        timeout: float,
        max_bytes: int,
    ) -> None:
        self.session = session
        self.allowed_netloc = allowed_netloc
        self.backoff = backoff
        self.timeout = timeout
        self.max_bytes = max_bytes

    def fetch(self, url: str, destination: Path) -> FetchedFile:
        """Download ``url`` to ``destination``, retrying; raise NotFound or FetchError when it can't."""
        check_url(url, self.allowed_netloc)
        return call_with_retries(
            lambda: self._fetch_once(url, destination),
            self.backoff,
            _is_retryable,
            describe=f"download of {url}",
            min_wait=_retry_after,
            log_level=logging.INFO,
        )

    def _fetch_once(self, url: str, destination: Path) -> FetchedFile:
        try:
            # No redirects: a Location on another host would bypass check_url.
            response = self.session.get(
                url, stream=True, timeout=self.timeout, allow_redirects=False
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise FetchError(
                f"connection failed: {type(exc).__name__}", retryable=True
            ) from exc
        with response:
            self._check_status(response)
            return self._save_body(response, destination)

    def _check_status(self, response: requests.Response) -> None:
        status = response.status_code
        if status == 404:
            raise NotFound("404 Not Found")
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise FetchError(f"HTTP {status}", retryable=True, retry_after=retry_after)
        if status != 200:
            raise FetchError(f"HTTP {status}")
        declared = response.headers.get("Content-Length")
        if (
            declared is not None
            and declared.isdigit()
            and int(declared) > self.max_bytes
        ):
            raise FetchError(
                f"too large: {declared} bytes declared, cap {self.max_bytes}"
            )

    def _save_body(self, response: requests.Response, destination: Path) -> FetchedFile:
        declared = response.headers.get("Content-Length")
        expected = (
            int(declared) if declared is not None and declared.isdigit() else None
        )
        deadline = time.monotonic() + self.timeout
        digest = hashlib.sha256()
        size = 0
        tail = b""
        part = part_path_for(destination)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with open(part, "wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    if size == 0 and not chunk.startswith(JPEG_MAGIC):
                        kind = response.headers.get("Content-Type", "unknown type")
                        raise FetchError(f"not a JPEG ({kind})")
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FetchError(
                            f"too large: over the cap of {self.max_bytes} bytes"
                        )
                    if time.monotonic() > deadline:
                        raise FetchError(
                            "body took longer than the timeout", retryable=True
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    tail = (tail + chunk)[-2:]
                out.flush()
                os.fsync(out.fileno())
            if size == 0:
                raise FetchError("empty body", retryable=True)
            if expected is not None and size != expected:
                raise FetchError(
                    f"truncated: {size} of {expected} bytes", retryable=True
                )
            if expected is None and tail != JPEG_END:
                # Nothing says how long the body should be: a JPEG that ends
                # without its end-of-image marker was cut off.
                raise FetchError("truncated: no JPEG end marker", retryable=True)
            os.replace(part, destination)
        except (
            requests.ConnectionError,
            requests.Timeout,
            ChunkedEncodingError,
        ) as exc:
            raise FetchError(
                f"body interrupted: {type(exc).__name__}", retryable=True
            ) from exc
        except OSError as exc:
            raise FetchError(
                f"cannot write {destination}: {exc.strerror or exc}"
            ) from exc
        finally:
            part.unlink(missing_ok=True)
        return FetchedFile(destination, size, digest.hexdigest())


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, FetchError) and exc.retryable


def _retry_after(exc: BaseException) -> float:
    return exc.retry_after if isinstance(exc, FetchError) else 0.0


def parse_retry_after(value: str | None) -> float:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); 0 if absent."""
    if not value:
        return 0.0
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()
