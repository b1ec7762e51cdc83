"""What the ``postgres_server`` fixture (conftest.py) yields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PostgresServer:
    dsn: str
    host: str
    port: int
    user: str
    password: str
    dbname: str
    socket_dir: Path
