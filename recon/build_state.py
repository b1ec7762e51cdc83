"""What ``recon build`` leaves out because it cannot have changed: the seeds and views built
by its last build on this warehouse, and the data tests of those seeds.

A seed's table holds its CSV and nothing else; a view holds no data, only its compiled SQL.
Building either again rewrites the same thing, and costs a dbt node every build (dbt's own
work for a node is about 0.1 s, and most of a build after a small ingest is such work). A
node is left out only when both hold:

* **its definition is the one that built it**: a fingerprint over what dbt compiles it
  from: its file, config and relation; its parents and their relations; for a view, which
  of the raw tables it reads exist (``raw_source`` reads a missing one as empty); and for
  every node, every macro, the vars, the project and profile files, the environment
  variables dbt read while parsing, and the dbt and adapter versions;
* **the warehouse still holds what that build made**: a seed's row count and the sum of
  its rows' hashes, a view's SQL as the catalog keeps it, both recorded when it was built.

A data test is left out when every node it reads was (a seed's data did not change, and the
test passed on it). Data tests of views always run: a view's data is its sources'.

The fingerprints live in the warehouse (``recon_audit.dbt_build_state``), so they go with
it when it is copied or replaced. Only the DuckDB target keeps them; ``--full-refresh``,
``--select`` and ``RECON_BUILD_SKIP_UNCHANGED=0`` build everything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_SCHEMA = "recon_audit"
STATE_TABLE = "dbt_build_state"
#: Statuses after which a node's fingerprint is kept.
KEPT_STATUSES = frozenset({"success", "pass"})


@dataclass(frozen=True)
class Candidate:
    """A node that may be left out: a seed, a view, or a data test of seeds only."""

    unique_id: str
    name: str
    kind: str  # "seed", "view" or "test"
    fingerprint: str
    schema: str | None = None
    identifier: str | None = None
    parents: tuple[str, ...] = ()  # a test's seeds


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def _value(x: Any) -> Any:
    return getattr(x, "value", x)


def _config(node: Any) -> Any:
    config = node.config
    return config.to_dict() if hasattr(config, "to_dict") else str(config)


def global_fingerprint(manifest: Any, project_dir: Path, vars: Mapping[str, Any] | None) -> str:
    """What every node's compiled form may depend on beyond its own definition."""
    from dbt.adapters.duckdb.__version__ import version as duckdb_adapter_version
    from dbt.version import __version__ as dbt_version

    macros = sorted((uid, m.macro_sql) for uid, m in manifest.macros.items())
    files = [
        hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        for path in (project_dir / "dbt_project.yml", project_dir / "profiles.yml")
    ]
    env_vars = sorted(dict(getattr(manifest, "env_vars", {}) or {}).items())
    return _digest(dbt_version, duckdb_adapter_version, macros, files, env_vars, dict(vars or {}))


def _relation(node: Any) -> tuple[str, str]:
    return str(node.schema), str(node.alias if getattr(node, "alias", None) else node.name)


