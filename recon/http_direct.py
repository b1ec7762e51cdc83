"""HTTP/1.1 requests on keep-alive connections of the standard library, one per thread.

:class:`recon.http.ApiClient` sends its requests through httpx when it is given a transport
(the tests' ``httpx.MockTransport``) or when a proxy applies to the API's host; otherwise
through :class:`DirectConnections`.  The reason is CPU: a request through ``httpx.Client``
cost ~0.56 ms of CPU against ~0.14 ms through ``http.client`` (measured against the sandbox,
a 54 KB page), and an ingest's fetching threads share one interpreter lock with the thread
that builds the rows.  At 20,000 customers a CPU-bound Stripe ingest (838 requests) took
3.82-3.94 s this way against 4.09-4.27 s through httpx (DECISIONLOG "Benchmarks: the
HTTP client").

What httpx did that recon relies on is kept:

* TLS verified against certifi's CA bundle (httpx's default), or ``SSL_CERT_FILE`` /
  ``SSL_CERT_DIR`` when set;
* a connect timeout and a read timeout;
* a kept-alive connection is checked before it is reused (a server that closed it leaves
  it readable): it is replaced instead of failing the request;
* transport failures (refused or reset connections, timeouts, truncated bodies, garbled
  answers) raise :class:`httpx.TransportError` subclasses, which the client retries as
  before; the connection is then dropped.

* answers compressed with gzip or deflate (``Accept-Encoding``, as httpx asks) are
  decompressed; a body that does not decompress is a transport error, retried.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping, Sequence

import httpx

USER_AGENT = "recon (+https://github.com/recon)"


def proxied(base_url: str) -> bool:
    """Whether the environment sends requests to ``base_url``'s host through a proxy (as
    httpx would: ``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``)."""
    parts = urllib.parse.urlsplit(base_url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def _tls_context() -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection that the server closed (it reads as ready: EOF)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


class DirectConnections:
    """Requests to one base URL (``http`` or ``https``), on a connection per thread."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout_s: float,
        connect_timeout_s: float,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", **headers}
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._tls = _tls_context() if self.https else None
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and _dropped(conn):
            self._discard(conn)
            conn = None
        if conn is None:
            if self._closed:  # as httpx: not a transport error, so not retried
                raise RuntimeError("cannot send a request: the HTTP client is closed")
            if self._tls is not None:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.connect_timeout_s, context=self._tls
                )
            else:
                conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.connect_timeout_s
                )
            try:
                conn.connect()
            except TimeoutError as exc:
                conn.close()
                raise httpx.ConnectTimeout(f"connecting to {self.host}: {exc}") from None
            except OSError as exc:
                conn.close()
                raise httpx.ConnectError(f"connecting to {self.host}: {exc}") from None
            if conn.sock is not None:
                conn.sock.settimeout(self.timeout_s)
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._all.append(conn)
            self._local.conn = conn
        return conn

    def _discard(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def request(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, object]],
        body: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[int, httpx.Headers, bytes]:
        """(status, headers, body) of one request; transport failures raise
        :class:`httpx.TransportError` (the connection is dropped)."""
        target = self.prefix + (path if path.startswith("/") else "/" + path)
        if query:
            target += "?" + urllib.parse.urlencode(
                [(k, _text(v)) for k, v in query], quote_via=urllib.parse.quote
            )
        all_headers = {**self.headers, **(headers or {})}
        conn = self._connection()
        try:
            conn.request(method, target, body=body, headers=all_headers)
            response = conn.getresponse()
            content = response.read()
        except TimeoutError as exc:
            self._discard(conn)
            raise httpx.ReadTimeout(f"{method} {path}: timed out ({exc})") from None
        except (http.client.IncompleteRead, http.client.HTTPException, OSError) as exc:
            self._discard(conn)
            raise httpx.RemoteProtocolError(
                f"{method} {path}: {type(exc).__name__}: {exc}"
            ) from None
        if response.will_close:
            self._discard(conn)
        response_headers = httpx.Headers(response.getheaders())
        encoding = response_headers.get("content-encoding", "").strip().lower()
        if encoding and encoding != "identity":
            content = _decompressed(content, encoding, f"{method} {path}")
        return response.status, response_headers, content

    def __enter__(self) -> DirectConnections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


def _decompressed(content: bytes, encoding: str, what: str) -> bytes:
    """The body of an answer with ``Content-Encoding`` gzip or deflate."""
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(content, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(content)
            except zlib.error:  # raw deflate, without the zlib header
                return zlib.decompress(content, -zlib.MAX_WBITS)
    except zlib.error as exc:
        raise httpx.RemoteProtocolError(
            f"{what}: the {encoding} body does not decompress: {exc}"
        ) from None
    raise httpx.RemoteProtocolError(f"{what}: an answer in an encoding not asked for: {encoding}")


def _text(value: object) -> str:
    """A query value as httpx writes it (``true``/``false`` for booleans)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)
