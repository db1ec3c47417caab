"""The pooled HTTP session pictures are fetched with, whose requests in flight can be cut.

A service that must stop within seconds cannot wait out a CDN that stalls: a
thread blocked reading a socket notices nothing until the read times out. The
session made here knows the connections its requests hold, so :func:`abort`
shuts their sockets down, which ends every blocked read at once; requests started
after it fail before they touch the network. A connection still being made (a CDN
that drops SYNs) waits in short slices and gives up at the next one after an abort.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import allowed_gai_family

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection

logger = logging.getLogger(__name__)

USER_AGENT = "draydog-archiver/0.1 (+https://pypi.org/project/requests)"
CONNECT_SLICE_SECONDS = 0.1
"""How often a connection being made looks whether its session was aborted."""
_CONNECTING = (errno.EINPROGRESS, errno.EALREADY) + (
    (getattr(errno, "WSAEWOULDBLOCK", errno.EWOULDBLOCK),)
    if sys.platform == "win32"
    else ()
)
"""What a non-blocking connect answers while under way (Windows says
WSAEWOULDBLOCK; elsewhere EAGAIN is a failure: no local port left)."""


class _Connections:
    """The connections handed out to requests (weakly: a dropped one is forgotten)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._out: weakref.WeakSet[BaseHTTPConnection] = weakref.WeakSet()
        self.aborted = False

    def hand_out(self, connection: BaseHTTPConnection) -> None:
        with self._lock:
            if self.aborted:
                raise ConnectionAbortedError("the session was aborted")
            self._out.add(connection)

    def take_back(self, connection: BaseHTTPConnection | None) -> None:
        if connection is not None:
            with self._lock:
                self._out.discard(connection)

    def abort(self) -> int:
        """Shut down every socket handed out; returns how many were."""
        with self._lock:
            self.aborted = True
            held = list(self._out)
        cut = 0
        for connection in held:
            sock = getattr(connection, "sock", None)
            if sock is None:
                continue  # still connecting: it sees ``aborted`` within a slice
            try:
                sock.shutdown(socket.SHUT_RDWR)
                cut += 1
            except OSError:
                pass  # closed meanwhile
        return cut


class _AbortableConnection(HTTPConnection):
    """An HTTP connection whose connect an abort ends (urllib3's waits out its timeout)."""

    connections: _Connections

    def _new_conn(self) -> socket.socket:
        try:
            sock = _connect(
                self._dns_host,
                self.port,
                self.timeout if isinstance(self.timeout, (int, float)) else None,
                self.source_address,
                self.socket_options,
                self.connections,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out ({self.timeout} s)"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(
                self, f"Failed to establish a new connection: {exc}"
            ) from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


class _AbortableTLSConnection(_AbortableConnection, HTTPSConnection):
    pass


def _connect(
    host: str,
    port: int,
    timeout: float | None,
    source_address: tuple[str, int] | None,
    options: Any,
    connections: _Connections,
) -> socket.socket:
    """``urllib3.util.connection.create_connection``, but abortable while connecting."""
    error: OSError = OSError("getaddrinfo returns an empty list")
    for family, kind, proto, _, target in socket.getaddrinfo(
        host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            for option in options or ():
                sock.setsockopt(*option)
            if source_address:
                sock.bind(source_address)
            _connect_in_slices(sock, target, timeout, connections)
            sock.settimeout(timeout)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def _connect_in_slices(
    sock: socket.socket,
    target: Any,
    timeout: float | None,
    connections: _Connections,
) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    sock.setblocking(False)
    code = sock.connect_ex(target)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        while code in _CONNECTING:
            if connections.aborted:
                raise ConnectionAbortedError("the session was aborted")
            wait = CONNECT_SLICE_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError("timed out")
            if selector.select(wait):
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))


class _ReportingPool(HTTPConnectionPool):
    """A connection pool that tells its ``connections`` what it hands out and gets back."""

    connections: _Connections

    def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
        connection = super()._get_conn(timeout)
        self.connections.hand_out(connection)
        return connection

    def _put_conn(self, conn: BaseHTTPConnection | None) -> None:
        self.connections.take_back(conn)
        super()._put_conn(conn)


class _ReportingTLSPool(_ReportingPool, HTTPSConnectionPool):
    pass


class AbortableAdapter(HTTPAdapter):
    """An HTTPAdapter whose connection pools report the connections they hand out."""

    def __init__(self, **kwargs: Any) -> None:
        self.connections = _Connections()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        shared = {"connections": self.connections}
        plain = type("Connection", (_AbortableConnection,), shared)
        tls = type("TLSConnection", (_AbortableTLSConnection,), shared)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("Pool", (_ReportingPool,), {**shared, "ConnectionCls": plain}),
            "https": type(
                "TLSPool", (_ReportingTLSPool,), {**shared, "ConnectionCls": tls}
            ),
        }

    def abort(self) -> int:
        return self.connections.abort()


def new_http_session(pool_size: int) -> requests.Session:
    """A Session whose connection pool fits ``pool_size`` concurrent requests.

    urllib3's own retries are off: retrying is the fetcher's job, with backoff.
    The CDN is asked for the bytes as stored (``Accept-Encoding: identity``): a
    JPEG does not compress, and a decoded size would not match Content-Length.
    """
    session = requests.Session()
    adapter = AbortableAdapter(
        pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept-Encoding"] = "identity"
    return session


def abort(session: requests.Session) -> int:
    """Cut the requests in flight on ``session`` and refuse new ones; returns how many were cut.

    Only a session made by :func:`new_http_session` can be aborted; any other is
    left alone (its requests end at their timeouts).
    """
    cut = 0
    for adapter in set(session.adapters.values()):
        if isinstance(adapter, AbortableAdapter):
            cut += adapter.abort()
    if cut:
        logger.info("cut %d request(s) in flight", cut)
    return cut
