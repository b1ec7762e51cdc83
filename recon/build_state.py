"""What ``recon build`` leaves out because it cannot have changed since its last build on this
warehouse: every seed, model and data test whose definition and inputs are the ones it was
last built (or passed) with.

dbt builds every selected node every time; after a small ingest most of a build is dbt's own
work per node (about 0.05-0.1 s each), not SQL, and most nodes read nothing new: a Stripe
ingest leaves the HubSpot side as it was, and a second build in a row reads nothing new at
all. A node is left out only when all of these hold:

* **its definition is the one that built it**: a fingerprint over what dbt compiles it from:
  its file, config and relation; its parents and their relations; which of the raw tables it
  reads exist (``raw_source`` reads a missing one as empty); and for every node, every macro,
  the vars, the project and profile files, the environment variables dbt read while parsing,
  and the dbt and adapter versions;
* **its inputs are the ones it was built from**: the fingerprint also covers, recursively,
  each parent's: a raw table's version (its row count and the sum of its rows' hashes; see
  :func:`source_versions`), a seed's definition, a model's own inputs. A view is built
  again only when its definition changed, but its *data* is its inputs', so it counts as
  changed for its readers and tests when they did;
* **its parents were left out too** (a model or seed rebuilt for any reason rebuilds its
  readers), and nothing marks it as reading the clock (``meta: recon_volatile_if``, a
  predicate over its own rows: ``int_as_of`` measures "now" at the build's clock when no
  ingest has run);
* **the warehouse still holds what that build made**: a seed's row count and the sum of its
  rows' hashes, a view's SQL as the catalog keeps it, a table's row count, recorded when it
  was built; a data test only after it passed.

The fingerprints live in the warehouse (``recon_audit.dbt_build_state``), so they go with it
when it is copied or replaced. Every dbt run on the warehouse forgets them first (an
``on-run-start`` hook, ``recon.forget_build_state`` in ``macros/build_state.sql``): a plain ``dbt build`` with other vars, or one
stopped half way, leaves tables the state does not describe, and the next ``recon build``
builds everything; ``recon build`` writes the state again once dbt is done. Only the DuckDB
target keeps them; ``--full-refresh``, ``--select`` and ``RECON_BUILD_SKIP_UNCHANGED=0``
build everything.
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
#: The materializations a model may be left out under ("table": table or incremental).
_MODEL_KINDS = {"view": "view", "table": "table", "incremental": "table"}
#: A raw table's column stamped at every landing (recon's pipelines merge a changed record in
#: with a new one), and the JSON documents that change only with it: the version of a table
#: with that column leaves them out of its hash (they are most of its bytes).
LANDED_AT = "_recon_fetched_at"
DOCUMENT_COLUMNS = frozenset({"payload", "properties", "raw"})
#: The meta key of a model whose rows may depend on the build's clock: a SQL predicate over
#: its own rows; when a row holds it, the model is built every time.
VOLATILE_META = "recon_volatile_if"
#: The meta key of a model whose compiled SQL embeds other models' code (their checksums, read
#: from dbt's graph): a list of their names. Their code is part of its definition, so that a
#: change to any of them builds it again.
CODE_OF_META = "recon_code_of"


@dataclass(frozen=True)
class Candidate:
    """A node that may be left out: a seed, a view, a table (or incremental model), or a data
    test."""

    unique_id: str
    name: str
    kind: str  # "seed", "view", "table", "test" or "unit" (a dbt unit test)
    #: what building it again would depend on: a seed's or view's definition; a table's or a
    #: test's definition and inputs
    fingerprint: str
    #: its definition and inputs: what its rows depend on (a table's and a test's: the same)
    data_fingerprint: str = ""
    schema: str | None = None
    identifier: str | None = None
    #: the seeds and models it reads (sources are in the fingerprints)
    parents: tuple[str, ...] = ()
    volatile_if: str | None = None


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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _tables(con: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """The warehouse's tables: (schema, name) lower case -> as the catalog spells them."""
    rows = con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = current_database()"
    ).fetchall()
    return {(str(s).lower(), str(t).lower()): (str(s), str(t)) for s, t in rows}


def source_key(source: Any) -> tuple[str, str]:
    """A source's (schema, table), lower case, as :func:`existing_tables` holds them."""
    return str(source.schema).lower(), str(source.identifier).lower()


