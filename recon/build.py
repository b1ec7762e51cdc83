"""Build the models: ``dbt build`` (seeds, models, data tests, unit tests) over the warehouse.

A thin layer over dbt's programmatic runner (``dbtRunner``): it points the repository's dbt
project and profile at the warehouse, runs ``dbt build`` in-process, and returns one outcome
per node, so that the CLI (``recon build``) can show a clear summary and the right exit code:
1 when a model, test or unit test fails, 2 when dbt cannot run at all (configuration,
compilation, connection).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from recon.config import ConfigError, Settings
from recon.errors import CheckFailed

TARGETS = ("duckdb", "postgres")
#: The statuses of a node that mean the build failed.
FAILED_STATUSES = frozenset({"error", "fail", "runtime error", "partial success"})


def project_dir() -> Path:
    """The dbt project: RECON_DBT_PROJECT_DIR, else the repository this package lives in."""
    configured = os.environ.get("RECON_DBT_PROJECT_DIR")
    root = Path(configured) if configured else Path(__file__).resolve().parent.parent
    if not (root / "dbt_project.yml").is_file():
        raise ConfigError(
            f"no dbt project at {root}: run recon from its repository checkout "
            "or set RECON_DBT_PROJECT_DIR"
        )
    return root


@dataclass(frozen=True)
class NodeOutcome:
    """What became of one node (model, seed, data test, unit test, exposure)."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str
    seconds: float
    failures: int | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def line(self) -> str:
        """One line for the terminal: status, kind, name and the first line of the message."""
        detail = (self.message or "").strip().splitlines()
        first = next((d.strip() for d in detail if d.strip()), "")
        if self.failures:
            first = f"{self.failures} failing row(s)" + (f": {first}" if first else "")
        return f"{self.status.upper()} {self.resource_type} {self.name}" + (
            f": {first}" if first else ""
        )


@dataclass
class BuildResult:
    """The outcome of one ``dbt build``."""

    target: str
    success: bool
    seconds: float
    outcomes: list[NodeOutcome] = field(default_factory=list)
    error: str | None = None  # dbt could not run (configuration, compilation, connection)
    #: seeds, models and data tests left out: their definitions and inputs are those of this
    #: warehouse's last build (:mod:`recon.build_state`)
    unchanged: list[str] = field(default_factory=list)
    #: raw tables (schema.table) that a model of this build read as empty: not landed yet
    missing_raw: list[str] = field(default_factory=list)
    #: where the time went, in seconds: ``parse`` (dbt parse, to fingerprint the nodes) and
    #: ``state`` (reading and writing the fingerprints), when the build state is used; ``dbt``
    #: (the dbt build); ``nodes`` (from the first node's start to the last one's end, part of
    #: ``dbt``: the rest of it is dbt's own start-up and teardown). Their sum is at most
    #: ``seconds``, which also counts closing the warehouse.
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[NodeOutcome]:
        return [o for o in self.outcomes if o.failed]

    def counts(self) -> dict[str, dict[str, int]]:
        """Outcomes per resource type and status, e.g. ``{"model": {"success": 30}}``."""
        out: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            per_type = out.setdefault(o.resource_type, {})
            per_type[o.status] = per_type.get(o.status, 0) + 1
        return out


class BuildFailed(CheckFailed):
    """A model, data test or unit test failed (exit 1)."""


class BuildConfigError(ConfigError):
    """dbt could not run the build at all (exit 2)."""


def postgres_env_from_dsn(dsn: str) -> dict[str, str]:
    """The profile's postgres variables from ``postgresql://user:password@host:port/db``."""
    parsed = urlparse(dsn)
    if parsed.scheme not in ("postgres", "postgresql") or not parsed.hostname:
        raise ConfigError(
            "RECON_POSTGRES_DSN must look like postgresql://user:password@host:port/db"
        )
    env = {
        "RECON_PG_HOST": parsed.hostname,
        "RECON_PG_PORT": str(parsed.port or 5432),
        "RECON_PG_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
    }
    if parsed.username:
        env["RECON_PG_USER"] = unquote(parsed.username)
    if parsed.password:
        env["DBT_ENV_SECRET_RECON_PG_PASSWORD"] = unquote(parsed.password)
    return env


