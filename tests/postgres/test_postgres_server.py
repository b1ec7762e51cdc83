"""The throwaway server itself: the DSN works, and a wrong password does not."""

from __future__ import annotations

import pytest
from pg_server import PostgresServer


def test_dsn_connects_and_password_is_enforced(postgres_server: PostgresServer) -> None:
    import psycopg2

    with psycopg2.connect(postgres_server.dsn) as con, con.cursor() as cur:
        cur.execute("select current_user, current_database(), current_setting('server_version')")
        user, db, version = cur.fetchone()
    con.close()
    assert (user, db) == (postgres_server.user, postgres_server.dbname)
    assert version.startswith("15.")
    wrong = postgres_server.dsn.replace(postgres_server.password, "not-the-password")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(wrong)
