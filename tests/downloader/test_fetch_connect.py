"""Making the connection: a CDN that drops SYNs, and the same pooled session over TLS.

A listening socket whose accept queue is full makes the kernel drop new SYNs, so a
connect to it hangs as it would to a CDN behind a black-holing firewall.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from requests.adapters import HTTPAdapter

from modules.backoff import Backoff
from modules.downloader.fetch import (
    JPEG_MAGIC,
    Cancelled,
    FetchError,
    PictureFetcher,
    new_http_session,
)

BODY = JPEG_MAGIC + b"\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"


@pytest.fixture
def syn_dropping() -> Iterator[str]:
    """host:port of a listener that never accepts, its accept queue filled."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.settimeout(0.3)
            fillers.append(filler)
            try:
                filler.connect(address)
            except TimeoutError:
                break  # the queue is full: SYNs are dropped from here on
        else:
            pytest.fail("the accept queue never filled")
        yield f"{address[0]}:{address[1]}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def _fetcher(netloc: str, timeout: float) -> PictureFetcher:
    return PictureFetcher(
        new_http_session(2),
        allowed_netloc=netloc,
        backoff=Backoff(attempts=1, base_delay=0.01),
        timeout=timeout,
        max_bytes=1_000_000,
    )


def test_cancel_ends_a_connect_to_a_cdn_that_drops_syns(
    syn_dropping: str, tmp_path: Path
) -> None:
    fetcher = _fetcher(syn_dropping, timeout=60.0)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fetcher.fetch(f"http://{syn_dropping}/a.jpeg", tmp_path / "a.jpg")
        except BaseException as exc:  # the test looks at what it was
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the connect did not hang"
    started = time.monotonic()
    fetcher.cancel()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 3.0  # not the 10 s connect cap
    assert [type(e) for e in errors] == [Cancelled]
    assert list(tmp_path.iterdir()) == []


def test_a_connect_that_hangs_fails_at_the_timeout_and_may_be_retried(
    syn_dropping: str, tmp_path: Path
) -> None:
    fetcher = _fetcher(syn_dropping, timeout=0.6)
    started = time.monotonic()
    with pytest.raises(FetchError, match="ConnectTimeout") as caught:
        fetcher.fetch(f"http://{syn_dropping}/a.jpeg", tmp_path / "a.jpg")
    assert 0.6 <= time.monotonic() - started < 5.0
    assert caught.value.retryable
    assert list(tmp_path.iterdir()) == []


def test_a_refused_connection_fails_at_once(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    netloc = "127.0.0.1:%d" % closed.getsockname()[1]
    closed.close()
    started = time.monotonic()
    with pytest.raises(FetchError, match="connection failed") as caught:
        _fetcher(netloc, timeout=5.0).fetch(f"http://{netloc}/a.jpeg", tmp_path / "a")
    assert time.monotonic() - started < 3.0
    assert caught.value.retryable


class _Picture(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cdn.pem", folder / "cdn.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_a_picture_over_tls_through_the_abortable_connection(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Picture)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        netloc = "127.0.0.1:%d" % server.server_address[1]
        fetcher = _fetcher(netloc, timeout=5.0)
        fetcher.session.trust_env = False  # or REQUESTS_CA_BUNDLE beats verify
        fetcher.session.verify = str(cert_path)
        fetched = fetcher.fetch(f"https://{netloc}/p.jpeg", tmp_path / "p.jpg")
        assert (tmp_path / "p.jpg").read_bytes() == BODY
        assert fetched.size == len(BODY)
        adapter = fetcher.session.get_adapter(f"https://{netloc}")
        assert isinstance(adapter, HTTPAdapter)
        pool = adapter.poolmanager.connection_from_url(f"https://{netloc}")
        connection_class = pool.ConnectionCls
        assert connection_class.__name__ == "TLSConnection"
    finally:
        server.shutdown()
        server.server_close()