def build_env(settings: Settings, target: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment variables the profile (profiles.yml) reads for this build."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    env = {"RECON_DBT_TARGET": target}
    if target == "duckdb":
        env["RECON_WAREHOUSE"] = str(settings.warehouse.expanduser().resolve())
    else:
        dsn = environ.get("RECON_POSTGRES_DSN", "")
        if dsn:
            env.update(postgres_env_from_dsn(dsn))
        elif not environ.get("RECON_PG_HOST"):
            raise ConfigError(
                "no PostgreSQL connection: set RECON_POSTGRES_DSN "
                "(postgresql://user:password@host:port/db)"
            )
        # JIT off for every session dbt opens (libpq reads PGOPTIONS): the models' pre-hook
        # does it for models, but dbt opens a new session per node and unit tests have no
        # hooks; JIT compiles the IDNA model's unit test for a minute, for a query of 0.2 s.
        options = environ.get("PGOPTIONS", "")
        env["PGOPTIONS"] = f"{options} -c jit=off".strip()
    return env


def dbt_args(
    *,
    target: str,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    vars: Mapping[str, Any] | None = None,
    full_refresh: bool = False,
    threads: int | None = None,
    quiet: bool = True,
    project: Path | None = None,
    target_path: Path | None = None,
    log_path: Path | None = None,
    indirect_selection: str | None = None,
    command: str = "build",
) -> list[str]:
    """The ``dbt build`` command line (without the ``dbt``); ``command="parse"``: the
    ``dbt parse`` of the same build (no selection)."""
    root = project or project_dir()
    args = [
        command,
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(root),
        "--target",
        target,
    ]
    if quiet:
        args.append("--quiet")
    if command == "parse":
        # the build writes manifest.json; the parse only needs to hand its manifest over
        args.append("--no-write-json")
        select, exclude, full_refresh, indirect_selection = (), (), False, None
        threads = None
    for s in select:
        args += ["--select", s]
    for e in exclude:
        args += ["--exclude", e]
    if vars:
        args += ["--vars", json.dumps(dict(vars), sort_keys=True)]
    if full_refresh:
        args.append("--full-refresh")
    if threads:
        args += ["--threads", str(threads)]
    if indirect_selection is not None:
        args += ["--indirect-selection", indirect_selection]
    if target_path is not None:
        args += ["--target-path", str(target_path)]
    if log_path is not None:
        args += ["--log-path", str(log_path)]
    return args


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """These environment variables set inside the block, as they were after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _timed(phases: dict[str, float], phase: str) -> Iterator[None]:
    """Adds the block's seconds to ``phases[phase]``."""
    started = time.monotonic()
    try:
        yield
    finally:
        phases[phase] = phases.get(phase, 0.0) + time.monotonic() - started


def _outcome(result: Any) -> NodeOutcome:
    node = result.node
    status = str(getattr(result.status, "value", result.status))
    return NodeOutcome(
        unique_id=str(node.unique_id),
        name=str(node.name),
        resource_type=str(getattr(node.resource_type, "value", node.resource_type)),
        status=status,
        message=str(result.message or ""),
        seconds=float(result.execution_time or 0.0),
        failures=getattr(result, "failures", None) or None,
    )


def _nodes_window(results: Sequence[Any]) -> float | None:
    """Seconds from the first node's start to the last node's end (dbt's timing records)."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for r in results:
        for timing in getattr(r, "timing", None) or ():
            if getattr(timing, "started_at", None) and getattr(timing, "completed_at", None):
                starts.append(timing.started_at)
                ends.append(timing.completed_at)
    if not starts:
        return None
    return (max(ends) - min(starts)).total_seconds()


def release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run, so that
    the warehouse file can be opened again (read-only, or by another process)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a dependency
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            close = getattr(env, "close", None)
            if callable(close):
                close()


#: Called with (event name, node name, resource type, status) as nodes start and finish.
NodeCallback = Callable[[str, str, str, str], None]


def _event_callback(on_node: NodeCallback) -> Callable[[Any], None]:
    def callback(event: Any) -> None:
        name = event.info.name
        if name not in ("NodeStart", "NodeFinished"):
            return
        info = event.data.node_info
        on_node(name, info.node_name, info.resource_type, info.node_status)

    return callback


_MISSING_RAW = re.compile(r"^recon: raw table (\S+) does not exist yet")


def _missing_raw_callback(found: set[str]) -> Callable[[Any], None]:
    """Collects the raw tables ``raw_source`` reads as empty (its log line)."""

    def callback(event: Any) -> None:
        if event.info.name != "JinjaLogInfo":
            return
        match = _MISSING_RAW.match(getattr(event.data, "msg", "") or "")
        if match:
            found.add(match.group(1))

    return callback


def skip_unchanged_setting(environ: Mapping[str, str]) -> bool:
    """``RECON_BUILD_SKIP_UNCHANGED``: 1 (the default) or 0."""
    value = environ.get("RECON_BUILD_SKIP_UNCHANGED", "1").strip().lower()
    if value in ("1", "true", "yes", "on", ""):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"RECON_BUILD_SKIP_UNCHANGED must be 1 or 0, not {value!r}")


def build(
    settings: Settings,
    *,
    target: str = "duckdb",
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    vars: Mapping[str, Any] | None = None,
    full_refresh: bool = False,
    threads: int | None = None,
    quiet: bool = True,
    on_node: NodeCallback | None = None,
    environ: Mapping[str, str] | None = None,
    target_path: Path | None = None,
    log_path: Path | None = None,
    indirect_selection: str | None = None,
    unit_tests: bool = True,
    skip_unchanged: bool | None = None,
) -> BuildResult:
    """Run ``dbt build`` on the warehouse of ``settings`` (or the postgres target).

    ``target_path`` and ``log_path`` (default: target/ and logs/ in the project) let builds
    of different warehouses run side by side; ``indirect_selection`` is dbt's (``cautious``:
    only the tests whose parents are all selected). ``unit_tests=False`` leaves the dbt unit
    tests out: they check the SQL, not the data, and cost about half of a small build, so a
    scheduled run after a small ingest may skip them (CI and ``recon build`` run them).

    ``skip_unchanged`` (default: on unless ``RECON_BUILD_SKIP_UNCHANGED=0``) leaves out the
    seeds, models and data tests whose definition and inputs are those of this warehouse's
    last build (:mod:`recon.build_state`); on DuckDB, without ``select`` and
    ``full_refresh``. They are listed in :attr:`BuildResult.unchanged`.
    """
    from dbt.cli.main import dbtRunner

    environ = os.environ if environ is None else environ
    env = build_env(settings, target, environ)
    if skip_unchanged is None:
        skip_unchanged = skip_unchanged_setting(environ)
    # the state is read and kept by the builds of everything (a full refresh keeps it only)
    use_state = target == "duckdb" and skip_unchanged and not select and indirect_selection is None
    if not unit_tests:
        exclude = [*exclude, "test_type:unit"]
    common: dict[str, Any] = dict(
        target=target,
        vars=vars,
        quiet=quiet,
        target_path=target_path,
        log_path=log_path,
    )
    missing_raw: set[str] = set()
    callbacks = [_missing_raw_callback(missing_raw)]
    if on_node is not None:
        callbacks.append(_event_callback(on_node))
    started = time.monotonic()
    if target == "duckdb":
        busy = _warehouse_busy(settings.warehouse)
        if busy is not None:
            # one line, before dbt (which would print its traceback first)
            return BuildResult(target=target, success=False, seconds=0.0, error=busy)
    manifest: Any = None
    cands: dict[str, Any] = {}
    skipped: set[str] = set()
    live: dict[str, str | None] = {}
    phases: dict[str, float] = {}
    with environment(env):
        try:
            if use_state:
                with _timed(phases, "parse"):
                    parsed = dbtRunner().invoke(dbt_args(command="parse", **common))
                if parsed.success and parsed.result is not None:
                    manifest = parsed.result
                    with _timed(phases, "state"):
                        cands, skipped, missing = _unchanged_nodes(
                            settings.warehouse,
                            manifest,
                            vars,
                            full_refresh=full_refresh,
                            live=live,
                            unit_tests=unit_tests,
                        )
                    # the left-out views do not compile: their missing raw tables are named here
                    missing_raw.update(missing)
                    # (the unit tests of a model left out are not run: dbt drops them itself)
                    exclude = [
                        *exclude,
                        *sorted(cands[uid].name for uid in skipped if cands[uid].kind != "unit"),
                    ]
            args = dbt_args(
                select=select,
                exclude=exclude,
                full_refresh=full_refresh,
                threads=threads,
                # exactly the nodes left out (the tests of views, and of seeds and models, run)
                indirect_selection="empty" if skipped else indirect_selection,
                **common,
            )
            with _timed(phases, "dbt"):
                res = dbtRunner(manifest=manifest, callbacks=callbacks).invoke(args)
        finally:
            if target == "duckdb":
                release_duckdb()
    results = getattr(res.result, "results", None) or []
    window = _nodes_window(results)
    if window is not None:
        phases["nodes"] = window
    outcomes = [_outcome(r) for r in results]
    if manifest is not None:
        with _timed(phases, "state"):
            _record_state(settings.warehouse, cands, outcomes, skipped, live)
    seconds = time.monotonic() - started
    error = None
    if res.exception is not None:
        error = " ".join(str(res.exception).split())
    elif not res.success and not any(o.failed for o in outcomes):
        error = "dbt build did not succeed (see logs/dbt.log)"
    elif not outcomes and (select or exclude):
        error = "the selection matched no node (check --select / --exclude)"
    return BuildResult(
        target=target,
        success=bool(res.success) and error is None,
        seconds=seconds,
        outcomes=outcomes,
        error=error,
        unchanged=sorted(cands[uid].name for uid in skipped),
        missing_raw=sorted(missing_raw),
        phases={k: round(v, 3) for k, v in phases.items()},
    )


def _warehouse_busy(warehouse: Path) -> str | None:
    """Why the DuckDB warehouse cannot be opened for writing (another process holds it), or
    None."""
    import duckdb

    path = warehouse.expanduser().resolve()
    if not path.exists():
        return None
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as exc:
        return f"the warehouse {path} is in use by another process ({' '.join(str(exc).split())})"
    except duckdb.Error:
        return None  # e.g. open in this process under another configuration: dbt will say
    return None


def _unchanged_nodes(
    warehouse: Path,
    manifest: Any,
    vars: Mapping[str, Any] | None,
    *,
    full_refresh: bool,
    live: dict[str, str | None] | None = None,
    unit_tests: bool = False,
) -> tuple[dict[str, Any], set[str], set[str]]:
    """The candidates of :mod:`recon.build_state`, those that cannot have changed (none
    on a full refresh), and the raw tables (schema.table) those read that do not exist."""
    import duckdb

    from recon import build_state

    path = warehouse.expanduser().resolve()
    common = build_state.global_fingerprint(manifest, project_dir(), vars)
    if not path.exists():
        # no raw table exists yet, so every source reads as missing
        nothing = {uid: None for uid in manifest.sources}
        return build_state.candidates(manifest, common, set(), nothing), set(), set()
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error:
        # taken since _warehouse_busy looked: build everything, and let dbt say why
        return {}, set(), set()
    try:
        existing = build_state.existing_tables(con)
        versions = build_state.source_versions(con, manifest)
        cands = build_state.candidates(manifest, common, existing, versions)
        skipped = (
            set()
            if full_refresh
            else build_state.unchanged(con, cands, live, unit_tests=unit_tests)
        )
    finally:
        con.close()
    missing = set()
    for uid in skipped:
        node = manifest.nodes.get(uid)
        if node is None:  # a unit test
            continue
        for parent in getattr(node.depends_on, "nodes", None) or ():  # seeds: none
            source = manifest.sources.get(parent)
            if source is not None and build_state.source_key(source) not in existing:
                missing.add(f"{source.schema}.{source.identifier}")
    return cands, skipped, missing


def _record_state(
    warehouse: Path,
    cands: Mapping[str, Any],
    outcomes: Sequence[NodeOutcome],
    skipped: set[str],
    live: Mapping[str, str | None],
) -> None:
    import duckdb

    from recon import build_state

    path = warehouse.expanduser().resolve()
    if not path.exists():
        return
    statuses = {o.unique_id: o.status for o in outcomes}
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error:
        # the state stays as it was: it can only make the next build leave out less (a
        # fingerprint that no longer matches), never a node that changed
        return
    try:
        build_state.record(con, cands, statuses, skipped, live)
    finally:
        con.close()


def raise_for_result(result: BuildResult) -> None:
    """Exit codes of ``recon build``: 2 when dbt could not run, 1 when a node failed."""
    if result.error is not None:
        raise BuildConfigError(f"dbt build could not run: {result.error}")
    failed = result.failed
    if failed:
        raise BuildFailed(
            f"dbt build failed: {len(failed)} of {len(result.outcomes)} nodes "
            f"({', '.join(sorted({o.resource_type for o in failed}))}); see the lines above"
        )