def candidates(
    manifest: Any,
    common: str,
    existing_tables: set[tuple[str, str]],
) -> dict[str, Candidate]:
    """The seeds, views and data tests of seeds only, each with its fingerprint (``common``:
    :func:`global_fingerprint`); ``existing_tables``: (schema, name) in the warehouse,
    lower case."""
    out: dict[str, Candidate] = {}

    def parent_relations(node: Any) -> list[Any]:
        parents: list[tuple[Any, ...]] = []
        for uid in sorted(getattr(node.depends_on, "nodes", None) or ()):
            parent = manifest.nodes.get(uid) or manifest.sources.get(uid)
            if parent is None:
                parents.append((uid, None))
                continue
            # a raw table's existence: raw_source compiles a missing one as an empty relation
            exists = None
            if uid.startswith("source."):
                key = (str(parent.schema).lower(), str(parent.identifier).lower())
                exists = key in existing_tables
            parents.append((uid, getattr(parent, "relation_name", None), exists))
        return parents

    for uid, node in manifest.nodes.items():
        kind = _value(node.resource_type)
        if kind == "seed":
            cand_kind = "seed"
        elif kind == "model" and node.config.materialized == "view":
            cand_kind = "view"
        else:
            continue
        schema, ident = _relation(node)
        fp = _digest(
            common,
            cand_kind,
            node.checksum.checksum,
            getattr(node, "raw_code", ""),
            _config(node),
            node.relation_name,
            parent_relations(node),
        )
        out[uid] = Candidate(uid, str(node.name), cand_kind, fp, schema, ident)

    seeds = {uid for uid, c in out.items() if c.kind == "seed"}
    for uid, node in manifest.nodes.items():
        if _value(node.resource_type) != "test":
            continue
        parents = [p for p in node.depends_on.nodes if not p.startswith("macro.")]
        if not parents or not all(p in seeds for p in parents):
            continue
        metadata = getattr(node, "test_metadata", None)
        fp = _digest(
            common,
            "test",
            getattr(node, "raw_code", ""),
            metadata.to_dict() if metadata is not None else None,
            _config(node),
            sorted(parents),
            [out[p].fingerprint for p in sorted(parents)],
        )
        out[uid] = Candidate(uid, str(node.name), "test", fp, parents=tuple(sorted(parents)))
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def live_check(con: Any, cand: Candidate) -> str | None:
    """What the warehouse holds for a seed or view now (None: missing); '' for a test."""
    if cand.kind == "test":
        return ""
    assert cand.schema is not None and cand.identifier is not None
    if cand.kind == "view":
        row = con.execute(
            "select md5(sql) from duckdb_views() where database_name = current_database() "
            "and lower(schema_name) = lower(?) and lower(view_name) = lower(?)",
            [cand.schema, cand.identifier],
        ).fetchone()
        return None if row is None else str(row[0])
    row = con.execute(
        "select 1 from duckdb_tables() where database_name = current_database() "
        "and lower(schema_name) = lower(?) and lower(table_name) = lower(?)",
        [cand.schema, cand.identifier],
    ).fetchone()
    if row is None:
        return None
    count, total = con.execute(
        f"select count(*), coalesce(sum(hash(t)), 0) from "
        f"{_quote(cand.schema)}.{_quote(cand.identifier)} as t"
    ).fetchone()
    return f"{count}:{total}"


def existing_tables(con: Any) -> set[tuple[str, str]]:
    rows = con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = current_database() "
        "union all select schema_name, view_name from duckdb_views() "
        "where database_name = current_database() and not internal"
    ).fetchall()
    return {(str(s).lower(), str(t).lower()) for s, t in rows}


def _state_exists(con: Any) -> bool:
    return (
        con.execute(
            "select 1 from duckdb_tables() where database_name = current_database() "
            "and schema_name = ? and table_name = ?",
            [STATE_SCHEMA, STATE_TABLE],
        ).fetchone()
        is not None
    )


def unchanged(con: Any, cands: Mapping[str, Candidate]) -> set[str]:
    """The candidates whose fingerprint is the one recorded and whose relation holds what
    was recorded with it; a test only with all its seeds."""
    if not _state_exists(con):
        return set()
    recorded = {
        str(uid): (str(fp), None if live is None else str(live))
        for uid, fp, live in con.execute(
            f"select unique_id, fingerprint, live from {STATE_SCHEMA}.{STATE_TABLE}"
        ).fetchall()
    }
    out: set[str] = set()
    for uid, cand in cands.items():
        if cand.kind == "test":
            continue
        rec = recorded.get(uid)
        if rec is None or rec[0] != cand.fingerprint:
            continue
        live = live_check(con, cand)
        if live is not None and live == rec[1]:
            out.add(uid)
    # a test of seeds: recorded as passed under this fingerprint, and every seed unchanged
    for uid, cand in cands.items():
        if cand.kind != "test":
            continue
        rec = recorded.get(uid)
        if rec is not None and rec[0] == cand.fingerprint and all(p in out for p in cand.parents):
            out.add(uid)
    return out


def record(
    con: Any,
    cands: Mapping[str, Candidate],
    statuses: Mapping[str, str],
    skipped: Iterable[str],
) -> None:
    """After a build: keep the fingerprint of each candidate that was built (or tested) with
    success, or left out; forget the others (failed, or not run)."""
    skipped = set(skipped)
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(
        f"create table if not exists {STATE_SCHEMA}.{STATE_TABLE} ("
        "unique_id varchar primary key, fingerprint varchar not null, live varchar, "
        "recorded_at timestamp with time zone not null)"
    )
    rows = []
    for uid, cand in cands.items():
        if uid in skipped:
            continue
        if statuses.get(uid) in KEPT_STATUSES:
            rows.append((uid, cand.fingerprint, live_check(con, cand)))
    con.execute("begin")
    try:
        keep = list(skipped)
        con.execute(
            f"delete from {STATE_SCHEMA}.{STATE_TABLE} where not list_contains(?, unique_id)",
            [keep],
        )
        for uid, fp, live in rows:
            con.execute(
                f"insert into {STATE_SCHEMA}.{STATE_TABLE} values (?, ?, ?, now())",
                [uid, fp, live],
            )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
