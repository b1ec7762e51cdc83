"""``recon run --target postgres`` end to end over the sandbox, on a generated world.

One world and one PostgreSQL database: a first run without --apply ingests, builds, gates
and plans on PostgreSQL (no DuckDB file is created).  Then a sync row broken in PostgreSQL
fails the gate (exit 1) and ``recon sync --apply`` pushes nothing; ``recon run --apply``
lands exactly the world's due corrections, each once, proven by the read-back in
PostgreSQL's journal; a second run writes nothing.  The DSN's password is in no output, no
file the runs leave behind, and no audit table.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from pg_scratch import pg_execute
from pg_server import PostgresServer

from recon.cli import main
from recon.run import CORRECTABLE_KINDS
from recon.sandbox.generator import generate_world

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt-models")]


@dataclass
class PgWorld:
    root: Path
    world: Path
    dsn: str
    password: str
    due: dict[tuple[str, str], str]  # (company, property) -> value the answers call for
    outputs: list[str] = field(default_factory=list)  # everything every command printed

    @property
    def warehouse(self) -> Path:  # only names dlt's working folder on PostgreSQL
        return self.root / "recon.duckdb"

    @property
    def journal(self) -> Path:
        return self.world / "hubspot" / "writes.jsonl"

    def recon(self, *args: str) -> tuple[int, str]:
        """``recon <args>`` in-process, in the run's own folder and environment; what it
        printed (and logged at WARNING or above) is returned and kept."""
        out, err = io.StringIO(), io.StringIO()
        logged = logging.StreamHandler(err)
        logged.setLevel(logging.WARNING)
        logging.getLogger().addHandler(logged)
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(self.root)  # GX Data Docs go to ./target/gx_docs
            mp.setenv("RECON_POSTGRES_DSN", self.dsn)
            mp.setenv("DBT_TARGET_PATH", str(self.root / "dbt-target"))
            mp.setenv("DBT_LOG_PATH", str(self.root / "dbt-logs"))
            for name in (
                "RECON_WAREHOUSE",
                "RECON_MRR_CEILING",
                "RECON_MAX_AGE_HOURS",
                "DESTINATION__POSTGRES__CREDENTIALS",
            ):
                mp.delenv(name, raising=False)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = main(list(args))
            finally:
                logging.getLogger().removeHandler(logged)
        text = out.getvalue() + err.getvalue()
        self.outputs.append(text)
        return code, text

    def written(self) -> dict[tuple[str, str], list[str]]:
        out: dict[tuple[str, str], list[str]] = {}
        if not self.journal.exists():
            return out
        for line in self.journal.read_text().splitlines():
            entry = json.loads(line)
            assert entry["object_type"] == "companies"
            for prop, value in entry["properties"].items():
                out.setdefault((str(entry["id"]), prop), []).append(str(value))
        return out


RELATION = "public.sync_hubspot__companies"


def _same(prop: str, written: str, expected: str) -> bool:
    if prop == "mrr":
        return Decimal(written) == Decimal(expected)
    return written == expected


def test_recon_run_on_postgres_end_to_end(postgres_server: PostgresServer, tmp_path: Path) -> None:
    """One test, one world, one build: pytest-xdist (3.8 under pytest 9) does not keep
    ``xdist_group`` tests on one worker, so a module fixture would build the world twice."""
    world = tmp_path / "world"
    generate_world(world, customers=200, seed=31)
    with (world / "answers" / "findings.csv").open(newline="") as fh:
        due = {
            (r["hubspot_company_id"], r["property"]): r["expected_value"]
            for r in csv.DictReader(fh)
            if r["kind"] in CORRECTABLE_KINDS
        }
    assert due, "the generated world has corrections to make"
    pg = PgWorld(
        root=tmp_path,
        world=world,
        dsn=postgres_server.create_database("run"),
        password=postgres_server.password,
        due=due,
    )
    run = ("run", "--target", "postgres", "--sandbox", str(world), "--warehouse",
           str(pg.warehouse), "--max-changes", str(len(due)), "--quiet")  # fmt: skip

    # 1. a dry run ingests, builds, gates and plans on PostgreSQL only
    code, text = pg.recon(*run)
    assert code == 0, text
    assert "gate passed" in text and "dry run: nothing was written" in text
    assert f"{len(due)} changes on" in text, text
    assert pg.written() == {}
    assert not pg.warehouse.exists(), "nothing may land in a DuckDB file"
    marts = pg_execute(
        pg.dsn,
        "select count(*) from information_schema.tables where table_schema = 'public' "
        "and table_name in ('fct_mrr', 'rec_findings', 'sync_hubspot__companies')",
    )
    assert marts == [(3,)]
    runs = pg_execute(pg.dsn, "select status, apply, changes_planned from recon_audit.sync_runs")
    assert runs == [("dry_run", False, len(due))]
    gate = pg_execute(
        pg.dsn, "select count(distinct run_id), bool_and(success) from recon_audit.validation_runs"
    )
    assert gate == [(1, True)]

    # 2. one sync row broken in PostgreSQL: the gate fails and nothing is pushed
    row = pg_execute(
        pg.dsn,
        f"select hubspot_company_id, subscription_status from {RELATION} "
        "where subscription_status is not null order by hubspot_company_id limit 1",
    )
    assert row, "the world has a status correction"
    company, status = row[0]
    pg_execute(
        pg.dsn,
        f"update {RELATION} set subscription_status = 'activ' where hubspot_company_id = %s",
        (company,),
    )
    code, text = pg.recon("validate", "--target", "postgres")
    assert code == 1, text
    assert "[payload.subscription_status.options]" in text and "the gate failed" in text
    failed = pg_execute(
        pg.dsn,
        "select check_id from recon_audit.validation_runs where not success "
        "and run_id = (select max(run_id) from recon_audit.validation_runs)",
    )
    assert failed == [("payload.subscription_status.options",)], "one expectation fails"
    code, text = pg.recon(
        "sync", "--apply", "--target", "postgres", "--sandbox", str(world),
        "--max-changes", str(len(due)),
    )  # fmt: skip
    assert code == 1, text
    assert "the gate failed on its latest run" in text
    assert pg.written() == {}, "nothing may be pushed after a failed gate"
    refused = pg_execute(
        pg.dsn, "select count(*) from recon_audit.sync_runs where status = 'refused' and apply"
    )
    assert refused == [(1,)]
    pg_execute(
        pg.dsn,
        f"update {RELATION} set subscription_status = %s where hubspot_company_id = %s",
        (status, company),
    )

    # 3. run --apply: exactly the answers' corrections, each once, proven in PostgreSQL
    code, text = pg.recon(*run, "--apply")
    assert code == 0, text
    assert "gate passed" in text
    assert f"applied: {len(due)} succeeded, {len(due)} verified, 0 failed" in text, text
    written = pg.written()
    assert set(written) == set(due), "exactly the due (company, property) pairs are written"
    for key, values in written.items():
        assert len(values) == 1, f"{key} written {len(values)} times"
        assert _same(key[1], values[0], due[key]), (key, values[0], due[key])
    proof = pg_execute(
        pg.dsn,
        "select c.object_id, c.property, c.status, c.verified_value from "
        "recon_audit.sync_changes as c join recon_audit.sync_runs as r using (run_id) "
        "where r.apply and r.status = 'succeeded'",
    )
    assert {(r[0], r[1]) for r in proof} == set(due)
    assert {r[2] for r in proof} == {"verified"}
    assert all(_same(r[1], r[3], due[(r[0], r[1])]) for r in proof)

    # 4. a second run writes nothing; no correctable finding is left
    before = pg.journal.read_text()
    code, text = pg.recon(*run, "--apply")
    assert code == 0, text
    assert "0 changes on 0 companies" in text, text
    assert pg.journal.read_text() == before, "a second run writes nothing"
    kinds = dict(pg_execute(pg.dsn, "select kind, count(*) from public.rec_findings group by 1"))
    assert not {k for k, n in kinds.items() if k in CORRECTABLE_KINDS and n}

    # 5. the password: in no output, no file the runs left, no audit table
    secret = pg.password
    assert len(pg.outputs) == 5
    assert not [o for o in pg.outputs if secret in o]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "index.html" for p in files), "GX Data Docs were written"
    assert any(p.suffix == ".log" for p in files), "dbt's log was written"
    assert not [str(p) for p in files if secret.encode() in p.read_bytes()]
    for (table,) in pg_execute(
        pg.dsn,
        "select table_name from information_schema.tables where table_schema = 'recon_audit'",
    ):
        rows = pg_execute(pg.dsn, f'select * from recon_audit."{table}"')
        assert secret not in repr(rows), f"recon_audit.{table} holds the password"
