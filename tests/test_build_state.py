"""`RECON_BUILD_SKIP_UNCHANGED`: what `recon build` leaves out is tested over a real build in
tests/models/test_models_build.py (test_a_build_leaves_out_…)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recon.build import skip_unchanged_setting
from recon.cli import main
from recon.config import ConfigError


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), ("1", True), ("yes", True), ("0", False), ("false", False), (" Off ", False)],
)
def test_the_setting(value: str | None, expected: bool) -> None:
    environ = {} if value is None else {"RECON_BUILD_SKIP_UNCHANGED": value}
    assert skip_unchanged_setting(environ) is expected


def test_a_bad_setting_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="RECON_BUILD_SKIP_UNCHANGED must be 1 or 0"):
        skip_unchanged_setting({"RECON_BUILD_SKIP_UNCHANGED": "sometimes"})
    monkeypatch.setenv("RECON_BUILD_SKIP_UNCHANGED", "sometimes")
    assert main(["build", "--warehouse", str(tmp_path / "w.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "RECON_BUILD_SKIP_UNCHANGED must be 1 or 0" in err and "Traceback" not in err


def _manifest(**tables: tuple[str, str]) -> object:
    from types import SimpleNamespace

    return SimpleNamespace(
        sources={
            f"source.recon.{name}": SimpleNamespace(schema=schema, identifier=ident)
            for name, (schema, ident) in tables.items()
        }
    )


def test_a_raw_table_version_changes_with_every_landing_not_with_its_documents_alone() -> None:
    import duckdb

    from recon.build_state import source_versions

    con = duckdb.connect()
    con.execute("create schema raw_x")
    con.execute(
        "create table raw_x.objects (id varchar, payload varchar, _recon_fetched_at timestamp)"
    )
    con.execute(
        "insert into raw_x.objects values ('a', '{}', '2026-06-01'), ('b', '{}', '2026-06-01')"
    )
    con.execute("create table raw_x.runs (run_id varchar, status varchar)")
    con.execute("insert into raw_x.runs values ('r1', 'running')")
    manifest = _manifest(
        objects=("raw_x", "objects"), runs=("RAW_X", "Runs"), gone=("raw_x", "gone")
    )

    def versions() -> dict[str, str | None]:
        return {
            k.removeprefix("source.recon."): v for k, v in source_versions(con, manifest).items()
        }

    first = versions()
    assert first["gone"] is None
    assert first["objects"] is not None and first["objects"].startswith("2:")
    assert versions() == first
    # a record landed again (merged in with its new landing time), a row more or less, a
    # table without _recon_fetched_at changed anywhere: a new version
    con.execute("update raw_x.objects set payload = '{\"x\": 1}', "
                "_recon_fetched_at = '2026-06-02' where id = 'a'")  # fmt: skip
    second = versions()
    assert second["objects"] != first["objects"] and second["runs"] == first["runs"]
    con.execute("update raw_x.runs set status = 'succeeded'")
    third = versions()
    assert third["runs"] != second["runs"]
    con.execute("delete from raw_x.objects where id = 'b'")
    assert versions()["objects"] != third["objects"]
    # the documents of a row edited in place, by hand, keeping its landing time: not seen
    # (recon/build_state.py says so; RECON_BUILD_SKIP_UNCHANGED=0 builds everything)
    before = versions()["objects"]
    con.execute("update raw_x.objects set payload = '{\"y\": 2}' where id = 'a'")
    assert versions()["objects"] == before


def test_a_model_is_left_out_with_unit_tests_on_only_once_they_passed_as_they_are() -> None:
    import duckdb

    from recon.build_state import Candidate, record, unchanged

    con = duckdb.connect()
    con.execute("create table main.m as select 1 as x")
    model = Candidate("model.recon.m", "m", "table", "fp-m", "fp-m", "main", "m")
    unit = Candidate("unit_test.recon.m.u", "u", "unit", "fp-u", parents=("model.recon.m",))
    cands = {model.unique_id: model, unit.unique_id: unit}
    # built without unit tests: the model is recorded, its unit test is not
    record(con, cands, {"model.recon.m": "success"}, set())
    assert unchanged(con, cands) == {"model.recon.m"}
    assert unchanged(con, cands, unit_tests=True) == set()
    # built with them: both recorded, both left out next time (the unit test is not run)
    record(con, cands, {"model.recon.m": "success", "unit_test.recon.m.u": "pass"}, set())
    assert unchanged(con, cands, unit_tests=True) == {"model.recon.m", "unit_test.recon.m.u"}
    # a unit test that changed (its fixtures or expectation): the model is built again
    changed = {**cands, unit.unique_id: Candidate(unit.unique_id, "u", "unit", "fp-u2",
                                                  parents=unit.parents)}  # fmt: skip
    assert unchanged(con, changed, unit_tests=True) == set()
    assert unchanged(con, changed) == {"model.recon.m"}
    # a failed unit test is not recorded
    record(con, cands, {"model.recon.m": "success", "unit_test.recon.m.u": "fail"}, set())
    assert unchanged(con, cands, unit_tests=True) == set()


def test_a_model_that_embeds_other_models_code_is_built_again_when_that_code_changes() -> None:
    """int_subscription_mrr_inputs fingerprints the code of the models that read it (meta
    `recon_code_of`): editing one of them must build it again, though its own definition and
    inputs are unchanged, or its readers would keep rows computed by the old code."""
    from types import SimpleNamespace

    from recon.build_state import CODE_OF_META, candidates

    def model(name: str, checksum: str, parents: tuple[str, ...] = (), **meta: Any) -> Any:
        return SimpleNamespace(
            name=name,
            resource_type="model",
            config=SimpleNamespace(materialized="table", meta=meta),
            checksum=SimpleNamespace(checksum=checksum),
            raw_code=f"select 1 -- {name}",
            schema="main",
            alias=name,
            relation_name=f"main.{name}",
            depends_on=SimpleNamespace(nodes=list(parents)),
        )

    def fingerprints(reader_checksum: str) -> dict[str, str]:
        nodes = {
            "model.recon.inputs": model("inputs", "c-in", **{CODE_OF_META: ["reader"]}),
            "model.recon.plain": model("plain", "c-plain"),
            "model.recon.reader": model("reader", reader_checksum, ("model.recon.inputs",)),
        }
        manifest = SimpleNamespace(nodes=nodes, sources={})
        return {c.name: c.fingerprint for c in candidates(manifest, "common", set(), {}).values()}

    before, after = fingerprints("c-1"), fingerprints("c-2")
    assert after["reader"] != before["reader"]
    assert after["inputs"] != before["inputs"]  # the reader's code is part of its definition
    assert after["plain"] == before["plain"]