def source_versions(con: Any, manifest: Any) -> dict[str, str | None]:
    """Each source's version (None: the table does not exist): its row count and the sum of
    its rows' hashes. A raw table with ``_recon_fetched_at`` is hashed without its JSON
    documents: recon's pipelines land a changed record with a new ``_recon_fetched_at``
    (the same assumption the incremental staging models make); a row edited by hand in
    place, documents only, is not seen (``RECON_BUILD_SKIP_UNCHANGED=0`` or
    ``--full-refresh`` builds everything)."""
    columns: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in con.execute(
        "select schema_name, table_name, column_name from duckdb_columns() "
        "where database_name = current_database() order by column_index"
    ).fetchall():
        columns.setdefault((str(schema).lower(), str(table).lower()), []).append(str(column))
    tables = _tables(con)
    out: dict[str, str | None] = {}
    queries: list[str] = []
    for uid, source in sorted(manifest.sources.items()):
        key = source_key(source)
        if key not in tables or not columns.get(key):
            out[uid] = None
            continue
        cols = columns[key]
        if LANDED_AT in cols:
            cols = [c for c in cols if c not in DOCUMENT_COLUMNS]
        schema, table = tables[key]
        hashed = ", ".join(_quote(c) for c in cols)
        queries.append(
            f"select {_literal(uid)} as uid, count(*) as n, "
            f"coalesce(sum(hash({hashed})), 0) as h from {_quote(schema)}.{_quote(table)}"
        )
    if queries:
        for uid, n, h in con.execute(" union all ".join(queries)).fetchall():
            out[str(uid)] = f"{n}:{h}"
    return out


def candidates(
    manifest: Any,
    common: str,
    existing_tables: set[tuple[str, str]],
    versions: Mapping[str, str | None],
) -> dict[str, Candidate]:
    """Every seed, view, table, incremental model, data test and unit test, each with its
    fingerprints (``common``: :func:`global_fingerprint`); ``existing_tables``: (schema,
    name) in the warehouse, lower case; ``versions``: :func:`source_versions` (a source
    missing from it makes its readers candidates no record matches)."""
    out: dict[str, Candidate] = {}
    unknown = object()
    model_checksums = {
        str(node.name): node.checksum.checksum
        for node in manifest.nodes.values()
        if _value(node.resource_type) == "model"
    }

    def parents_of(node: Any) -> list[str]:
        return sorted(
            p for p in (getattr(node.depends_on, "nodes", None) or ()) if not p.startswith("macro.")
        )

    def parent_relations(node: Any) -> list[Any]:
        parents: list[tuple[Any, ...]] = []
        for uid in parents_of(node):
            parent = manifest.nodes.get(uid) or manifest.sources.get(uid)
            if parent is None:
                parents.append((uid, None))
                continue
            # a raw table's existence: raw_source compiles a missing one as an empty relation
            exists = None
            if uid.startswith("source."):
                exists = source_key(parent) in existing_tables
            parents.append((uid, getattr(parent, "relation_name", None), exists))
        return parents

    def kind_of(node: Any) -> str | None:
        kind = _value(node.resource_type)
        if kind == "seed":
            return "seed"
        if kind == "model":
            return _MODEL_KINDS.get(str(node.config.materialized))
        if kind == "test":
            return "test"
        return None

    def inputs(uid: str) -> Any:
        """What a parent contributes to a reader's data fingerprint."""
        if uid in manifest.sources:
            if uid not in versions:
                return unknown
            return versions[uid]
        cand = visit(uid)
        return unknown if cand is None or not cand.data_fingerprint else cand.data_fingerprint

    visiting: set[str] = set()

    def visit(uid: str) -> Candidate | None:
        if uid in out:
            return out[uid]
        node = manifest.nodes.get(uid)
        kind = None if node is None else kind_of(node)
        if node is None or kind is None or uid in visiting:
            return None
        visiting.add(uid)
        parents = parents_of(node)
        parent_inputs = [(p, inputs(p)) for p in parents]
        visiting.discard(uid)
        metadata = getattr(node, "test_metadata", None)
        meta = dict(getattr(node.config, "meta", None) or {})
        code_of = sorted(str(name) for name in meta.get(CODE_OF_META) or ())
        definition = _digest(
            common,
            kind,
            node.checksum.checksum,
            getattr(node, "raw_code", ""),
            metadata.to_dict() if metadata is not None else None,
            _config(node),
            getattr(node, "relation_name", None),
            parent_relations(node),
            [(name, model_checksums.get(name)) for name in code_of],
        )
        known = all(v is not unknown for _, v in parent_inputs)
        # a node whose inputs are not all known gets a data fingerprint no record can match
        data = _digest(definition, parent_inputs) if known else ""
        schema = ident = None
        if kind != "test":
            schema, ident = _relation(node)
        volatile = meta.get(VOLATILE_META)
        cand = Candidate(
            unique_id=uid,
            name=str(node.name),
            kind=kind,
            fingerprint=definition if kind in ("seed", "view") else data,
            data_fingerprint=data,
            schema=schema,
            identifier=ident,
            parents=tuple(p for p in parents if not p.startswith("source.")),
            volatile_if=str(volatile) if volatile else None,
        )
        out[uid] = cand
        return cand

    for uid in sorted(manifest.nodes):
        visit(uid)
    # a unit test: its definition and its model's; run only with its model (dbt build drops
    # the unit tests of a model left out), so a model is left out with unit tests on only
    # when each of its unit tests passed under the same fingerprint
    for uid, unit in sorted((getattr(manifest, "unit_tests", None) or {}).items()):
        tested = [p for p in (getattr(unit.depends_on, "nodes", None) or ()) if p in out]
        if len(tested) != 1 or not out[tested[0]].fingerprint:
            continue
        model = out[tested[0]]
        out[uid] = Candidate(
            unique_id=uid,
            name=str(unit.name),
            kind="unit",
            fingerprint=_digest(
                common,
                "unit",
                getattr(unit, "checksum", None),
                [g.to_dict() if hasattr(g, "to_dict") else str(g) for g in unit.given or ()],
                unit.expect.to_dict() if hasattr(unit.expect, "to_dict") else str(unit.expect),
                unit.overrides.to_dict() if getattr(unit, "overrides", None) else None,
                _config(unit),
                model.fingerprint,
            ),
            parents=(model.unique_id,),
        )
    return {uid: c for uid, c in out.items() if c.fingerprint}


