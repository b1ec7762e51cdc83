"""Stripe list pages read without parsing what recon does not read (pipelines/common/rawjson.py),
raw JSON stored zstd-compressed, and a DuckDB warehouse opened without SQLAlchemy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from ingest_support import query, run

from pipelines.common.rawjson import RawRecord, payload_text
from pipelines.common.records import BadRecord, Quarantine, RunNotes, dumps, req_int
from pipelines.stripe.helpers import (
    EventChanges,
    decode_events_page,
    decode_objects_page,
    event_row,
    object_row,
    stripe_client,
)
from pipelines.stripe.settings import OBJECTS_BY_TYPE
from pipelines.stripe.windows import WindowedListing
from recon.config import STRIPE_API_VERSION, Settings
from recon.http import MalformedResponse, RetryPolicy

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = OBJECTS_BY_TYPE["customer"]

# objects written as no serialiser of ours would write them: spaces, key order, escapes,
# numbers in exponent form, a float that is a whole number, nested lists
CUSTOMER = (
    b'{ "object" : "customer", "id": "cus_1", "name": "Ren\\u00e9e \\"R\\"", "created": 1700000000,'
    b' "livemode": false, "balance": 1E2, "ratio": 1.0, "metadata": {"k": [1, {"x": null}]} }'
)
EVENT = (
    b'{"id":"evt_1","object":"event","type":"customer.deleted","created":1700000005,'
    b'"livemode":false,"api_version":"2024-06-20","pending_webhooks":0,'
    b'"data":{"object":' + CUSTOMER + b',"previous_attributes":{"name":"R\\u00e9"}}}'
)


def page(*objects: bytes, has_more: bool = False) -> bytes:
    more = b"true" if has_more else b"false"
    return b'{"object":"list","data":[' + b",".join(objects) + b'],"has_more":' + more + b"}"


def test_each_objects_text_is_kept_byte_for_byte() -> None:
    body = decode_objects_page(page(CUSTOMER))
    [rec] = body["data"]
    assert isinstance(rec, RawRecord)
    assert payload_text(rec) == dumps(rec) == CUSTOMER.decode()
    # only the typed fields are decoded
    assert rec == {"id": "cus_1", "object": "customer", "created": 1700000000, "livemode": False}
    row = object_row(rec, CUSTOMERS, STRIPE_API_VERSION, 0)
    assert row[:4] == ("cus_1", 1700000000, False, False) and row[5] == CUSTOMER.decode()
    assert orjson.loads(row[5]) == orjson.loads(CUSTOMER)


def test_an_events_object_is_read_with_its_own_text() -> None:
    [ev] = decode_events_page(page(EVENT))["data"]
    row = event_row(ev, 0)
    assert row[:7] == (
        "evt_1",
        "customer.deleted",
        1700000005,
        False,
        "2024-06-20",
        "cus_1",
        "customer",
    )
    assert row[7] == EVENT.decode()
    changes = EventChanges()
    changes.note(ev)
    last = changes.deleted("customers")["cus_1"]
    # a deleted object lands with the event's copy of it, as the API wrote it
    assert object_row(last.payload, CUSTOMERS, None, 0, deleted=True)[5] == CUSTOMER.decode()


def test_a_pretty_printed_page_is_stored_compact() -> None:
    pretty = orjson.dumps(orjson.loads(page(CUSTOMER)), option=orjson.OPT_INDENT_2)
    [rec] = decode_objects_page(pretty)["data"]
    # the tokens as sent, without the whitespace between them
    assert rec.raw == orjson.dumps(orjson.loads(CUSTOMER)).decode()


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (b'{"id":"evt_1","type":"x.y","created":1,"livemode":false,"data":5}', "data.object"),
        (
            b'{"id":"evt_1","type":"x.y","created":1,"livemode":false,"data":{"object":"s"}}',
            "data.object",
        ),
        (
            b'{"id":"evt_1","type":"x.y","created":1,"livemode":false,"data":{}}',
            "data.object: missing or not an object",
        ),
        (b'{"id":"evt_1","type":"x.y","created":"1","livemode":false,"data":{"object":{}}}', ""),
        (b'"not an object"', "not a JSON object"),
    ],
)
def test_an_unexpected_shape_is_read_in_full_and_quarantined_as_before(
    event: bytes, reason: str
) -> None:
    [obj] = decode_events_page(page(event))["data"]
    full = orjson.loads(event)
    assert not isinstance(obj, RawRecord) or obj.raw == event.decode()
    with pytest.raises(BadRecord) as got:
        event_row(obj, 0)
    with pytest.raises(BadRecord) as expected:
        event_row(full, 0)
    assert got.value.reason == expected.value.reason and reason in got.value.reason
    assert orjson.loads(dumps(obj)) == full  # the quarantined text is the record


def test_an_integer_outside_64_bits_is_a_bad_record_not_a_crash() -> None:
    [rec] = decode_objects_page(page(b'{"id":"cus_1","object":"customer","created":1e30}'))["data"]
    with pytest.raises(BadRecord, match="expected an integer, got number"):
        object_row(rec, CUSTOMERS, None, 0)
    big = b'{"id":"cus_1","object":"customer","created":100000000000000000000,"livemode":true}'
    [rec] = decode_objects_page(page(big))["data"]
    with pytest.raises(BadRecord, match="created: integer out of the 64-bit range"):
        object_row(rec, CUSTOMERS, None, 0)
    with pytest.raises(BadRecord, match="64-bit"):
        req_int({"n": -(2**63) - 1}, "n")
    assert req_int({"n": 2**63 - 1}, "n") == 2**63 - 1


def test_a_page_that_is_not_a_list_is_read_in_full() -> None:
    assert decode_objects_page(b'{"error":{"message":"x"}}') == {"error": {"message": "x"}}
    assert decode_objects_page(b'{"data":{"a":1}}') == {"data": {"a": 1}}


@pytest.mark.parametrize(
    "body",
    [
        page(b'{"id":"cus_1","object":"customer","x":tru}'),  # bad JSON in a skipped field
        page(b'{"id":"cus_1","object":"customer","x":"\xff"}'),  # not UTF-8, skipped field
        page(b'{"id":"cus_1"}')[:-3],  # truncated
    ],
)
def test_a_malformed_page_is_retried_then_quarantined(body: bytes) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, content=body)

    with pytest.raises(ValueError):
        decode_objects_page(body)
    client = stripe_client(
        "sk_test_x",
        "http://stripe.test",
        STRIPE_API_VERSION,
        retry=RetryPolicy(attempts=3, backoff_base_s=0.001, backoff_max_s=0.01, timeout_s=1.0),
        transport=httpx.MockTransport(handler),
        rate_limit_per_s=0,
    )
    with pytest.raises(MalformedResponse):
        client.get("/v1/customers", decode=decode_objects_page)
    assert calls == 3
    quarantine, notes = Quarantine("stripe"), RunNotes()
    listing = WindowedListing(
        client,
        "/v1/customers",
        (),
        resource="customers",
        quarantine=quarantine,
        notes=notes,
        decode=decode_objects_page,
    )
    assert list(listing.pages()) == []
    assert notes.incomplete == {"customers"}
    [row] = quarantine.rows
    assert row[4] == body.decode("utf-8", errors="replace") and "malformed page" in row[5]
    client.close()


def test_payload_text_of_a_value_holding_records_uses_their_text() -> None:
    [rec] = decode_objects_page(page(CUSTOMER))["data"]
    assert orjson.loads(payload_text({"data": [rec]})) == {"data": [orjson.loads(CUSTOMER)]}
    assert payload_text({"a": [1, "b"]}) == '{"a":[1,"b"]}'


def test_raw_json_is_stored_zstd_compressed(settings: Settings) -> None:
    run(settings, sources=("stripe",))
    wh = settings.warehouse
    for table, column in (("events", "payload"), ("customers", "payload")):
        methods = query(
            wh,
            "select distinct compression from pragma_storage_info('raw_stripe."
            f"{table}') where column_name = '{column}' and segment_type = 'VARCHAR'",
        )
        assert methods and {m for (m,) in methods} == {"ZSTD"}, (table, methods)
    sql = "select distinct compression from pragma_storage_info('raw_stripe.events') "
    assert {m for (m,) in query(wh, sql + "where column_name = 'id'")} != {"ZSTD"}


def test_a_warehouse_path_is_opened_without_sqlalchemy(tmp_path: Path) -> None:
    code = """
