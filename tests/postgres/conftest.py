"""A throwaway PostgreSQL 15 server for the session (Debian's package, started by the tests).

``initdb`` refuses to run as root, so under root every server command runs as the
``postgres`` user through ``runuser``. The data directory and the unix socket live in a
temporary directory owned by that user; the server listens on a free loopback port. Local
(socket) connections are trusted, TCP connections need a password (scram-sha-256): the
fixture creates a database and a user with a random password over the socket and yields
``postgresql://user:password@127.0.0.1:port/db``. The password is never written to a file
or passed on a command line (it travels only through the socket connection's SQL).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import PostgresServer

# the gate's and the sync's scratch-warehouse helpers (tests/gate, tests/sync), reused here
for _helpers in ("gate", "sync"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / _helpers))

PG_BIN = Path(os.environ.get("RECON_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix and the uid/gid that own the server's files."""
    if os.geteuid() != 0:
        return [], None, None
    if shutil.which("runuser") is None:
        pytest.skip("PostgreSQL tests: running as root but runuser is missing")
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("PostgreSQL tests: running as root but there is no postgres user")
    return ["runuser", "-u", "postgres", "--"], entry.pw_uid, entry.pw_gid


def _run(cmd: list[str], log: Path) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        server_log = log.read_text() if log.exists() else ""
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
            f"{server_log}"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    missing = [b for b in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / b).is_file()]
    if missing:
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN}: {', '.join(missing)}")
    import psycopg2

    prefix, uid, gid = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="recon-pg-"))
    os.chmod(root, 0o755)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    log = root / "server.log"
    log.touch()
    if uid is not None and gid is not None:
        for p in (root, sock, log):
            os.chown(p, uid, gid)
    port = _free_port()
    started = False
    try:
        _run(
            [
                *prefix,
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                "postgres",
            ],
            log,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        pg_ctl = [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data)]
        _run([*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", options, "start"], log)
        started = True
        user, dbname = "recon_test", "recon_test"
        password = secrets.token_urlsafe(24)
        admin = psycopg2.connect(host=str(sock), port=port, user="postgres", dbname="postgres")
        try:
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(f"create role {user} login password %s", (password,))
                cur.execute(f"create database {dbname} owner {user}")
        finally:
            admin.close()
        yield PostgresServer(
            dsn=f"postgresql://{user}:{password}@127.0.0.1:{port}/{dbname}",
            host="127.0.0.1",
            port=port,
            user=user,
            password=password,
            dbname=dbname,
            socket_dir=sock,
        )
    finally:
        if started:
            subprocess.run(
                [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                check=False,
                timeout=120,
            )
        shutil.rmtree(root, ignore_errors=True)
