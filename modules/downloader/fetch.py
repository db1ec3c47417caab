"""One picture over HTTP: pooled session, retries with backoff, verification, ``.part`` then rename.

A file only ever carries its final name once it is complete and verified, so a
file found under its final name never needs fetching again. A fetch can be
cancelled (:meth:`PictureFetcher.cancel`): its socket is cut, no retry or backoff
pause follows, and its ``.part`` is removed, so a service stops within seconds
even while the CDN stalls.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from modules.backoff import Backoff, call_with_retries
from modules.downloader.http_session import abort
from modules.downloader.http_session import new_http_session as new_http_session
from modules.storage.base import HOST_TAG as HOST_TAG
from modules.storage.base import PART_SUFFIX as PART_SUFFIX
from modules.storage.base import part_name

logger = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
CHUNK_BYTES = 64 * 1024
CONNECT_TIMEOUT = 10.0
"""Seconds a connection may take at most, whatever the timeout: a CDN that drops
SYNs is given up on sooner than one that trickles a body (a cancel ends either)."""


class FetchError(Exception):
    """A picture that could not be had; ``retryable`` says whether trying again may help."""

    def __init__(
        self, reason: str, *, retryable: bool = False, retry_after: float = 0.0
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class Absent(FetchError):
    """The CDN says the picture is not there (not retried): the thumbnail may be."""


class NotFound(Absent):
    """The CDN answered 404: the picture does not exist."""


class Forbidden(Absent):
    """The CDN answered 403, which a CDN in front of an S3 bucket says for a missing file."""


class Cancelled(FetchError):
    """The fetch was cancelled (the service is stopping); nothing of it was kept."""

    def __init__(self) -> None:
        super().__init__("cancelled")


class UnsafeURL(ValueError):
    """A URL this fetcher refuses to touch: another host, another scheme, credentials."""


@dataclass(frozen=True)
class FetchedFile:
    """A verified picture in place under its final name."""

    path: Path
    size: int
    sha256: str


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
    return destination.with_name(part_name(destination.name))


class PictureFetcher:
    """Downloads pictures with one pooled session, retrying what may succeed later.

    ``timeout`` bounds each attempt in wall time, the body included however slowly
    it trickles in.
    """

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
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        """Make fetches in flight and later ones raise Cancelled at once (for good).

        The sockets of requests in flight are cut (with a session from
        ``new_http_session``); backoff pauses end; ``.part`` files are removed.
        """
        self.cancelled.set()
        abort(self.session)

    def fetch(self, url: str, destination: Path) -> FetchedFile:
        """Download ``url`` to ``destination``, retrying; raise Absent, Cancelled or FetchError when it can't.

        The body is written to a ``.part`` beside ``destination`` and renamed only once verified.
        """
        part = part_path_for(destination)
        fetched = self.fetch_to(url, part)
        try:
            os.replace(part, destination)
        except OSError as exc:
            raise FetchError(
                f"cannot write {destination}: {exc.strerror or exc}"
            ) from exc
        finally:
            part.unlink(missing_ok=True)
        return FetchedFile(destination, fetched.size, fetched.sha256)

    def fetch_to(self, url: str, part: Path) -> FetchedFile:
        """Download ``url`` into the file ``part`` (its folder made), retrying: on
        success the body is there complete, verified and synced, for a storage to
        take (``Storage.commit``); on any failure ``part`` is gone."""
        check_url(url, self.allowed_netloc)
        return call_with_retries(
            lambda: self._fetch_once(url, part),
            self.backoff,
            _is_retryable,
            describe=f"download of {url}",
            min_wait=_retry_after,
            log_level=logging.INFO,
            sleep=self._pause,
        )

    def _pause(self, seconds: float) -> None:
        if self.cancelled.wait(seconds):
            raise Cancelled()

    def _fetch_once(self, url: str, part: Path) -> FetchedFile:
        if self.cancelled.is_set():
            raise Cancelled()
        deadline = time.monotonic() + self.timeout
        try:
            # No redirects: a Location on another host would bypass check_url.
            response = self.session.get(
                url,
                stream=True,
                timeout=(min(self.timeout, CONNECT_TIMEOUT), self.timeout),
                allow_redirects=False,
                headers={"Accept-Encoding": "identity"},
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            if self.cancelled.is_set():
                raise Cancelled() from exc
            raise FetchError(
                f"connection failed: {type(exc).__name__}", retryable=True
            ) from exc
        with response:
            self._check_status(response)
            return self._save_body(response, part, deadline)

    def _check_status(self, response: requests.Response) -> None:
        status = response.status_code
        if status == 404:
            raise NotFound("404 Not Found")
        if status == 403:
            raise Forbidden("HTTP 403 Forbidden")
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

    def _save_body(
        self, response: requests.Response, part: Path, deadline: float
    ) -> FetchedFile:
        declared = response.headers.get("Content-Length")
        expected = (
            int(declared) if declared is not None and declared.isdigit() else None
        )
        digest = hashlib.sha256()
        size = 0
        tail = b""
        kept = False
        try:
            part.parent.mkdir(parents=True, exist_ok=True)
            with open(part, "wb") as out:
                for chunk in self._chunks(response, deadline):
                    if size == 0 and not chunk.startswith(JPEG_MAGIC):
                        kind = response.headers.get("Content-Type", "unknown type")
                        raise FetchError(f"not a JPEG ({kind})")
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FetchError(
                            f"too large: over the cap of {self.max_bytes} bytes"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    tail = (tail + chunk)[-2:]
                if self.cancelled.is_set():
                    raise Cancelled()  # the body may have been cut: keep nothing
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
            kept = True
        except urllib3.exceptions.HTTPError as exc:
            if self.cancelled.is_set():
                raise Cancelled() from exc
            if time.monotonic() >= deadline:
                raise _too_slow() from exc
            raise FetchError(
                f"body interrupted: {type(exc).__name__}", retryable=True
            ) from exc
        except OSError as exc:
            raise FetchError(f"cannot write {part}: {exc.strerror or exc}") from exc
        finally:
            if not kept:
                part.unlink(missing_ok=True)
        return FetchedFile(part, size, digest.hexdigest())

    def _chunks(self, response: requests.Response, deadline: float) -> Iterator[bytes]:
        """The body as it arrives, cut at ``deadline`` (wall time) or on cancel.

        Each read returns what the socket has (``read1``) and may wait only until
        the deadline, so a body that trickles in a byte at a time is cut on time,
        not after a whole chunk has gathered.
        """
        raw = response.raw
        while True:
            if self.cancelled.is_set():
                raise Cancelled()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _too_slow()
            # Looked up each time: once the body is in, the connection goes back
            # to the pool, and its socket is another request's.
            sock = getattr(raw.connection, "sock", None)
            if sock is not None:
                sock.settimeout(remaining)
            chunk: bytes = raw.read1(CHUNK_BYTES)
            if not chunk:
                return
            yield chunk


def _too_slow() -> FetchError:
    return FetchError("body took longer than the timeout", retryable=True)


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