def live_checks(con: Any, cands: Iterable[Candidate]) -> dict[str, str | None]:
    """What the warehouse holds for each seed, view and table now (None: missing; '' for a
    test): a view's SQL (its md5), a table's row count, a seed's row count and the sum of its
    rows' hashes. One query for the views and one for the tables."""
    cands = list(cands)
    out: dict[str, str | None] = {c.unique_id: "" for c in cands if c.kind in ("test", "unit")}
    relations = [c for c in cands if c.kind not in ("test", "unit")]
    if not relations:
        return out
    views = {
        (str(schema).lower(), str(name).lower()): str(digest)
        for schema, name, digest in con.execute(
            "select schema_name, view_name, md5(sql) from duckdb_views() "
            "where database_name = current_database() and not internal"
        ).fetchall()
    }
    tables = _tables(con)
    queries: list[str] = []
    for cand in relations:
        assert cand.schema is not None and cand.identifier is not None
        key = (cand.schema.lower(), cand.identifier.lower())
        if cand.kind == "view":
            out[cand.unique_id] = views.get(key)
            continue
        if key not in tables:
            out[cand.unique_id] = None
            continue
        schema, name = tables[key]
        # a model's table: its row count (any other dbt run makes the state forget it); a
        # seed's: its rows too (someone may edit a seed's table in place)
        live = (
            "cast(count(*) as varchar)"
            if cand.kind == "table"
            else "cast(count(*) as varchar) || ':' || cast(coalesce(sum(hash(t)), 0) as varchar)"
        )
        queries.append(
            f"select {_literal(cand.unique_id)} as uid, {live} as live "
            f"from {_quote(schema)}.{_quote(name)} as t"
        )
    if queries:
        for uid, live in con.execute(" union all ".join(queries)).fetchall():
            out[str(uid)] = None if live is None else str(live)
    return out


def _volatile(con: Any, cand: Candidate) -> bool:
    """Whether a row of the model holds its ``recon_volatile_if`` predicate."""
    if cand.volatile_if is None:
        return False
    assert cand.schema is not None and cand.identifier is not None
    try:
        row = con.execute(
            f"select count(*) from {_quote(cand.schema)}.{_quote(cand.identifier)} "
            f"where {cand.volatile_if}"
        ).fetchone()
    except Exception:  # an older table without the predicate's columns
        return True
    return bool(row and row[0])


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


def _recorded(con: Any) -> dict[str, tuple[str, str | None, str | None]]:
    """unique_id: (fingerprint, data fingerprint, live) as the last build recorded them."""
    if not _state_exists(con):
        return {}
    has_data = con.execute(
        "select 1 from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ? and column_name = 'data_fingerprint'",
        [STATE_SCHEMA, STATE_TABLE],
    ).fetchone()
    data = "data_fingerprint" if has_data else "null"
    return {
        str(uid): (str(fp), None if dfp is None else str(dfp), None if live is None else str(live))
        for uid, fp, dfp, live in con.execute(
            f"select unique_id, fingerprint, {data}, live from {STATE_SCHEMA}.{STATE_TABLE}"
        ).fetchall()
    }


