"""Dagster definitions for recon (the optional ``dagster`` extra): ``pip install 'recon[dagster]'``.

    RECON_WAREHOUSE=/data/recon.duckdb dagster dev -m recon.orchestration.dagster_defs

The same steps as ``recon run --apply``, as assets with lineage:

* ``stripe/*`` and ``hubspot/*``: dagster-dlt assets, one per resource of the dlt sources in
  ``pipelines/``.  Their keys are the dbt sources' keys (``["stripe", "events"]``…), so the
  dbt staging models hang off them.  They materialise through ``recon.ingest.ingest_source``,
  the code path of ``recon ingest``: the same dlt pipeline and working folder, the run recorded
  in ``recon_audit.ingest_runs`` with the source clock the build's ``as_of`` defaults to.
* every dbt model, seed and test: dagster-dbt assets of the project at the repository root
  (``dbt build``), with the profile of ``profiles.yml`` (``RECON_WAREHOUSE``).
* ``sync_gate`` (the GX checkpoint, ``recon validate``) and ``hubspot_company_sync``
  (``recon sync``; a dry run unless its config says ``apply: true``, as the schedule does).
* ``recon_report``: ``target/report.html`` (``recon report``).

The schedule ``recon_daily`` runs them all at ``CRON_SCHEDULE`` (UTC) with ``apply: true``.
Configuration is recon's own: ``STRIPE_API_KEY``, ``HUBSPOT_ACCESS_TOKEN``, ``RECON_WAREHOUSE``
and the rest of ``recon.config``.  The dbt manifest is parsed when missing (and by
``dagster dev``); deployments prepare it with ``dagster-dbt project prepare-and-package``.
"""

# No ``from __future__ import annotations``: dagster reads the context and config annotations.
import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets
from dagster_dlt import DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from recon.config import Settings
from recon.ingest import make_pipeline
from recon.orchestration import CRON_SCHEDULE

ROOT = Path(__file__).resolve().parents[2]
SOURCE_KINDS = {"stripe": "stripe", "hubspot": "hubspot"}


# --------------------------------------------------------------------------- ingest (dlt)


class ReconDltTranslator(DagsterDltTranslator):
    """Asset key = the dbt source's key (``[source, table]``); no upstream of its own."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        resource = data.resource
        return spec.replace_attributes(
            key=dg.AssetKey([resource.source_name, str(resource.table_name)]),
            deps=[],
            group_name="ingest",
            kinds={"dlt", "duckdb", SOURCE_KINDS[resource.source_name]},
        )


def _definition_source(source: str) -> Any:
    """The dlt source, for its list of resources only: nothing is fetched at load time.

    The credentials are whatever the environment holds (placeholders when unset); the run
    builds its own source from the settings in force then.
    """
    settings = Settings.load()
    if source == "stripe":
        from pipelines.stripe import stripe_source
        from pipelines.stripe.helpers import stripe_client
        from recon.config import STRIPE_API_VERSION

        client = stripe_client(
            settings.stripe_api_key.get() or "unset",
            settings.stripe_api_base,
            STRIPE_API_VERSION,
        )
        with contextlib.closing(client):
            return stripe_source(
                api_key=settings.stripe_api_key.get() or "unset",
                base_url=settings.stripe_api_base,
                client=client,
            )
    from pipelines.hubspot import hubspot_source
    from pipelines.hubspot.helpers import hubspot_client

    hub = hubspot_client(settings.hubspot_access_token.get() or "unset", settings.hubspot_api_base)
    with contextlib.closing(hub):
        return hubspot_source(
            access_token=settings.hubspot_access_token.get() or "unset",
            base_url=settings.hubspot_api_base,
            client=hub,
        )


def _ingest(context: AssetExecutionContext, source: str) -> Iterator[dg.MaterializeResult[Any]]:
    from recon.ingest import ingest_source

    result = ingest_source(Settings.load(), source)
    if result.status != "succeeded":
        raise dg.Failure(
            description=f"ingest {source} {result.status}: {result.error}",
            metadata={"run_id": result.run_id},
        )
    for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
        table = key.path[-1]
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "rows_loaded": result.rows_loaded.get(table, 0),
                "ingest_run_id": result.run_id,
                "source_clock": str(result.source_clock),
                "quarantined_in_run": result.quarantined,
            },
        )


@dlt_assets(
    dlt_source=_definition_source("stripe"),
    dlt_pipeline=make_pipeline(Settings.load(), "stripe"),
    name="ingest_stripe",
    dagster_dlt_translator=ReconDltTranslator(),
)
def stripe_assets(context: AssetExecutionContext) -> Iterator[dg.MaterializeResult[Any]]:
    """Stripe's events and objects into ``raw_stripe`` (``recon ingest --source stripe``)."""
    yield from _ingest(context, "stripe")


