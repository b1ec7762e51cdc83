"""rec_findings_history over real builds (issue 8, "Findings over time"), and the dbt docs.

A small generated world is served by the sandbox, ingested and built (as_of T1, the world's
clock).  Then, as in real life: one mrr_mismatch is fixed by hand in HubSpot before the sync
runs, the gate passes and ``recon sync --apply`` fixes every other correctable finding, a
person gives the owner-less paying company an owner, and a paying company's lifecycle stage
is set back to ``lead`` (a new finding).  The world's clock moves on (T2), and ingest + build
run again.  A third round (T3) sets the hand-fixed mrr back to its wrong value (the finding
reappears) and builds with ``--full-refresh``, which must keep the history.

``dbt docs generate`` then runs against the same warehouse: it succeeds, every mart and sync
model column in the catalog is described in the manifest, and the report's exposure is there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from raw_tables import rows

from recon.build import build, project_dir, release_duckdb
from recon.config import Settings
from recon.ingest import ingest
from recon.run import CORRECTABLE_KINDS
from recon.sandbox.generator import generate_world
from recon.sandbox.process import SandboxHandle, running_sandbox
from recon.sync import SyncOptions, run_sync
from recon.validate import run_validation

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt-models")]

T1 = datetime(2026, 7, 1, 12, 0, 0)  # the generated world's clock
T2 = datetime(2026, 7, 3, 12, 0, 0)
T3 = datetime(2026, 7, 4, 18, 0, 0)
Key = tuple[str, str, str, str]  # kind, stripe_customer_id, hubspot_company_id, property


def _key(r: dict[str, Any]) -> Key:
    return (
        str(r["kind"]),
        r["stripe_customer_id"] or "",
        r["hubspot_company_id"] or "",
        r["property"] or "",
    )


@dataclass
class Story:
    warehouse: Path
    target: Path
    logs: Path
    findings: list[dict[str, dict[Key, dict[str, Any]]]]  # rec_findings after each build
    history: list[dict[tuple[Key, int], dict[str, Any]]]  # (key, episode) -> row, each build
    hand_mrr: Key  # fixed in HubSpot by hand before the sync
    hand_owner: Key  # owner_missing, an owner given by hand
    planted: Key  # the lifecycle_mismatch made after the sync
    sync_run_id: str
    synced: set[tuple[str, str]]  # (company, property) the sync wrote and verified


def _query(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return rows(con, sql)
    finally:
        con.close()


def _snapshot(warehouse: Path) -> tuple[dict[Key, dict[str, Any]], dict[Any, dict[str, Any]]]:
    findings = {_key(r): r for r in _query(warehouse, "select * from main.rec_findings")}
    history = {
        (_key(r), int(r["episode"])): r
        for r in _query(warehouse, "select * from main.rec_findings_history")
    }
    return findings, history


def _set_clock(sandbox: SandboxHandle, world: Path, now: datetime) -> None:
    config = json.loads((world / "world.json").read_text())
    config["now"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    (world / "world.json").write_text(json.dumps(config, indent=2))
    sandbox.reload()  # the writes journal (the sync's and ours) is replayed


def _hand_edit(sandbox: SandboxHandle, company_id: str, properties: dict[str, str]) -> None:
    """A person changing a company in HubSpot: straight to the API, not through recon."""
    resp = httpx.post(
        f"{sandbox.base_url}/crm/v3/objects/companies/batch/update",
        headers={"Authorization": f"Bearer {sandbox.hubspot_access_token}"},
        json={"inputs": [{"id": company_id, "properties": properties}]},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    tmp = tmp_path_factory.mktemp("history")
    world = tmp / "world"
    generate_world(world, customers=40, seed=5)
    warehouse = tmp / "warehouse.duckdb"
    target, logs = tmp / "target", tmp / "logs"
    findings: list[dict[Key, dict[str, Any]]] = []
    history: list[dict[Any, dict[str, Any]]] = []

    def ingest_and_build(settings: Settings, *, full_refresh: bool = False) -> None:
        for result in ingest(settings):
            assert result.status == "succeeded", (result.source, result.error)
        built = build(
            Settings.load(warehouse=warehouse, environ={}),
            exclude=["test_type:unit"],  # the unit tests run in test_models_build.py
            full_refresh=full_refresh,
            target_path=target,
            log_path=logs,
            environ={},
        )
        assert built.error is None, built.error
        assert not built.failed, [o.line() for o in built.failed]
        f, h = _snapshot(warehouse)
        findings.append(f)
        history.append(h)

    with running_sandbox(world) as sb:
        settings = Settings.load(warehouse=warehouse, environ={}).with_sandbox(
            sb.base_url, sb.stripe_api_key, sb.hubspot_access_token
        )
        ingest_and_build(settings)  # T1
        first = findings[0]
        hand_mrr = min(k for k in first if k[0] == "mrr_mismatch")
        hand_owner = min(k for k in first if k[0] == "owner_missing")
        assert {k[0] for k in first} >= set(CORRECTABLE_KINDS), "every correctable kind is found"
        _hand_edit(sb, hand_mrr[2], {"mrr": str(first[hand_mrr]["expected_value"])})

        gate = run_validation(settings, docs_dir=None)
        assert gate.success, [f.line for f in gate.failures]
        report = run_sync(settings, SyncOptions(apply=True, max_changes=500))
        assert report.ok and report.counts.verified > 0

        _set_clock(sb, world, T2)
        owner = _query(
            warehouse, "select min(owner_id) as id from main.dim_owners where is_active"
        )[0]["id"]
        _hand_edit(sb, hand_owner[2], {"hubspot_owner_id": str(owner)})
        flagged = {k[2] for k in first}
        quiet = sorted(
            r["account_id"]
            for r in _query(
                warehouse,
                "select account_id from main.rec_account_deltas where account_type = 'company' "
                "and is_paying and hubspot_lifecyclestage = 'customer'",
            )
            if r["account_id"] not in flagged
        )
        assert quiet, "a paying company without findings to plant a new one on"
        _hand_edit(sb, quiet[0], {"lifecyclestage": "lead"})
        ingest_and_build(settings)  # T2
        planted = next(k for k in findings[1] if k[0] == "lifecycle_mismatch" and k[2] == quiet[0])

        _set_clock(sb, world, T3)
        _hand_edit(sb, hand_mrr[2], {"mrr": str(first[hand_mrr]["hubspot_value"] or "")})
        ingest_and_build(settings, full_refresh=True)  # T3

    synced = {
        (r["object_id"], r["property"])
        for r in _query(
            warehouse,
            "select object_id, property from recon_audit.sync_changes where status = 'verified'",
        )
    }
    yield Story(
        warehouse=warehouse,
        target=target,
        logs=logs,
        findings=findings,
        history=history,
        hand_mrr=hand_mrr,
        hand_owner=hand_owner,
        planted=planted,
        sync_run_id=report.run_id,
        synced=synced,
    )


def test_a_first_build_opens_every_finding_once(story: Story) -> None:
    first, history = story.findings[0], story.history[0]
    assert set(history) == {(k, 1) for k in first}
    for (key, _), row in history.items():
        assert (row["first_seen_at"], row["last_seen_at"], row["builds_seen"]) == (T1, T1, 1), key
        assert row["is_open"] and row["resolved_at"] is None and row["resolved_by"] is None
        assert row["finding_id"] == first[key]["finding_id"]
        assert row["mrr_at_stake"] == first[key]["mrr_at_stake"]


def test_findings_still_found_keep_their_first_seen(story: Story) -> None:
    first, second, history = story.findings[0], story.findings[1], story.history[1]
    kept = set(first) & set(second)
    assert kept, "report-only findings nobody touched are still found"
    for key in kept:
        row = history[(key, 1)]
        assert (row["first_seen_at"], row["last_seen_at"], row["builds_seen"]) == (T1, T2, 2)
        assert row["is_open"] and row["resolved_at"] is None
        assert row["days_open"] == 2


def test_fixed_findings_are_resolved_by_sync_or_by_hand(story: Story) -> None:
    first, second, history = story.findings[0], story.findings[1], story.history[1]
    gone = set(first) - set(second)
    by_sync = {k for k in first if k[0] in CORRECTABLE_KINDS} - {story.hand_mrr}
    assert by_sync and by_sync <= gone
    assert {story.hand_mrr, story.hand_owner} <= gone
    for key in gone:
        row = history[(key, 1)]
        assert (row["first_seen_at"], row["last_seen_at"]) == (T1, T1), key
        assert (row["resolved_at"], row["is_open"]) == (T2, False), key
        assert row["days_open"] == 2
    for key in by_sync:
        row = history[(key, 1)]
        assert (key[2], key[3]) in story.synced
        assert (row["resolved_by"], row["resolved_by_sync_run_id"]) == (
            "sync",
            story.sync_run_id,
        ), key
    # the company of the hand-fixed mrr may have had other properties synced: not its mrr
    for key in (story.hand_mrr, story.hand_owner):
        row = history[(key, 1)]
        assert (row["resolved_by"], row["resolved_by_sync_run_id"]) == ("hand", None), key


def test_a_new_finding_opens_at_the_later_build(story: Story) -> None:
    assert story.planted not in story.findings[0]
    row = story.history[1][(story.planted, 1)]
    assert (row["first_seen_at"], row["last_seen_at"], row["builds_seen"]) == (T2, T2, 1)
    assert row["is_open"] and row["episode"] == 1
    # new and still-open findings carry the sync's newest write HubSpot had been read after
    assert row["sync_watermark_at"] is not None
    assert set(story.history[1]) == set(story.history[0]) | {
        (k, 1) for k in story.findings[1] if (k, 1) not in story.history[0]
    }


def test_a_finding_found_again_opens_a_new_episode_and_full_refresh_keeps_history(
    story: Story,
) -> None:
    second, third = story.history[1], story.history[2]
    assert story.hand_mrr in story.findings[2]
    reopened = third[(story.hand_mrr, 2)]
    assert (reopened["first_seen_at"], reopened["builds_seen"], reopened["is_open"]) == (
        T3,
        1,
        True,
    )
    assert reopened["finding_id"] == second[(story.hand_mrr, 1)]["finding_id"]
    assert reopened["finding_episode_id"] != second[(story.hand_mrr, 1)]["finding_episode_id"]
    # --full-refresh rebuilt the other models but not the history: every episode is still
    # there, and the ones closed before are exactly as they were
    assert set(second) <= set(third)
    for episode, row in second.items():
        if not row["is_open"]:
            assert third[episode] == row, episode
    assert sum(1 for r in third.values() if r["is_open"] and r["episode"] > 1) == 1


def test_dbt_docs_generate_describes_every_mart_column(
    story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbt.cli.main import dbtRunner

    root = project_dir()
    docs = story.target.parent / "docs-target"
    monkeypatch.setenv("RECON_DBT_TARGET", "duckdb")
    monkeypatch.setenv("RECON_WAREHOUSE", str(story.warehouse))
    try:
        res = dbtRunner().invoke(
            [
                "docs",
                "generate",
                "--project-dir",
                str(root),
                "--profiles-dir",
                str(root),
                "--target",
                "duckdb",
                "--target-path",
                str(docs),
                "--log-path",
                str(story.logs),
                "--quiet",
            ]
        )
    finally:
        release_duckdb()
    assert res.success, res.exception
    manifest = json.loads((docs / "manifest.json").read_text())
    catalog = json.loads((docs / "catalog.json").read_text())
    marts = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
        and node["original_file_path"].startswith(("models/marts/", "models/sync/"))
    }
    assert "model.recon.rec_findings_history" in marts and len(marts) >= 13
    undescribed: list[str] = []
    for uid, node in marts.items():
        if not node["description"].strip():
            undescribed.append(node["name"])
        assert uid in catalog["nodes"], f"{node['name']} is not in the catalog"
        described = {
            name.lower(): (col.get("description") or "").strip()
            for name, col in node["columns"].items()
        }
        for column in catalog["nodes"][uid]["columns"]:
            if not described.get(column.lower()):
                undescribed.append(f"{node['name']}.{column}")
    assert not undescribed, f"no description: {undescribed}"
    # doc blocks are rendered, not left as jinja
    history = marts["model.recon.rec_findings_history"]
    assert history["columns"]["resolved_by"]["description"].startswith("`sync` when")
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert exposures["recon_report"]["type"] == "dashboard"
    assert {
        "model.recon.rec_findings_history",
        "model.recon.mrr_bridge",
        "model.recon.rec_summary",
        "source.recon.recon_audit.sync_changes",
    } <= set(exposures["recon_report"]["depends_on"]["nodes"])
    assert exposures["hubspot_company_sync"]["type"] == "application"
