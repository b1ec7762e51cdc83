"""recon/http_direct.py: the standard-library connections ApiClient uses by default."""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recon.errors import UsageError
from recon.http import ApiClient, RetryPolicy
from recon.http_direct import DirectConnections, proxied


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]]
    mode: dict[str, str]

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": body,
                "port": self.client_address[1],
            }
        )
        mode = self.mode.get("next", "")
        self.mode["next"] = self.mode.get("then", "")
        if mode == "truncate":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"data": [')
            self.close_connection = True
            return
        if mode == "stall":
            time.sleep(1.0)
        if mode in ("gzip", "bad-gzip"):
            payload = json.dumps({"path": self.path}).encode()
            body = gzip.compress(payload) if mode == "gzip" else b"not gzip at all"
            self._answer(200, body, {"Content-Encoding": "gzip"})
            return
        if mode == "chunked":
            payload = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (payload[:5], payload[5:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if mode == "close-after":
            self._answer(200, b'{"ok": true}')
            self.close_connection = True  # the server drops the kept-alive connection
            return
        self._answer(200, json.dumps({"path": self.path}).encode(), {"X-Thing": "1"})

    do_GET = _handle
    do_POST = _handle


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, str]]]:
    seen: list[dict[str, Any]] = []
    mode: dict[str, str] = {}
    handler = type("H", (_Handler,), {"seen": seen, "mode": mode})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/base", seen, mode
    finally:
        srv.shutdown()
        srv.server_close()


def _direct(url: str, timeout_s: float = 5.0) -> DirectConnections:
    return DirectConnections(
        url, {"Authorization": "Bearer k"}, timeout_s=timeout_s, connect_timeout_s=timeout_s
    )


def test_a_request_keeps_its_path_query_headers_and_body(server: Any) -> None:
    url, seen, _ = server
    with _direct(url) as conn:
        status, headers, body = conn.request(
            "GET", "/v1/subscriptions", [("expand[]", "data.discounts"), ("a", True)], None, None
        )
        assert status == 200 and headers["x-thing"] == "1"
        assert (
            json.loads(body)["path"] == "/base/v1/subscriptions?expand%5B%5D=data.discounts&a=true"
        )
        conn.request("POST", "/search", [], b'{"q": 1}', {"Content-Type": "application/json"})
    assert seen[0]["headers"]["Authorization"] == "Bearer k"
    assert seen[1]["method"] == "POST" and seen[1]["body"] == b'{"q": 1}'
    # one kept-alive connection for both requests of the thread
    assert seen[0]["port"] == seen[1]["port"]


def test_a_chunked_answer_is_read_whole_and_the_connection_kept(server: Any) -> None:
    url, seen, mode = server
    with _direct(url) as conn:
        mode["next"] = "chunked"
        _, _, body = conn.request("GET", "/c", [], None, None)
        conn.request("GET", "/d", [], None, None)
    assert json.loads(body) == {"path": "/base/c"}
    assert seen[0]["port"] == seen[1]["port"]


def test_a_connection_the_server_closed_is_replaced_not_failed(server: Any) -> None:
    url, seen, mode = server
    with _direct(url) as conn:
        mode["next"] = "close-after"
        conn.request("GET", "/one", [], None, None)
        time.sleep(0.1)  # the server has closed its end by now
        status, _, _ = conn.request("GET", "/two", [], None, None)
    assert status == 200
    assert seen[0]["port"] != seen[1]["port"]


