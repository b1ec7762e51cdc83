"""``recon sync`` against the sandbox: dry run, apply, rerun, blast radius, pre-flight,
faults, and the outcome proof."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import scratch_warehouse as sw
from sync_fixtures import TOKEN, Scratch, make_scratch, validate, writes

from recon.cli import main
from recon.sandbox.faults import FaultConfig
from recon.sandbox.process import running_sandbox
from recon.sync import SyncOptions, SyncRefused, run_sync
from recon.sync.hubspot_client import HubSpotClient
from recon.sync.properties import PropertiesNotReady


def changes_table(warehouse: Path) -> list[tuple]:
    return sw.execute(
        warehouse,
        "select run_id, object_id, property, old_value, new_value, status, finding_ids "
        "from recon_audit.sync_changes order by run_id, change_id",
    )


def applied(world: Path) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for w in writes(world):
        for prop, value in w["properties"].items():
            out[(w["id"], prop)].append(value)
    return dict(out)


def test_dry_run_prints_the_plan_and_writes_nothing(
    scratch: Scratch, sandbox, capsys, monkeypatch
) -> None:
    validate(scratch)
    report = run_sync(scratch.settings(sandbox.base_url))
    assert report.status == "dry_run" and report.planned == 10
    assert report.plan.per_property() == {
        "lifecyclestage": 3,
        "mrr": 3,
        "stripe_customer_id": 2,
        "subscription_status": 2,
    }
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    code = main(
        ["sync", "--warehouse", str(scratch.warehouse), "--hubspot-api-base", sandbox.base_url]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "10 changes on 6 companies" in out and "dry run: nothing was written" in out
    assert "'100.50'" in out  # a sample row
    assert writes(scratch.world) == []
    assert changes_table(scratch.warehouse) == []
    runs = sw.execute(
        scratch.warehouse, "select status, apply, changes_planned from recon_audit.sync_runs"
    )
    assert runs == [("dry_run", False, 10), ("dry_run", False, 10)]


def test_apply_lands_every_correction_once_and_a_rerun_plans_nothing(
    scratch: Scratch, sandbox
) -> None:
    validate(scratch)
    report = run_sync(scratch.settings(sandbox.base_url), SyncOptions(apply=True))
    assert report.status == "succeeded", report.problems
    assert report.counts.verified == report.counts.planned == 10
    got = applied(scratch.world)
    assert got == {k: [v] for k, v in scratch.expected().items()}
    run = sw.execute(
        scratch.warehouse,
        "select status, recon_version, git_commit, validation_run_id, changes_verified, "
        "finished_at is not null from recon_audit.sync_runs where run_id = ?",
        [report.run_id],
    )[0]
    assert run[0] == "succeeded" and run[1] and run[2] and run[3] == report.validation_run_id
    assert run[4] == 10 and run[5]
    rows = changes_table(scratch.warehouse)
    assert {r[5] for r in rows} == {"verified"}
    # each change carries the findings behind its property
    finding = dict(((r[1], r[2]), json.loads(r[6])) for r in rows)
    mrr_id = sw.finding_id("mrr_mismatch", "cus_T0000", "1000", "mrr")
    assert finding[("1000", "mrr")] == [mrr_id]

    again = run_sync(scratch.settings(sandbox.base_url), SyncOptions(apply=True))
    assert again.status == "succeeded" and again.planned == 0
    assert again.plan.already_right == 10
    assert applied(scratch.world) == got  # nothing written the second time


def test_blast_radius_refuses_and_says_why(tmp_path: Path) -> None:
    corrections = [
        sw.Correction(
            str(1000 + i), f"cus_B{i:04d}", mrr=Decimal(f"{i + 1}.25"), current={"mrr": "0"}
        )
        for i in range(60)
    ]
    scratch = make_scratch(tmp_path, corrections, extra_companies=40)  # 100 live companies
    validate(scratch)
    with running_sandbox(scratch.world) as sb:
        with pytest.raises(
            SyncRefused,
            match=r"60 changes exceed the blast-radius limit of 50 \(the larger of 50 and 10 % of 100 live",
        ):
            run_sync(scratch.settings(sb.base_url), SyncOptions(apply=True))
        with pytest.raises(SyncRefused, match=r"limit of 59 \(--max-changes\)"):
            run_sync(scratch.settings(sb.base_url), SyncOptions(apply=True, max_changes=59))
        assert writes(scratch.world) == []
        dry = run_sync(scratch.settings(sb.base_url), SyncOptions(max_changes=10))
        assert dry.over_limit and any("--max-changes 60" in p for p in dry.problems)
        report = run_sync(scratch.settings(sb.base_url), SyncOptions(apply=True, max_changes=60))
        assert report.status == "succeeded" and report.counts.verified == 60
    refused = sw.execute(
        scratch.warehouse, "select count(*) from recon_audit.sync_runs where status = 'refused'"
    )
    assert refused == [(2,)]


def test_missing_properties_are_named_or_created(tmp_path: Path) -> None:
    scratch = make_scratch(tmp_path, custom_properties=False)
    validate(scratch)
    props_file = scratch.world / "hubspot" / "properties" / "companies.json"
    before = props_file.read_text()
    with running_sandbox(scratch.world) as sb:
        settings = scratch.settings(sb.base_url)
        with pytest.raises(
            PropertiesNotReady,
            match="mrr, subscription_status, stripe_customer_id: rerun with --create-properties",
        ):
            run_sync(settings, SyncOptions(apply=True))
        dry = run_sync(settings, SyncOptions(create_properties=True))
        assert dry.would_create_properties == ["mrr", "subscription_status", "stripe_customer_id"]
        assert props_file.read_text() == before  # a dry run creates nothing
        report = run_sync(settings, SyncOptions(apply=True, create_properties=True))
        assert report.created_properties == ["mrr", "subscription_status", "stripe_customer_id"]
        assert report.status == "succeeded" and report.counts.verified == 10
    created = {p["name"]: p for p in json.loads(props_file.read_text())["results"]}
    assert created["mrr"]["type"] == "number"
    assert created["stripe_customer_id"]["hasUniqueValue"] is False
    assert [o["value"] for o in created["subscription_status"]["options"]] == [
        "active",
        "past_due",
        "trialing",
        "unpaid",
        "paused",
        "incomplete",
        "canceled",
        "none",
    ]


def test_a_property_of_the_wrong_type_is_a_clear_error(scratch: Scratch) -> None:
    props_file = scratch.world / "hubspot" / "properties" / "companies.json"
    body = json.loads(props_file.read_text())
    for p in body["results"]:
        if p["name"] == "mrr":
            p["type"], p["fieldType"] = "string", "text"
    props_file.write_text(json.dumps(body))
    validate(scratch)
    with (
        running_sandbox(scratch.world) as sb,
        pytest.raises(
            PropertiesNotReady, match="mrr is of type 'string', recon writes 'number'"
        ) as info,
    ):
        run_sync(scratch.settings(sb.base_url), SyncOptions(apply=True, create_properties=True))
    assert int(info.value.exit_code) == 2
    assert writes(scratch.world) == []


class SkippingClock:
    """Real time plus every sleep, without sleeping: retries and 429 waits cost no time."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds


