"""Helpers for the sync tests: a scratch warehouse and a hand-written sandbox world."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gate"))

import scratch_warehouse as sw

from recon.config import Settings

TOKEN = "pat-na1-sandbox-sync-tests"


def write_world(
    world: Path,
    corrections: list[sw.Correction],
    *,
    extra_companies: int = 14,
    custom_properties: bool = True,
    rate_limit_per_10s: int = 190,
) -> None:
    (world / "hubspot" / "properties").mkdir(parents=True, exist_ok=True)
    (world / "world.json").write_text(
        json.dumps(
            {
                "now": "2026-06-30T12:00:00Z",
                "reporting_currency": "USD",
                "stripe": {"api_key": "sk_test_sync", "events_retention_days": 0},
                "hubspot": {"access_token": TOKEN, "rate_limit_per_10s": rate_limit_per_10s},
            }
        )
    )
    lines = []
    ids = [c.company_id for c in corrections]
    current = {c.company_id: c.current for c in corrections}
    n = len(ids)
    for i in range(extra_companies):
        ids.append(str(1000 + n + i))
    for cid in ids:
        props = {"name": f"Company {cid}", "domain": f"c{cid}.example"}
        props.update({k: v for k, v in current.get(cid, {}).items() if v is not None})
        lines.append(
            json.dumps(
                {
                    "id": cid,
                    "properties": props,
                    "createdAt": "2025-01-01T00:00:00.000Z",
                    "updatedAt": "2026-06-01T00:00:00.000Z",
                    "archived": False,
                }
            )
        )
    (world / "hubspot" / "companies.jsonl").write_text("\n".join(lines) + "\n")
    defs = sw.property_definitions()
    if not custom_properties:
        defs = [
            d for d in defs if d["name"] not in ("mrr", "subscription_status", "stripe_customer_id")
        ]
    (world / "hubspot" / "properties" / "companies.json").write_text(json.dumps({"results": defs}))


def writes(world: Path) -> list[dict]:
    path = world / "hubspot" / "writes.jsonl"
    if not path.exists():
        return []
    # the sandbox may be appending while a test polls: a last line without its newline is
    # not written yet
    complete = path.read_text().rpartition("\n")[0]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


@dataclass
class Scratch:
    warehouse: Path
    world: Path
    corrections: list[sw.Correction]

    def settings(self, base_url: str = "http://127.0.0.1:9") -> Settings:
        return Settings.load(
            warehouse=self.warehouse,
            hubspot_api_base=base_url,
            hubspot_access_token=TOKEN,
            environ={},
        )

    def expected(self) -> dict[tuple[str, str], str]:
        """(company, property) -> the value the sync must leave in HubSpot."""
        from recon.sync.values import wire_value

        out = {}
        for c in self.corrections:
            for prop in ("mrr", "subscription_status", "stripe_customer_id", "lifecyclestage"):
                value = getattr(c, prop)
                if value is not None:
                    out[(c.company_id, prop)] = wire_value(prop, value)
        return out


def make_scratch(
    tmp_path: Path,
    corrections: list[sw.Correction] | None = None,
    *,
    extra_companies: int = 14,
    custom_properties: bool = True,
) -> Scratch:
    warehouse = tmp_path / "recon.duckdb"
    world = tmp_path / "world"
    corrections = sw.default_corrections() if corrections is None else corrections
    sw.build(warehouse, corrections, live_companies=len(corrections) + extra_companies)
    write_world(
        world, corrections, extra_companies=extra_companies, custom_properties=custom_properties
    )
    return Scratch(warehouse, world, corrections)


def validate(scratch: Scratch) -> None:
    """Run the real gate on the scratch warehouse (it must pass)."""
    from recon.validate import run_validation

    report = run_validation(scratch.settings(), docs_dir=None)
    assert report.success, [f.line for f in report.failures]
