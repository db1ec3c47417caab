"""The pooled HTTP session pictures are fetched with, whose requests in flight can be cut.

A service that must stop within seconds cannot wait out a CDN that stalls: a
thread blocked reading a socket notices nothing until the read times out. The
session made here knows the connections its requests hold, so :func:`abort`
shuts their sockets down, which ends every blocked read at once; requests started
after it fail before they touch the network.
"""

from __future__ import annotations

import logging
import socket
import threading
import weakref
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection

logger = logging.getLogger(__name__)

USER_AGENT = "draydog-archiver/0.1 (+https://pypi.org/project/requests)"


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
                continue  # still connecting: bounded by the connect timeout
            try:
                sock.shutdown(socket.SHUT_RDWR)
                cut += 1
            except OSError:
                pass  # closed meanwhile
        return cut


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
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("Pool", (_ReportingPool,), shared),
            "https": type("TLSPool", (_ReportingTLSPool,), shared),
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