@dlt_assets(
    dlt_source=_definition_source("hubspot"),
    dlt_pipeline=make_pipeline(Settings.load(), "hubspot"),
    name="ingest_hubspot",
    dagster_dlt_translator=ReconDltTranslator(),
)
def hubspot_assets(context: AssetExecutionContext) -> Iterator[dg.MaterializeResult[Any]]:
    """HubSpot's CRM objects into ``raw_hubspot`` (``recon ingest --source hubspot``)."""
    yield from _ingest(context, "hubspot")


# --------------------------------------------------------------------------- build (dbt)

dbt_project = DbtProject(
    project_dir=ROOT,
    profiles_dir=ROOT,
    # dbt's own variable, so a deployment (or a test) can keep artifacts elsewhere.
    target_path=Path(os.environ.get("DBT_TARGET_PATH", "target")),
)
# The dbt of this environment, also when the interpreter runs without its venv on PATH.
DBT_EXECUTABLE = shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))
dbt = DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)
if os.environ.get("DAGSTER_IS_DEV_CLI") or not dbt_project.manifest_path.exists():
    # what ``dbt_project.prepare_if_dev()`` does, with this environment's dbt
    dbt.cli(["--quiet", "parse"], target_path=dbt_project.target_path).wait()


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, name="dbt_build")
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    """``dbt build``: seeds, staging, intermediate, marts and the sync model, with tests."""
    yield from dbt.cli(["build"], context=context).stream()


# --------------------------------------------------------------------------- gate, sync, report

SYNC_MODEL = dg.AssetKey(["sync_hubspot__companies"])
FINDINGS_MODEL = dg.AssetKey(["rec_findings"])


class SyncConfig(dg.Config):
    apply: bool = False  # write to HubSpot; a dry run (the plan only) otherwise
    max_changes: int | None = None  # the blast-radius limit; None: recon's default


@dg.asset(
    group_name="sync",
    deps=[SYNC_MODEL, FINDINGS_MODEL],
    kinds={"great_expectations"},
    description="The GX gate over the sync payload, the MRR marts and freshness (recon validate).",
)
def sync_gate(context: AssetExecutionContext) -> dg.MaterializeResult[Any]:
    from recon.validate import run_validation

    report = run_validation(Settings.load())
    metadata: dict[str, Any] = {
        "validation_run_id": report.run_id,
        "expectations": report.expectations,
        "sync_rows": report.sync_rows,
        "fingerprint": report.fingerprint,
    }
    if not report.success:
        raise dg.Failure(
            description="the gate failed: " + "; ".join(f.line for f in report.failures),
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name="sync",
    deps=[sync_gate],
    kinds={"hubspot"},
    description="HubSpot companies corrected from sync_hubspot__companies (recon sync).",
)
def hubspot_company_sync(
    context: AssetExecutionContext, config: SyncConfig
) -> dg.MaterializeResult[Any]:
    from recon.sync import SyncOptions, run_sync

    report = run_sync(
        Settings.load(), SyncOptions(apply=config.apply, max_changes=config.max_changes)
    )
    metadata: dict[str, Any] = {
        "sync_run_id": report.run_id,
        "status": report.status,
        "planned": report.planned,
        "verified": report.counts.verified,
        "failed": report.counts.failed,
        "mismatch": report.counts.mismatch,
    }
    if not report.ok:
        raise dg.Failure(description=f"sync {report.run_id} {report.status}", metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name="report",
    deps=[hubspot_company_sync],
    kinds={"html", "plotly"},
    description="The analysts' report, target/report.html (recon report).",
)
def recon_report(context: AssetExecutionContext) -> dg.MaterializeResult[Any]:
    from recon.report import DEFAULT_OUT, write_report

    out = Path(os.environ.get("RECON_REPORT_OUT", str(DEFAULT_OUT)))
    data = write_report(Settings.load().warehouse, out)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out.resolve())),
            "months": len(data.bridge or []),
            "findings": sum(f.n_findings for f in data.findings or []),
        }
    )


# --------------------------------------------------------------------------- job, schedule

recon_job = dg.define_asset_job(
    "recon_run",
    selection=dg.AssetSelection.all(),
    description="recon run --apply: ingest, build, gate, sync, report.",
)

recon_daily = dg.ScheduleDefinition(
    name="recon_daily",
    job=recon_job,
    cron_schedule=CRON_SCHEDULE,
    execution_timezone="UTC",
    run_config=dg.RunConfig(ops={"hubspot_company_sync": SyncConfig(apply=True)}),
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

defs = dg.Definitions(
    assets=[
        stripe_assets,
        hubspot_assets,
        dbt_models,
        sync_gate,
        hubspot_company_sync,
        recon_report,
    ],
    jobs=[recon_job],
    schedules=[recon_daily],
    resources={"dbt": dbt},
)