def unchanged(
    con: Any,
    cands: Mapping[str, Candidate],
    live: dict[str, str | None] | None = None,
    *,
    unit_tests: bool = False,
) -> set[str]:
    """The candidates that cannot have changed (see the module's docstring). ``live``, when
    given, gets what the warehouse holds for each node checked (for :func:`record`).
    ``unit_tests``: the build runs the dbt unit tests, so a model is left out only when each
    of its unit tests passed under the same fingerprint. The unit tests of the models left
    out are in the result (dbt does not run them), but are not nodes to exclude."""
    recorded = _recorded(con)
    if not recorded:
        return set()
    left_out: set[str] = set()
    same_data: dict[str, bool] = {}
    units: dict[str, list[Candidate]] = {}
    for cand in cands.values():
        if cand.kind == "unit":
            units.setdefault(cand.parents[0], []).append(cand)

    def units_passed(uid: str) -> bool:
        if not unit_tests:
            return True
        return all(
            (rec := recorded.get(u.unique_id)) is not None and rec[0] == u.fingerprint
            for u in units.get(uid, ())
        )

    def matches(uid: str) -> bool:
        rec = recorded.get(uid)
        return rec is not None and rec[0] == cands[uid].fingerprint

    seen = {} if live is None else live
    seen.update(
        live_checks(
            con, (c for uid, c in cands.items() if c.kind not in ("test", "unit") and matches(uid))
        )
    )

    def built_as_recorded(cand: Candidate) -> bool:
        """Its fingerprint is the one recorded, the warehouse holds what was recorded with it,
        and (unit tests on) its unit tests passed."""
        uid = cand.unique_id
        return (
            matches(uid)
            and seen.get(uid) is not None
            and seen[uid] == recorded[uid][2]
            and units_passed(uid)
        )

    def data_same(uid: str) -> bool:
        """A seed's, model's or test's inputs are those of its last build (and a seed, table
        or test is left out)."""
        if uid in same_data:
            return same_data[uid]
        same_data[uid] = False  # a cycle (none in dbt) or a failure below: not the same
        cand = cands.get(uid)
        if cand is None or not matches(uid) or not all(data_same(p) for p in cand.parents):
            return False
        if cand.kind == "view":
            # left out whatever its inputs (below); its rows are the same only if they are
            same = uid in left_out and recorded[uid][1] == cand.data_fingerprint
        elif cand.kind == "test":
            same = True
        else:
            same = built_as_recorded(cand) and not _volatile(con, cand)
        if same:
            left_out.add(uid)
        same_data[uid] = same
        return same

    # a view is left out when its definition is the one built, whatever its inputs
    for cand in cands.values():
        if cand.kind == "view" and built_as_recorded(cand):
            left_out.add(cand.unique_id)
    for uid, cand in cands.items():
        if cand.kind not in ("view", "unit"):
            data_same(uid)
    # a left-out model's unit tests do not run: they keep their record if it is theirs
    for uid, cand in cands.items():
        rec = recorded.get(uid)
        if (
            cand.kind == "unit"
            and cand.parents[0] in left_out
            and rec is not None
            and rec[0] == cand.fingerprint
        ):
            left_out.add(uid)
    return left_out


def record(
    con: Any,
    cands: Mapping[str, Candidate],
    statuses: Mapping[str, str],
    skipped: Iterable[str],
    live: Mapping[str, str | None] | None = None,
) -> None:
    """After a build: keep the fingerprints of each candidate that was built (or tested) with
    success, or left out; forget the others (failed, or not run). ``live``: what
    :func:`unchanged` read for the nodes left out (the build did not touch them)."""
    skipped = set(skipped)
    live = live or {}
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(
        f"create table if not exists {STATE_SCHEMA}.{STATE_TABLE} ("
        "unique_id varchar primary key, fingerprint varchar not null, live varchar, "
        "recorded_at timestamp with time zone not null, data_fingerprint varchar)"
    )
    con.execute(
        f"alter table {STATE_SCHEMA}.{STATE_TABLE} add column if not exists data_fingerprint varchar"
    )
    kept = [
        cand
        for uid, cand in sorted(cands.items())
        if uid in skipped or statuses.get(uid) in KEPT_STATUSES
    ]
    # what unchanged() read for the nodes left out (the build did not touch them), and what
    # the warehouse holds now for the others
    values = {uid: live[uid] for uid in skipped if uid in live}
    values.update(live_checks(con, (c for c in kept if c.unique_id not in values)))
    con.execute("begin")
    try:
        # the on-run-start hook has emptied it already; a build of an older recon had not
        con.execute(f"delete from {STATE_SCHEMA}.{STATE_TABLE}")
        if kept:
            con.execute(
                f"insert into {STATE_SCHEMA}.{STATE_TABLE} "
                "(unique_id, fingerprint, live, recorded_at, data_fingerprint) "
                "select unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[]), now(), "
                "unnest(?::varchar[])",
                [
                    [c.unique_id for c in kept],
                    [c.fingerprint for c in kept],
                    [values[c.unique_id] for c in kept],
                    [c.data_fingerprint for c in kept],
                ],
            )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
