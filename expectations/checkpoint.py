"""The checkpoint that gates the sync: every suite over its data, one pass or fail.

Two ways in, the same suites, one ``Checkpoint`` per run (its ``UpdateDataDocsAction``
renders the Data Docs site):

* ``run_checkpoint`` (DuckDB): GX's SQL engine does not work over duckdb-engine, so
  ``recon.validate`` reads small frames out of the warehouse and this module hands them to
  an ephemeral GX context as Parquet files in a scratch directory (GX's pandas engine).
* ``run_sql_checkpoint`` (PostgreSQL): GX's own SQL datasource (``add_postgres``) with one
  query asset per suite; GX computes every metric in the database.  The connection string
  is a ``${VARIABLE}`` GX substitutes from the environment, so no password is in its
  configuration.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd

from expectations.suites import SUITE_NAMES

DATA_DOCS_SITE = "recon_gate"

logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation of one run: what it checked and what it saw."""

    suite: str
    check: str
    title: str
    expectation_type: str
    kwargs: dict[str, Any]
    success: bool
    observed: dict[str, Any]
    error: str | None = None

    def line(self) -> str:
        """The one line a user sees when this expectation fails."""
        detail = _describe(self.observed)
        text = f"{self.suite}: {self.title} [{self.check}]"
        if self.error:
            return f"{text}: could not be evaluated: {self.error}"
        return f"{text}: {detail}" if detail else text


@dataclass(frozen=True)
class CheckpointResult:
    success: bool
    outcomes: list[ExpectationOutcome]
    data_docs_index: Path | None

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


def _describe(observed: Mapping[str, Any]) -> str:
    parts: list[str] = []
    count = observed.get("unexpected_count")
    total = observed.get("element_count")
    if count:
        parts.append(f"{count} of {total} rows unexpected")
    sample = observed.get("partial_unexpected_list")
    if sample:
        shown = ", ".join(_short(v) for v in list(sample)[:5])
        parts.append(f"e.g. {shown}")
    if not parts and "observed_value" in observed:
        parts.append(f"observed {_short(observed['observed_value'])}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = str(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> Any:
    """GX results hold numpy scalars and tuples; make them JSON for the audit table."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            return _jsonable(value.item())
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _context(docs_dir: Path | None) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name=DATA_DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def run_checkpoint(
    suites: Mapping[str, Any],
    frames: Mapping[str, pd.DataFrame],
    *,
    run_name: str,
    docs_dir: Path | None = None,
) -> CheckpointResult:
    """Validate each frame against the suite of the same name in one GX checkpoint."""
    missing = [n for n in SUITE_NAMES if n not in suites or n not in frames]
    if missing:
        raise ValueError(f"no suite or frame for {', '.join(missing)}")
    context = _context(docs_dir)
    source = context.data_sources.add_pandas("recon_warehouse")
    with tempfile.TemporaryDirectory(prefix="recon-gate-") as scratch:
        batches = {}
        for name in SUITE_NAMES:
            path = Path(scratch) / f"{name}.parquet"
            frames[name].to_parquet(path, index=False)
            asset = source.add_parquet_asset(name, path=path)
            batches[name] = asset.add_batch_definition_whole_dataframe(f"{name}_whole")
        return _run(context, suites, batches, run_name=run_name, docs_dir=docs_dir)


def run_sql_checkpoint(
    suites: Mapping[str, Any],
    queries: Mapping[str, str],
    *,
    connection_string: str,
    engine_kwargs: Mapping[str, Any] | None = None,
    run_name: str,
    docs_dir: Path | None = None,
) -> CheckpointResult:
    """Validate the rows of each query against the suite of the same name, in PostgreSQL.

    ``connection_string`` should be a ``${VARIABLE}`` reference (GX substitutes it from the
    environment) so that the password stays out of GX's configuration; ``engine_kwargs``
    go to SQLAlchemy's ``create_engine``.
    """
    missing = [n for n in SUITE_NAMES if n not in suites or n not in queries]
    if missing:
        raise ValueError(f"no suite or query for {', '.join(missing)}")
    context = _context(docs_dir)
    source = context.data_sources.add_postgres(
        "recon_warehouse",
        connection_string=connection_string,
        kwargs=dict(engine_kwargs or {}),
    )
    batches = {}
    for name in SUITE_NAMES:
        # a query asset must start with SELECT: CTEs go in a derived table
        query = f"select * from (\n{queries[name].strip()}\n) as {name}"
        asset = source.add_query_asset(name, query=query)
        batches[name] = asset.add_batch_definition_whole_table(f"{name}_whole")
    return _run(context, suites, batches, run_name=run_name, docs_dir=docs_dir)


def _run(
    context: Any,
    suites: Mapping[str, Any],
    batches: Mapping[str, Any],
    *,
    run_name: str,
    docs_dir: Path | None,
) -> CheckpointResult:
    """One checkpoint over every suite's batch; the outcome of each expectation."""
    actions: list[Any] = []
    if docs_dir is not None:
        actions.append(
            gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE])
        )
    definitions = []
    for name in SUITE_NAMES:
        suite = context.suites.add(suites[name])
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(name=f"gate_{name}", data=batches[name], suite=suite)
            )
        )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="recon_gate",
            validation_definitions=definitions,
            actions=actions,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10},
        )
    )
    result = checkpoint.run(run_id=gx.RunIdentifier(run_name=run_name))
    outcomes: list[ExpectationOutcome] = []
    for validation in result.run_results.values():
        suite_name = str(validation.suite_name)
        for er in validation.results:
            config = er.expectation_config
            meta = dict(config.meta or {})
            kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
            error = None
            info = er.exception_info or {}
            if info.get("raised_exception"):
                error = str(info.get("exception_message") or "exception").splitlines()[0]
            outcomes.append(
                ExpectationOutcome(
                    suite=suite_name,
                    check=str(meta.get("check", config.type)),
                    title=str(meta.get("title", config.type)),
                    expectation_type=str(config.type),
                    kwargs=_jsonable(kwargs),
                    success=bool(er.success),
                    observed=_jsonable(dict(er.result or {})),
                    error=error,
                )
            )
    index = None
    if docs_dir is not None and (docs_dir / "index.html").exists():
        index = docs_dir / "index.html"
    return CheckpointResult(success=bool(result.success), outcomes=outcomes, data_docs_index=index)


def outcome_json(outcome: ExpectationOutcome) -> str:
    return json.dumps(outcome.observed, sort_keys=True, default=str)
