"""Fixtures for the webhook tests: a receiver on a free loopback port with its own spool."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from webhook_client import HUBSPOT_SECRET, STRIPE_SECRET, ServerFactory

from recon.config import Settings
from recon.webhooks.server import WebhookHTTPServer, make_server


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start receivers (in this process, on threads); all are shut down after the test."""
    started: list[tuple[WebhookHTTPServer, threading.Thread]] = []

    def start(
        stripe_secret: str = STRIPE_SECRET,
        hubspot_secret: str = HUBSPOT_SECRET,
        spool_dir: Path | None = None,
        **kwargs: object,
    ) -> WebhookHTTPServer:
        settings = Settings.load(
            environ={
                "STRIPE_WEBHOOK_SECRET": stripe_secret,
                "HUBSPOT_APP_SECRET": hubspot_secret,
            },
            warehouse=tmp_path / "recon.duckdb",
        )
        server = make_server(
            settings,
            spool_dir=str(spool_dir) if spool_dir else None,
            **kwargs,  # type: ignore[arg-type]
        )
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def server(start_server: ServerFactory) -> WebhookHTTPServer:
    return start_server()
