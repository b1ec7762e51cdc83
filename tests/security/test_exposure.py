"""Secrets and exposure: keys never land anywhere recon writes, servers bind to loopback,
API text never becomes SQL, and the sync writes only allow-listed properties.

One ``recon run --sandbox WORLD --apply`` (module fixture) serves the secret search, the
SQL-text test and the allow-list test.  Its world's keys, and every secret in the
environment, are sentinels; company and customer names carry SQL-looking text.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml

from recon.build import build_env, postgres_env_from_dsn
from recon.config import Settings
from recon.sandbox.generator import generate_world
from recon.sync.payload import read_sync_rows
from recon.sync.values import SYNC_PROPERTIES

# one worker runs the module, so that the module's single ``recon run`` is shared
pytestmark = pytest.mark.xdist_group("exposure")

ROOT = Path(__file__).resolve().parents[2]
TOKEN = secrets.token_hex(12)
STRIPE_KEY = f"sk_test_sentinel{TOKEN}stripe"
HUBSPOT_TOKEN = f"pat-na1-sentinel{TOKEN}hubspot"
WEBHOOK_SECRET = f"whsec_sentinel{TOKEN}webhook"
APP_SECRET = f"sentinel{TOKEN}appsecret"
PG_PASSWORD = f"sentinel{TOKEN}pgpassword"
SENTINELS = (STRIPE_KEY, HUBSPOT_TOKEN, WEBHOOK_SECRET, APP_SECRET, PG_PASSWORD)
# SQL-looking text in what the APIs return; each names a table that must survive.
COMPANY_NAME = "Robert'); drop table raw_hubspot.companies; -- & Sons"
CUSTOMER_NAME = "O'Brien\"; drop table main.canary; --"
CONTACT_NAME = "x' or '1'='1"


def _needles(value: str) -> list[bytes]:
    """The value, its distinctive core, and the core in base64 at each alignment (Stripe's
    Basic auth sends the key base64-encoded)."""
    raw = value.encode()
    out = [raw, TOKEN.encode()]
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + raw)[4:-4]
        out.append(enc)
    return out


NEEDLES = [n for s in SENTINELS for n in _needles(s)]


def _readable(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # dlt's load packages are gzipped
        with contextlib.suppress(OSError, EOFError):
            data += gzip.decompress(data)
    return data


def _leaks(data: bytes) -> list[str]:
    return [n.decode(errors="replace") for n in NEEDLES if n in data]


@dataclass
class Run:
    root: Path
    world: Path
    warehouse: Path
    proc: subprocess.CompletedProcess[bytes]
    started: float


def _prepare_world(world: Path) -> None:
    config = json.loads((world / "world.json").read_text())
    config["stripe"]["api_key"] = STRIPE_KEY
    config["hubspot"]["access_token"] = HUBSPOT_TOKEN
    (world / "world.json").write_text(json.dumps(config, indent=2))

    def rewrite(path: Path, edit) -> None:
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        for i, obj in enumerate(lines):
            edit(i, obj)
        path.write_text("".join(json.dumps(o) + "\n" for o in lines))

    def company(i: int, obj: dict) -> None:
        if i % 5 == 0:
            obj["properties"]["name"] = COMPANY_NAME

    def customer(i: int, obj: dict) -> None:
        if i % 5 == 0:
            obj["name"] = CUSTOMER_NAME
            obj["description"] = COMPANY_NAME

    def contact(i: int, obj: dict) -> None:
        if i % 5 == 0:
            obj["properties"]["firstname"] = CONTACT_NAME

    rewrite(world / "hubspot" / "companies.jsonl", company)
    rewrite(world / "stripe" / "customers.jsonl", customer)
    rewrite(world / "hubspot" / "contacts.jsonl", contact)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("exposure")
    world = root / "world"
    generate_world(world, customers=40, seed=11)
    _prepare_world(world)
    warehouse = root / "wh" / "recon.duckdb"
    warehouse.parent.mkdir()
    con = duckdb.connect(str(warehouse))
    con.execute("create table main.canary as select 1 as still_here")
    con.close()
    for d in ("home", "tmp", "work"):
        (root / d).mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECON_", "STRIPE_", "HUBSPOT_", "DBT_"))
    }
    env.update(
        {
            "STRIPE_API_KEY": STRIPE_KEY,
            "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "HUBSPOT_APP_SECRET": APP_SECRET,
            "RECON_POSTGRES_DSN": f"postgresql://recon:{PG_PASSWORD}@localhost:5432/recon",
            "HOME": str(root / "home"),
            "TMPDIR": str(root / "tmp"),
            # dbt's target/ and logs/ in the run's own folder, so that they can be searched
            "DBT_TARGET_PATH": str(root / "work" / "target"),
            "DBT_LOG_PATH": str(root / "work" / "logs"),
        }
    )
    started = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "recon.cli",
            "run",
            "--sandbox",
            str(world),
            "--apply",
            "--max-changes",
            "500",
            "--warehouse",
            str(warehouse),
        ],
        cwd=root / "work",
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:]
    yield Run(root=root, world=world, warehouse=warehouse, proc=proc, started=started)


def test_the_keys_appear_in_nothing_recon_wrote(run: Run) -> None:
    # the world keeps the sandbox's own (here: sentinel) keys, and the search finds them
    # there, plain, gzipped and base64-encoded (as in Basic auth); everything else is searched
    assert _leaks(_readable(run.world / "world.json"))
    probe = run.root / "probe.gz"
    probe.write_bytes(gzip.compress(b"auth: " + base64.b64encode(HUBSPOT_TOKEN.encode() + b":")))
    assert _leaks(_readable(probe))
    probe.unlink()
    leaks: dict[str, list[str]] = {}
    searched: list[Path] = []
    for path in sorted(run.root.rglob("*")):
        if not path.is_file() or path.is_relative_to(run.world):
            continue
        searched.append(path)
        found = _leaks(_readable(path))
        if found:
            leaks[str(path.relative_to(run.root))] = found
    # anything recon wrote into the repository during the run (other tests may write there
    # too, but not these sentinels)
    for top in ("target", "logs", ".recon-dlt", ".recon_spool"):
        for path in (ROOT / top).rglob("*") if (ROOT / top).exists() else ():
            if path.is_file() and path.stat().st_mtime >= run.started:
                found = _leaks(_readable(path))
                if found:
                    leaks[str(path)] = found
    for stream, data in (("stdout", run.proc.stdout), ("stderr", run.proc.stderr)):
        found = _leaks(data)
        if found:
            leaks[stream] = found
    assert leaks == {}

    names = {p.relative_to(run.root).as_posix() for p in searched}
    # what was searched: the warehouse and its WAL-free file, dlt's folder, dbt's artefacts
    # and logs, GX's docs and the webhook spool's parent
    assert "wh/recon.duckdb" in names
    assert any(n.startswith("wh/.recon-dlt/") for n in names)
    for artefact in ("manifest.json", "run_results.json"):
        assert f"work/target/{artefact}" in names
    assert "work/logs/dbt.log" in names
    assert any(n.startswith("work/target/gx_docs/") for n in names)
    assert run.proc.stdout  # the run printed its stages and summary


def test_the_keys_appear_in_no_table_or_column(run: Run) -> None:
    con = duckdb.connect(str(run.warehouse), read_only=True)
    try:
        relations = con.execute(
            "select table_catalog, table_schema, table_name from information_schema.tables"
        ).fetchall()
        assert len(relations) > 40
        hits: list[str] = []
        for catalog, schema, table in relations:
            cols = con.execute(
                "select column_name from information_schema.columns where table_catalog = ? "
                "and table_schema = ? and table_name = ?",
                [catalog, schema, table],
            ).fetchall()
            text = " || chr(31) || ".join(
                "coalesce(cast(\"{}\" as varchar), '')".format(c.replace('"', '""'))
                for (c,) in cols
            )
            rows = con.execute(f'select {text} from "{catalog}"."{schema}"."{table}"').fetchall()
            blob = "\n".join(str(r[0]) for r in rows) + " ".join(c for (c,) in cols)
            if any(n.decode() in blob for n in NEEDLES):
                hits.append(f"{schema}.{table}")
            if schema == "raw_hubspot" and table == "companies":
                assert COMPANY_NAME in blob  # the dump does see the API's text
    finally:
        con.close()
    assert hits == []


def test_sql_looking_api_text_flows_through_ingest_build_and_sync_unharmed(run: Run) -> None:
    con = duckdb.connect(str(run.warehouse), read_only=True)
    try:
        assert con.execute("select still_here from main.canary").fetchall() == [(1,)]
        names = con.execute(
            "select count(*) from raw_hubspot.companies where json_extract_string(payload, "
            "'$.properties.name') = ?",
            [COMPANY_NAME],
        ).fetchone()
        assert names is not None and names[0] >= 5
        customers = con.execute(
            "select count(*) from raw_stripe.customers where json_extract_string(payload, "
            "'$.name') = ?",
            [CUSTOMER_NAME],
        ).fetchone()
        assert customers is not None and customers[0] >= 5
        # the text reaches the models verbatim (staging reads it out of the raw JSON)
        staged = con.execute(
            "select count(*) from main_staging.stg_hubspot__companies where company_name = ?",
            [COMPANY_NAME],
        ).fetchone()
        assert staged is not None and staged[0] == names[0]
        contacts = con.execute(
            "select count(*) from raw_hubspot.contacts where json_extract_string(payload, "
            "'$.properties.firstname') = ?",
            [CONTACT_NAME],
        ).fetchone()
        assert contacts is not None and contacts[0] >= 5
        # every stage ran to the end on this data: findings, a passed gate, a verified sync
        assert con.execute("select count(*) from main.rec_findings").fetchone()[0] > 0
        runs = con.execute("select status from recon_audit.sync_runs").fetchall()
        assert runs == [("succeeded",)]
        unproven = con.execute(
            "select count(*) from recon_audit.sync_changes where status <> 'verified'"
        ).fetchone()
        assert unproven == (0,)
    finally:
        con.close()
    # HubSpot still serves the names as they were, and the sync changed only what it planned
    companies = [
        json.loads(x) for x in (run.world / "hubspot" / "companies.jsonl").read_text().splitlines()
    ]
    assert sum(1 for c in companies if c["properties"].get("name") == COMPANY_NAME) >= 5


def test_the_sync_writes_only_allow_listed_properties(run: Run, tmp_path: Path) -> None:
    assert set(SYNC_PROPERTIES) == {
        "mrr",
        "subscription_status",
        "stripe_customer_id",
        "lifecyclestage",
    }
    writes = [
        json.loads(x)
        for x in (run.world / "hubspot" / "writes.jsonl").read_text().splitlines()
        if x.strip()
    ]
    assert writes, "the run wrote nothing: the test would prove nothing"
    written = {p for w in writes for p in w["properties"]}
    assert written <= set(SYNC_PROPERTIES), written
    # a sync model that grew other columns (names, owners) still yields only allow-listed
    # properties: the payload reads the allow-list's columns by name, nothing else
    copy = tmp_path / "copy.duckdb"
    shutil.copy(run.warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute(
            "alter table main.sync_hubspot__companies add column hubspot_owner_id varchar "
            "default '123'"
        )
        con.execute(
            "alter table main.sync_hubspot__companies add column name varchar "
            f"default '{COMPANY_NAME.replace(chr(39), chr(39) * 2)}'"
        )
        rows = read_sync_rows(con)
    finally:
        con.close()
    assert rows
    assert all(set(r.values) == set(SYNC_PROPERTIES) for r in rows)


# -- database passwords reach dbt only as DBT_ENV_SECRET_ variables ---------------------------


def test_the_profile_reads_passwords_only_from_dbt_env_secret_variables() -> None:
    text = (ROOT / "profiles.yml").read_text()
    profile = yaml.safe_load(text)
    secret_keys = re.compile(r"pass|secret|token|key", re.IGNORECASE)
    checked = 0
    for output in profile["recon"]["outputs"].values():
        for key, value in output.items():
            if not secret_keys.search(key):
                continue
            checked += 1
            names = re.findall(r"env_var\(\s*['\"]([^'\"]+)['\"]", str(value))
            assert names and all(n.startswith("DBT_ENV_SECRET_") for n in names), (key, value)
    assert checked >= 1
    # no other place in the profile reads a password-like variable
    for name in re.findall(r"env_var\(\s*['\"]([^'\"]+)['\"]", text):
        assert name.startswith("DBT_ENV_SECRET_") or not secret_keys.search(name), name


def test_the_build_passes_the_postgres_password_only_as_a_dbt_env_secret() -> None:
    dsn = f"postgresql://recon:{PG_PASSWORD}@db.internal:5433/recon"
    env = build_env(Settings.load(environ={}), "postgres", {"RECON_POSTGRES_DSN": dsn})
    holding = {k for k, v in env.items() if PG_PASSWORD in v}
    assert holding == {"DBT_ENV_SECRET_RECON_PG_PASSWORD"}
    assert env["RECON_PG_HOST"] == "db.internal" and env["RECON_PG_PORT"] == "5433"
    # a percent-encoded password arrives decoded, still only in the secret variable
    encoded = postgres_env_from_dsn("postgresql://u:p%40ss%3Aword@h/db")
    assert {k for k, v in encoded.items() if "p@ss:word" in v} == {
        "DBT_ENV_SECRET_RECON_PG_PASSWORD"
    }


# -- loopback by default ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listeners(port: int) -> list[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6), as hex."""
    out: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, hexport = fields[1].rsplit(":", 1)
            if int(hexport, 16) == port and fields[3] == "0A":  # LISTEN
                out.append(addr)
    return out


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
@pytest.mark.parametrize("server", ["sandbox", "webhooks"])
def test_servers_bind_to_loopback_by_default(server: str, tmp_path: Path) -> None:
    port = _free_port()
    env = dict(os.environ, STRIPE_WEBHOOK_SECRET="whsec_x", HUBSPOT_APP_SECRET="y")
    if server == "sandbox":
        world = tmp_path / "world"
        generate_world(world, customers=3, seed=1)
        cmd = ["sandbox", "serve", str(world), "--port", str(port)]
    else:
        cmd = ["webhooks", "serve", "--port", str(port), "--spool", str(tmp_path / "spool")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recon.cli", *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not _listeners(port):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the server never listened"
            time.sleep(0.05)
        # 127.0.0.1 only: not 0.0.0.0, not :: and no other interface
        assert _listeners(port) == ["0100007F"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
