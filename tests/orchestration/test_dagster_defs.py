"""The Dagster definitions (optional ``dagster`` extra) load, with lineage and a schedule.

``make test`` installs every extra, so this runs there; it is skipped only where the extra
is not installed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("dagster", reason="the optional dagster extra is not installed")
pytest.importorskip("dagster_dbt", reason="the optional dagster extra is not installed")
pytest.importorskip("dagster_dlt", reason="the optional dagster extra is not installed")

import dagster as dg

from recon.orchestration import CRON_SCHEDULE

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "report"))

pytestmark = [
    pytest.mark.xdist_group("dagster_defs"),
    # dagster's in-process executor closes its event loop without awaiting this
    pytest.mark.filterwarnings(
        "ignore:coroutine 'BaseEventLoop.shutdown_asyncgens' was never awaited:RuntimeWarning"
    ),
]


@pytest.fixture(scope="module")
def defs_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The module, loaded against a scratch warehouse, dbt artifacts in a temp dir."""
    tmp = tmp_path_factory.mktemp("dagster")
    mp = pytest.MonkeyPatch()
    mp.setenv("RECON_WAREHOUSE", str(tmp / "recon.duckdb"))
    mp.setenv("DBT_TARGET_PATH", str(tmp / "dbt_target"))
    mp.setenv("RECON_REPORT_OUT", str(tmp / "report.html"))
    mp.delenv("DAGSTER_IS_DEV_CLI", raising=False)
    sys.modules.pop("recon.orchestration.dagster_defs", None)
    try:
        module = importlib.import_module("recon.orchestration.dagster_defs")
        yield module
    finally:
        sys.modules.pop("recon.orchestration.dagster_defs", None)
        mp.undo()


@pytest.fixture(scope="module")
def graph(defs_module: ModuleType) -> Any:
    defs: dg.Definitions = defs_module.defs
    dg.Definitions.validate_loadable(defs)
    return defs.resolve_asset_graph()


def _keys(graph: Any) -> set[str]:
    return {k.to_user_string() for k in graph.get_all_asset_keys()}


def test_dbt_manifest_parsed_into_the_target_path(defs_module: ModuleType) -> None:
    assert defs_module.dbt_project.manifest_path.is_relative_to(
        Path(sys.modules["os"].environ["DBT_TARGET_PATH"])
    )
    assert defs_module.dbt_project.manifest_path.exists()


def test_one_dlt_asset_per_resource_of_each_source(defs_module: ModuleType, graph: Any) -> None:
    from pipelines.hubspot import hubspot_source
    from pipelines.stripe import stripe_source

    for source, build in (
        ("stripe", lambda: stripe_source(api_key="k", base_url="http://127.0.0.1:9")),
        ("hubspot", lambda: hubspot_source(access_token="t", base_url="http://127.0.0.1:9")),
    ):
        tables = {str(r.table_name) for r in build().resources.values()}
        assert {f"{source}/{t}" for t in tables} <= _keys(graph)
        for table in tables:
            node = graph.get(dg.AssetKey([source, table]))
            assert node.is_materializable
            assert node.group_name == "ingest"
            assert "dlt" in node.kinds


def test_dbt_staging_models_hang_off_the_dlt_assets(graph: Any) -> None:
    assert "staging/stg_stripe__events" in _keys(graph)
    assert graph.get(dg.AssetKey(["staging", "stg_stripe__events"])).parent_keys == {
        dg.AssetKey(["stripe", "events"])
    }
    assert (
        dg.AssetKey(["hubspot", "companies"])
        in graph.get(dg.AssetKey(["staging", "stg_hubspot__companies"])).parent_keys
    )
    # every raw table a staging model reads is landed by a dlt asset
    for key in graph.get_all_asset_keys():
        if key.path[0] != "staging":
            continue
        for parent in graph.get(key).parent_keys:
            if parent.path[0] in ("stripe", "hubspot"):
                assert graph.get(parent).is_materializable, f"{parent} has no dlt asset"


def test_gate_sync_and_report_follow_the_marts(graph: Any) -> None:
    def parents(*path: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(list(path))).parent_keys}

    assert {"sync_hubspot__companies", "rec_findings"} <= parents("sync_gate")
    assert parents("hubspot_company_sync") == {"sync_gate"}
    assert parents("recon_report") == {"hubspot_company_sync"}
    for model in ("fct_mrr", "mrr_bridge", "rec_summary", "owner_book", "sync_hubspot__companies"):
        assert graph.get(dg.AssetKey([model])).is_materializable


def test_daily_schedule_applies(defs_module: ModuleType) -> None:
    defs: dg.Definitions = defs_module.defs
    schedule = defs.resolve_schedule_def("recon_daily")
    assert schedule.cron_schedule == CRON_SCHEDULE
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "recon_run"
    run_config = (
        schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=None))
        .run_requests[0]
        .run_config
    )
    assert run_config["ops"]["hubspot_company_sync"]["config"]["apply"] is True
    job = defs.resolve_job_def("recon_run")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {
        "stripe/events",
        "hubspot/companies",
        "fct_mrr",
        "sync_gate",
        "recon_report",
    } <= selected


def test_sync_is_a_dry_run_unless_configured(defs_module: ModuleType) -> None:
    assert defs_module.SyncConfig().apply is False


def test_report_asset_materialises(
    defs_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import report_warehouse as rw

    warehouse = rw.build(tmp_path / "w.duckdb")
    out = tmp_path / "report.html"
    monkeypatch.setenv("RECON_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("RECON_REPORT_OUT", str(out))
    result = dg.materialize([defs_module.recon_report], raise_on_error=True)
    assert result.success
    (mat,) = result.asset_materializations_for_node("recon_report")
    assert mat.metadata["months"] == dg.IntMetadataValue(len(rw.BRIDGE))
    assert "Grace Hopper" in out.read_text(encoding="utf-8")


@pytest.fixture
def stripe_refusing_the_key() -> Iterator[str]:
    """A Stripe on loopback that answers every request with 401 (not retried)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
            )
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_ingest_failure_fails_the_asset(
    defs_module: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stripe_refusing_the_key: str,
) -> None:
    """A failed ingest fails the run with recon's one-line error and is recorded as failed."""
    import duckdb

    warehouse = tmp_path / "w.duckdb"
    monkeypatch.setenv("RECON_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_refused")
    monkeypatch.setenv("STRIPE_API_BASE", stripe_refusing_the_key)
    result = dg.materialize(
        [defs_module.stripe_assets], raise_on_error=False, selection=["stripe/customers"]
    )
    assert not result.success
    failure = result.failure_data_for_node("ingest_stripe")
    assert failure is not None and "ingest stripe failed" in str(failure.error)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select source, status from recon_audit.ingest_runs").fetchall()
    assert rows == [("stripe", "failed")]
