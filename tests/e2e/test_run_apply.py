"""`recon run --apply` end to end over the sandbox (issue 5, "End to end").

The world's own answers say which (company, property) corrections are due; after one run
with --apply the sandbox's write journal holds exactly those values, each written once, and
a second run plans and writes nothing.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from recon.config import Settings
from recon.run import CORRECTABLE_KINDS, run_pipeline
from recon.sandbox.generator import generate_world
from recon.sandbox.process import running_sandbox

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt-models")]


def _same(prop: str, written: str, expected: str) -> bool:
    if prop == "mrr":
        return Decimal(written) == Decimal(expected)
    return written == expected


def test_run_apply_lands_the_answers_corrections_once(tmp_path: Path) -> None:
    world = tmp_path / "world"
    generate_world(world, customers=200, seed=31)
    with (world / "answers" / "findings.csv").open(newline="") as fh:
        due = {
            (r["hubspot_company_id"], r["property"]): r["expected_value"]
            for r in csv.DictReader(fh)
            if r["kind"] in CORRECTABLE_KINDS
        }
    assert due, "the generated world has corrections to make"
    journal = world / "hubspot" / "writes.jsonl"

    with running_sandbox(world) as sb:
        settings = Settings.load(warehouse=tmp_path / "recon.duckdb", environ={}).with_sandbox(
            sb.base_url, sb.stripe_api_key, sb.hubspot_access_token
        )
        first = run_pipeline(settings, apply=True, max_changes=len(due), quiet=True)
        assert first.sync.ok
        assert first.sync.counts.verified == len(due)

        written: dict[tuple[str, str], list[str]] = {}
        for line in journal.read_text().splitlines():
            entry = json.loads(line)
            assert entry["object_type"] == "companies"
            for prop, value in entry["properties"].items():
                written.setdefault((str(entry["id"]), prop), []).append(str(value))
        assert set(written) == set(due), "exactly the due (company, property) pairs are written"
        for key, values in written.items():
            assert len(values) == 1, f"{key} written {len(values)} times"
            assert _same(key[1], values[0], due[key]), (key, values[0], due[key])

        lines_after_first = journal.read_text()
        second = run_pipeline(settings, apply=True, max_changes=len(due), quiet=True)
        assert len(second.sync.plan.changes) == 0
        assert journal.read_text() == lines_after_first, "a second run writes nothing"
        # and every correctable finding is gone from the marts
        assert not {k for k, n in second.findings.items() if k in CORRECTABLE_KINDS and n}