def test_each_thread_has_its_own_connection(server: Any) -> None:
    url, seen, _ = server
    with _direct(url) as conn:
        threads = [
            threading.Thread(target=conn.request, args=("GET", f"/t{i}", [], None, None))
            for i in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len({s["port"] for s in seen}) == 3


@pytest.mark.parametrize(
    ("mode", "error"),
    [("truncate", httpx.RemoteProtocolError), ("stall", httpx.ReadTimeout)],
)
def test_transport_failures_are_httpx_transport_errors(
    server: Any, mode: str, error: type[Exception]
) -> None:
    url, _, modes = server
    with _direct(url, timeout_s=0.3) as conn:
        modes["next"] = mode
        with pytest.raises(error):
            conn.request("GET", "/x", [], None, None)
        # the failed connection was dropped: the next request works on a new one
        status, _, _ = conn.request("GET", "/y", [], None, None)
        assert status == 200


def test_a_closed_client_refuses_at_once(server: Any) -> None:
    url, seen, _ = server
    conn = _direct(url)
    conn.request("GET", "/a", [], None, None)
    conn.close()
    with pytest.raises(RuntimeError, match="closed"):
        conn.request("GET", "/b", [], None, None)
    assert len(seen) == 1


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = _direct(f"http://127.0.0.1:{port}")
    with pytest.raises(httpx.ConnectError):
        conn.request("GET", "/", [], None, None)


def test_api_client_retries_a_truncated_body_over_direct_connections(server: Any) -> None:
    url, seen, mode = server
    client = ApiClient(
        service="Test",
        base_url=url,
        token="k",
        retry=RetryPolicy(attempts=3, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=2.0),
    )
    try:
        assert client._direct is not None
        mode["next"] = "truncate"
        assert client.get("/v1/x", [("limit", "10")]) == {"path": "/base/v1/x?limit=10"}
    finally:
        client.close()
    assert client.stats.retries == 1 and len(seen) == 2


def test_api_client_uses_httpx_with_a_transport_behind_a_proxy_or_when_asked(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _, _ = server
    mock = httpx.MockTransport(lambda request: httpx.Response(200, json={"mock": True}))
    client = ApiClient(service="Test", base_url=url, token="k", transport=mock)
    try:
        assert client._direct is None and client.get("/x") == {"mock": True}
    finally:
        client.close()

    monkeypatch.setenv("RECON_HTTP_CLIENT", "httpx")
    client = ApiClient(service="Test", base_url=url, token="k")
    try:
        assert client._direct is None
        assert client.get("/x")["path"] == "/base/x"
    finally:
        client.close()
    monkeypatch.setenv("RECON_HTTP_CLIENT", "curl")
    with pytest.raises(UsageError, match="RECON_HTTP_CLIENT"):
        ApiClient(service="Test", base_url=url, token="k")
    monkeypatch.delenv("RECON_HTTP_CLIENT")

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "")
    assert proxied("https://api.stripe.com")
    monkeypatch.setenv("NO_PROXY", "api.stripe.com")
    assert not proxied("https://api.stripe.com")
    monkeypatch.delenv("HTTPS_PROXY")
    assert not proxied("https://api.stripe.com")


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    handler = type("H", (_Handler,), {"seen": [], "mode": {}})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{srv.server_address[1]}", cert
    finally:
        srv.shutdown()
        srv.server_close()


def test_tls_is_verified_against_the_configured_authorities(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_server
    # certifi's bundle does not know a self-signed certificate: refused
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    conn = _direct(url)
    with pytest.raises(httpx.ConnectError):
        conn.request("GET", "/", [], None, None)
    # trusted through SSL_CERT_FILE, as httpx does
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with _direct(url) as conn:
        status, _, body = conn.request("GET", "/v1/x", [], None, None)
    assert status == 200 and json.loads(body) == {"path": "/v1/x"}


def test_a_gzip_answer_is_decompressed_and_a_broken_one_is_a_transport_error(
    server: Any,
) -> None:
    url, seen, mode = server
    with _direct(url) as conn:
        mode["next"] = "gzip"
        status, headers, body = conn.request("GET", "/z", [], None, None)
        assert status == 200 and headers["content-encoding"] == "gzip"
        assert json.loads(body) == {"path": "/base/z"}
        mode["next"] = "bad-gzip"
        with pytest.raises(httpx.TransportError):
            conn.request("GET", "/z", [], None, None)
    assert "gzip" in seen[0]["headers"]["Accept-Encoding"]


@pytest.mark.parametrize("choice", ["direct", "httpx"])
@pytest.mark.parametrize("base_url", ["api.stripe.example", "ftp://api.stripe.example", "https://"])
def test_a_base_url_that_is_not_http_is_one_clear_error(
    base_url: str, choice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before any request, on either client (httpx retried eight times, then failed)."""
    monkeypatch.setenv("RECON_HTTP_CLIENT", choice)
    with pytest.raises(UsageError, match=r"^Stripe: the API base URL .* is not an http"):
        ApiClient(service="Stripe", base_url=base_url, token="k")
