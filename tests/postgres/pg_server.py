"""What the ``postgres_server`` fixture (conftest.py) yields."""

from __future__ import annotations

import secrets
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

    def admin(self):  # type: ignore[no-untyped-def]
        """A superuser connection over the server's unix socket (trusted), autocommit."""
        import psycopg2

        con = psycopg2.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres"
        )
        con.autocommit = True
        return con

    def create_database(self, prefix: str = "recon") -> str:
        """A new, empty database owned by the test user; its DSN (same user and password).

        Tests that ingest or build get a database of their own, so that worlds never mix.
        """
        name = f"{prefix}_{secrets.token_hex(4)}"
        con = self.admin()
        try:
            with con.cursor() as cur:
                cur.execute(f"create database {name} owner {self.user}")
        finally:
            con.close()
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{name}"