def test_429_storms_5xx_and_dropped_connections_still_land_everything_once(
    scratch: Scratch, sandbox
) -> None:
    validate(scratch)
    clock = SkippingClock()
    sandbox.set_faults(
        FaultConfig(
            seed=11,
            rate_limit_share=0.45,
            error_share=0.15,
            drop_share=0.1,
            paths=("/crm/v3/objects/companies",),
        )
    )
    client = HubSpotClient(sandbox.base_url, TOKEN, sleep=clock.sleep, clock=clock.now)
    report = run_sync(scratch.settings(sandbox.base_url), SyncOptions(apply=True), client=client)
    assert report.status == "succeeded", report.problems
    assert report.counts.verified == 10
    assert client.stats.rate_limited > 0 and client.stats.transport_errors > 0
    assert sum(clock.sleeps) >= client.stats.rate_limited  # each 429 waited (Retry-After: 1)
    # every property holds one value only, the expected one, however often it was retried
    got = applied(scratch.world)
    assert set(got) == set(scratch.expected())
    assert all(set(v) == {scratch.expected()[k]} for k, v in got.items())


class AcknowledgesButIgnores:
    """A HubSpot that answers 200 to every update and keeps the old values."""

    def __init__(self, world_props: list[dict], companies: dict[str, dict]) -> None:
        self.props = world_props
        self.companies = companies

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path == "/crm/v3/properties/companies":
            return httpx.Response(200, json={"results": self.props})
        body = json.loads(request.content)
        ids = [i["id"] for i in body["inputs"]]
        if path.endswith("/batch/read"):
            results = [{"id": i, "properties": dict(self.companies.get(i, {}))} for i in ids]
            return httpx.Response(200, json={"status": "COMPLETE", "results": results})
        return httpx.Response(200, json={"status": "COMPLETE", "results": [{"id": i} for i in ids]})


def test_a_mismatch_in_the_read_back_fails_the_run(scratch: Scratch, monkeypatch, capsys) -> None:
    validate(scratch)
    companies = {c.company_id: dict(c.current) for c in scratch.corrections}
    fake = AcknowledgesButIgnores(sw.property_definitions(), companies)
    client = HubSpotClient("http://hubspot.test", TOKEN, transport=httpx.MockTransport(fake))
    report = run_sync(
        scratch.settings("http://hubspot.test"), SyncOptions(apply=True), client=client
    )
    assert report.status == "failed" and not report.ok
    assert report.counts.mismatch == 10 and report.counts.verified == 0
    assert any("read back" in p for p in report.problems)
    statuses = {r[5] for r in changes_table(scratch.warehouse)}
    assert statuses == {"mismatch"}
    assert sw.execute(scratch.warehouse, "select status from recon_audit.sync_runs") == [
        ("failed",)
    ]