import sys
import dlt
from pipelines.common.destination import recon_duckdb
wh = sys.argv[1]
p = dlt.pipeline(pipeline_name="p", destination=recon_duckdb(wh), dataset_name="d",
                 pipelines_dir=sys.argv[2])
info = p.run([{"id": 1}], table_name="t")
print(info)
with p.sql_client() as c:
    assert c.execute_sql("select count(*) from d.t")[0][0] == 1
assert p.destination_client().config.credentials.database == wh
assert "sqlalchemy" not in sys.modules, "sqlalchemy imported"
"""
    _run_a_load(code, tmp_path)


def _run_a_load(code: str, tmp_path: Path, **env_vars: str | None) -> str:
    """Run ``code`` (a dlt pipeline into ``argv[1]``, dlt's folder ``argv[2]``) in a fresh
    interpreter with ``env_vars`` set (None: unset); its stdout."""
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(ROOT), "RUNTIME__LOG_LEVEL": "WARNING"}
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    for name, value in env_vars.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "w.duckdb"), str(tmp_path / "dlt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize(("knob", "expected_mib"), [(None, 954), ("300MB", 286)])
def test_a_load_runs_under_a_memory_limit(
    tmp_path: Path, knob: str | None, expected_mib: int
) -> None:
    """DuckDB's buffer pool for a load is capped (1 GB, or RECON_DUCKDB_LOAD_MEMORY_LIMIT): left
    at DuckDB's 80 % of the machine it kept every block a large load wrote (2.9 GB of RSS)."""
    code = """
import sys
import dlt
from pipelines.common.destination import recon_duckdb
p = dlt.pipeline(pipeline_name="p", destination=recon_duckdb(sys.argv[1]), dataset_name="d",
                 pipelines_dir=sys.argv[2])
p.run([{"id": 1}], table_name="t")
with p.sql_client() as c:
    [(limit, order, threads)] = c.execute_sql(
        "select current_setting('memory_limit'), current_setting('preserve_insertion_order'),"
        " current_setting('threads')"
    )
print(limit, order, threads)
"""
    out = _run_a_load(
        code,
        tmp_path,
        RECON_DUCKDB_LOAD_MEMORY_LIMIT=knob,
        RECON_DUCKDB_MEMORY_LIMIT="5GB",  # the build's knob: not the load's
    )
    limit, order, threads = out.strip().splitlines()[-1].rsplit(" ", 2)
    assert order.lower() == "false" and threads == "1"
    value, unit = limit.split()
    assert unit == "MiB" and round(float(value)) == expected_mib, limit


_ROW_GROUPS = """
import sys
import dlt
import duckdb
import pyarrow as pa
from pipelines.common.destination import recon_duckdb
p = dlt.pipeline(pipeline_name="p", destination=recon_duckdb(sys.argv[1]), dataset_name="d",
                 pipelines_dir=sys.argv[2])
n = 40_000
p.run(pa.table({"id": pa.array(range(n)), "payload": pa.array(["x" * 50] * n)}), table_name="t")
with p.sql_client() as c:
    [(catalog, spill)] = c.execute_sql(
        "select current_database(), current_setting('temp_directory')"
    )
con = duckdb.connect(sys.argv[1], read_only=True)
[(groups, rows)] = con.execute(
    "select count(distinct row_group_id), (select count(*) from d.t) "
    "from pragma_storage_info('d.t')"
).fetchall()
[(own,)] = con.execute("select current_database()").fetchall()
print(catalog == own, groups, rows, spill)
"""


@pytest.mark.parametrize(
    ("knob", "name", "groups"),
    [
        (None, "w.duckdb", 3),
        ("0", "w.duckdb", 1),
        ("8192", "w.duckdb", 5),
        (None, "memory.duckdb", 1),
    ],
)
def test_a_load_writes_row_groups_of_its_own_size(
    tmp_path: Path, knob: str | None, name: str, groups: int
) -> None:
    """A load attaches the warehouse with RECON_DUCKDB_LOAD_ROW_GROUP_SIZE rows a row group
    (16,384 by default; 0: the file opened directly, 122,880): appends of a row group or more
    are written by their own statement instead of the closing checkpoint. The session works
    in the warehouse under its own catalog name; a stem that is a reserved catalog name
    ("memory") is opened directly."""
    code = _ROW_GROUPS.replace("sys.argv[1]", f"sys.argv[1].replace('w.duckdb', {name!r})")
    out = _run_a_load(code, tmp_path, RECON_DUCKDB_LOAD_ROW_GROUP_SIZE=knob)
    same_catalog, found, rows, spill = out.strip().splitlines()[-1].split(" ", 3)
    assert same_catalog == "True" and rows == "40000"
    assert int(found) == groups
    if groups > 1:  # attached: spills beside the warehouse, not in the working directory
        assert spill == str(tmp_path / name) + ".tmp"


@pytest.mark.parametrize("value", ["many", "-1", "100"])
def test_a_bad_row_group_size_is_a_clear_error(value: str) -> None:
    from pipelines.common.destination import load_row_group_size
    from recon.errors import UsageError

    with pytest.raises(UsageError, match="RECON_DUCKDB_LOAD_ROW_GROUP_SIZE"):
        load_row_group_size({"RECON_DUCKDB_LOAD_ROW_GROUP_SIZE": value})
    assert load_row_group_size({}) == 16_384
