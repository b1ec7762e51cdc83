"""Benchmark results: the ratios that matter, the targets of issue 6, JSON and a markdown table.

``result_dict(run)`` is what ``bench/results/<date>-<size>.json`` holds; ``markdown(result)``
the table beside it.  Ratios (each ``None`` when its stages did not run or failed):

* ``cpu_ingest``: objects/s per source in the CPU-bound regime ÷ 10,000;
* ``latency_ingest``: objects/s ÷ the ceiling the rate limits allow for the objects the run
  fetched (``ceiling.py``: every endpoint at its largest page, search under its own limit);
* ``sync``: the share of HubSpot's 10-second window used while the sync had work left, and
  the 429s it met;
* ``incremental``: per regime, (ingest + build after 1 % new events) ÷ (the first ingest +
  build), the rerun straight after the first build (the HubSpot re-read after a sync is
  reported apart).  The latency regime times only the ingests (beside the cpu regime): its
  ratio takes the cpu regime's ``build`` and ``incremental.build`` (the build does not
  depend on the regime), its own when it ran them (``--regime latency``);
* ``scaling``: each stage's time ÷ its time at the next smaller size (10x the data from S to
  M, 5x from M to L), from the latest result of that size on the same machine.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import orjson

from recon.bench.ceiling import ceiling as workload_ceiling
from recon.bench.harness import (
    HUBSPOT_INGEST_STAGES,
    HUBSPOT_SYNC_STAGES,
    REGIMES,
    SIZE_ORDER,
    SIZES,
    SOURCES,
    BenchRun,
    HubspotLimits,
)

# 2: HubSpot's limits per stage in "regimes" (the ingest's, the sync's), "incremental" per
# regime
SCHEMA_VERSION = 2
TIMED = ("ok", "check_failed")  # the stage did its work: its time counts
CPU_OBJECTS_PER_S_UNIT = 10_000.0

TARGETS = {
    "cpu_ingest": 2.0,  # ≥ 20,000 objects/s
    "latency_ingest": 0.8,  # ≥ 80 % of the ceiling
    "sync_window": 0.9,  # ≥ 90 % of the window while work remains
    "sync_429": 0,  # none
    "incremental": 0.15,  # ≤ 15 % of a full run
    "peak_rss_mb": 2048.0,  # under 2 GB at L
}


# --------------------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"
    memory_gb: float | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count() or 1,
        "cpu_model": model,
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# --------------------------------------------------------------------------- ratios


def _round(x: float | None, n: int = 3) -> float | None:
    return None if x is None else round(x, n)


def _stage(result: dict[str, Any], key: str) -> dict[str, Any] | None:
    for s in result["stages"]:
        if s["key"] == key and s["status"] in TIMED:
            found: dict[str, Any] = s
            return found
    return None


def _ingest_ratio(s: dict[str, Any] | None, ceiling: float) -> dict[str, Any] | None:
    if s is None or not s["seconds"] or ceiling <= 0:
        return None
    per_s = s["items"] / s["seconds"]
    return {
        "objects": s["items"],
        "seconds": s["seconds"],
        "objects_per_s": round(per_s, 1),
        "ceiling": ceiling,
        "ratio": round(per_s / ceiling, 3),
    }


def incremental(result: dict[str, Any], regime: str) -> dict[str, Any] | None:
    """(incremental ingests + ``incremental.build``) ÷ (full ingests + ``build``) of a
    regime: its ingests, and its builds when it ran them, else the cpu regime's (the build
    reads the warehouse, not the APIs: its time does not depend on the regime).  None when a
    stage is missing or failed."""
    ran_build = any(
        s["name"] in ("build", "incremental.build") and s["regime"] == regime
        for s in result["stages"]
    )
    build_from = regime if ran_build else "cpu"
    full = [_stage(result, f"{regime}:ingest.{s}") for s in SOURCES]
    inc = [_stage(result, f"{regime}:incremental.ingest.{s}") for s in SOURCES]
    build = _stage(result, f"{build_from}:build")
    inc_build = _stage(result, f"{build_from}:incremental.build")
    if not (all(full) and all(inc) and build and inc_build):
        return None
    full_ingest_s = sum(s["seconds"] for s in full if s)
    inc_ingest_s = sum(s["seconds"] for s in inc if s)
    full_s = full_ingest_s + build["seconds"]
    inc_s = inc_ingest_s + inc_build["seconds"]
    return {
        "full_seconds": round(full_s, 3),
        "incremental_seconds": round(inc_s, 3),
        "ratio": round(inc_s / full_s, 3) if full_s else None,
        "full_ingest_seconds": round(full_ingest_s, 3),
        "full_build_seconds": round(build["seconds"], 3),
        "incremental_ingest_seconds": round(inc_ingest_s, 3),
        "incremental_build_seconds": round(inc_build["seconds"], 3),
        "build_from": build_from,
        "new_events": (_stage(result, f"{regime}:incremental.advance") or {}).get("items"),
        "incremental_build_split": _build_split(inc_build),
    }


def _build_split(stage: dict[str, Any]) -> dict[str, Any] | None:
    """Where a build's time went (``recon.build.BuildResult.phases``): dbt's parse, the
    nodes' run, and the rest of ``recon.build.build`` (dbt's start-up and teardown, the build
    state, closing the warehouse); with the number of nodes run and left out.  None for
    results recorded before the phases were."""
    detail = stage.get("detail") or {}
    phases = detail.get("phases") or {}
    if "nodes" not in phases:
        return None
    parse = float(phases.get("parse", 0.0))
    nodes = float(phases["nodes"])
    return {
        "parse_seconds": round(parse, 3),
        "nodes_seconds": round(nodes, 3),
        # the build's own time: the stage's also counts the raw rows before it
        "rest_seconds": round(max(float(detail["dbt_seconds"]) - parse - nodes, 0.0), 3),
        "nodes_run": detail.get("nodes"),
        "nodes_left_out": detail.get("nodes_left_out"),
    }


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cpu: dict[str, Any] = {}
    for source in SOURCES:
        cpu[source] = _ingest_ratio(_stage(result, f"cpu:ingest.{source}"), CPU_OBJECTS_PER_S_UNIT)
    both = [_stage(result, f"cpu:ingest.{s}") for s in SOURCES]
    if all(both):
        items = sum(s["items"] for s in both if s)
        secs = sum(s["seconds"] for s in both if s)
        cpu["all"] = _ingest_ratio(
            {"items": items, "seconds": secs, "status": "ok"}, CPU_OBJECTS_PER_S_UNIT
        )
    else:
        cpu["all"] = None
    out["cpu_ingest"] = cpu

    lat = REGIMES["latency"]
    regime = (result.get("regimes") or {}).get("latency") or {
        "stripe_rate_limit_per_s": lat.stripe_rate_limit_per_s,
        "hubspot_rate_limit_per_10s": lat.hubspot_ingest.per_10s,
        "hubspot_search_rate_limit_per_s": lat.hubspot_ingest.search_per_s,
    }
    flat = {
        "stripe": lat.stripe_ceiling_objects_per_s,
        "hubspot": lat.hubspot_ceiling_objects_per_s,
    }
    latency: dict[str, Any] = {}
    for source in SOURCES:
        stage = _stage(result, f"latency:ingest.{source}")
        fetched = ((stage or {}).get("detail") or {}).get("objects_fetched") or {}
        limit = workload_ceiling(source, fetched, regime) if fetched else None
        # results written before the workload ceiling: the flat one (requests/s x 100)
        got = _ingest_ratio(stage, limit.objects_per_s if limit else flat[source])
        if got is not None:
            got["ceiling"] = round(got["ceiling"], 1)
            got["ceiling_how"] = limit.how if limit else "requests/s x 100 objects"
            got["flat_ceiling"] = flat[source]
            got["flat_ratio"] = round(got["objects_per_s"] / flat[source], 3)
        latency[source] = got
    out["latency_ingest"] = latency

    apply = _stage(result, "cpu:sync.apply") or _stage(result, "latency:sync.apply")
    if apply is not None:
        window = apply["detail"].get("window") or {}
        out["sync"] = {
            "changes": apply["items"],
            "requests": window.get("requests"),
            "seconds": window.get("seconds"),
            "full_windows": window.get("full_windows"),
            "windows": window.get("windows"),
            "limit": window.get("limit"),
            "window_share_while_work_remains": window.get("share_while_work_remains"),
            "rate_share": window.get("rate_share"),
            "hubspot_latency_ms": apply["detail"].get("hubspot_latency_ms"),
            "rate_limited_429": apply["detail"].get("hubspot_429"),
        }
    else:
        out["sync"] = None

    out["incremental"] = {name: incremental(result, name) for name in REGIMES}
    after = _stage(result, "cpu:after_sync.ingest.hubspot") or _stage(
        result, "latency:after_sync.ingest.hubspot"
    )
    out["after_sync"] = (
        None if after is None else {"objects": after["items"], "seconds": after["seconds"]}
    )
    return out


# --------------------------------------------------------------------------- scaling


def previous_result(
    out_dir: Path, size: str, machine_info: dict[str, Any], *, retention: str = ""
) -> tuple[Path, dict[str, Any]] | None:
    """The latest result of the next smaller size in ``out_dir`` on the same machine (with
    ``retention`` ``-retention<N>``: of a run with that events retention)."""
    i = SIZE_ORDER.index(size)
    if i == 0:
        return None
    smaller = SIZE_ORDER[i - 1]
    for path in sorted(out_dir.glob(f"*-{smaller}{retention}.json"), reverse=True):
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        m = data.get("machine") or {}
        if (m.get("cores"), m.get("cpu_model")) == (
            machine_info["cores"],
            machine_info["cpu_model"],
        ):
            return path, data
    return None


def scaling(result: dict[str, Any], previous: tuple[Path, dict[str, Any]] | None) -> Any:
    if previous is None:
        return None
    path, prev = previous
    data_ratio = result["customers"] / prev["customers"]
    before = {s["key"]: s for s in prev["stages"] if s["status"] in TIMED}
    stages: dict[str, float] = {}
    hubspot_requests: dict[str, float] = {}
    for s in result["stages"]:
        p = before.get(s["key"])
        if s["status"] not in TIMED or p is None or not p["seconds"]:
            continue
        if s["name"] in ("generate", "incremental.advance"):
            continue  # the harness's own work (world generation, mutation), not recon's
        stages[s["key"]] = round(s["seconds"] / p["seconds"], 2)
        # a stage paced by HubSpot's window (190 requests, then wait for the window to
        # roll) takes a time set by how many windows its requests need: a step, not a
        # line; the requests it made are the work that should scale
        now_n = (s.get("detail") or {}).get("hubspot_requests")
        then_n = (p.get("detail") or {}).get("hubspot_requests")
        if now_n and then_n:
            hubspot_requests[s["key"]] = round(now_n / then_n, 2)
    worst = max(stages.items(), key=lambda kv: kv[1]) if stages else None
    return {
        "against": prev["size"],
        "file": path.name,
        "data_ratio": data_ratio,
        "stages": stages,
        "hubspot_requests": hubspot_requests,
        "worst": {"stage": worst[0], "ratio": worst[1]} if worst else None,
        "met": None if worst is None else worst[1] <= data_ratio,
    }


# --------------------------------------------------------------------------- targets


def _hubspot_limits(regime: dict[str, Any], stages: str = "ingest") -> HubspotLimits:
    """The HubSpot limits of a regime's ingest or sync stages, from ``result["regimes"]``
    (None: unlimited; results before schema 2 name one pair, for every stage)."""
    prefix = "hubspot_sync_" if stages == "sync" else "hubspot_"
    if stages == "sync" and f"{prefix}rate_limit_per_10s" not in regime:
        prefix = "hubspot_"
    return HubspotLimits(
        int(regime.get(f"{prefix}rate_limit_per_10s") or 0),
        int(regime.get(f"{prefix}search_rate_limit_per_s") or 0),
    )


def _incremental_note(regime: str, inc: dict[str, Any]) -> str:
    parts = (
        f"({_num(inc['incremental_ingest_seconds'], ',.1f')} s ingest + "
        f"{_num(inc['incremental_build_seconds'], ',.1f')} s build) ÷ "
        f"({_num(inc['full_ingest_seconds'], ',.1f')} + "
        f"{_num(inc['full_build_seconds'], ',.1f')} s)"
    )
    if inc["build_from"] == regime:
        return f"{parts}, all in {regime}"
    return (
        f"{parts}: {regime}'s ingests, {inc['build_from']}'s build and incremental.build "
        "(the build reads the warehouse, not the APIs)"
    )


def _scaling_note(result: dict[str, Any], key: str) -> str:
    """What the worst stage's HubSpot requests did, when it made some: their ratio, and, when
    the stage met HubSpot's rate limit, that its time steps with the limit's windows."""
    requests = (result.get("scaling") or {}).get("hubspot_requests") or {}
    if key not in requests:
        return ""
    stage = _stage(result, key) or {}
    limits = ((stage.get("detail") or {}).get("hubspot_limits") or {}).get("sandbox") or {}
    # results before schema 2 recorded no limits: HubSpot's were in force for every stage
    paced = not limits or int(limits.get("rate_limit_per_10s") or 0) > 0
    note = f"; its HubSpot requests {requests[key]:g}x"
    if paced:
        note += " (its time steps with the windows of 190 requests they need)"
    return note


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    r = result["ratios"]
    rows: list[dict[str, Any]] = []

    def add(name: str, measured: Any, target: str, met: bool | None, note: str = "") -> None:
        rows.append(
            {"target": name, "measured": measured, "goal": target, "met": met, "note": note}
        )

    cpu_regime = (result.get("regimes") or {}).get("cpu") or {}
    cpu_hubspot = _hubspot_limits(cpu_regime)
    for source in SOURCES:
        c = r["cpu_ingest"].get(source)
        if source == "stripe":
            note = ""
        elif cpu_hubspot.unlimited:
            sync_stages = cpu_regime.get("hubspot_sync_stages") or HUBSPOT_SYNC_STAGES
            note = (
                "HubSpot unlimited and recon unpaced while it reads; "
                f"{', '.join(sync_stages)} keep{'s' if len(sync_stages) == 1 else ''} "
                f"{_hubspot_limits(cpu_regime, 'sync').describe()}"
            )
        else:
            note = f"recon paced at HubSpot's {cpu_hubspot.describe()}: the limit's figure"
        add(
            f"CPU-bound ingest {source} (objects/s ÷ 10,000)",
            None if c is None else c["ratio"],
            "≥ 2",
            None if c is None else c["ratio"] >= TARGETS["cpu_ingest"],
            note,
        )
    for source in SOURCES:
        c = r["latency_ingest"].get(source)
        add(
            f"latency-bound ingest {source} (objects/s ÷ ceiling)",
            None if c is None else c["ratio"],
            "≥ 0.8",
            None if c is None else c["ratio"] >= TARGETS["latency_ingest"],
            ""
            if c is None
            else f"ceiling {c['ceiling']:,.0f} objects/s ({c.get('ceiling_how', '')}); "
            f"÷ the flat {c.get('flat_ceiling', 0):,.0f}/s (requests/s x 100): "
            f"{c.get('flat_ratio', 0):.3f}",
        )
    sync = r["sync"]
    share = None if sync is None else sync["window_share_while_work_remains"]
    by_rate = share is None and sync is not None and sync.get("rate_share") is not None
    if by_rate:
        assert sync is not None
        share = sync["rate_share"]
    add(
        "sync: share of the HubSpot window used while work remains",
        share,
        "≥ 0.9",
        None if share is None else share >= TARGETS["sync_window"],
        ""
        if sync is None or (share is not None and not by_rate)
        else f"{sync['requests']} requests fit in one window, so the limit never bound: "
        f"request rate ÷ the limit's rate ({sync['limit']}/10 s), at "
        f"{_num(sync.get('hubspot_latency_ms') or 0)} ms a request"
        if by_rate
        else f"{sync['requests']} requests fit in one window: the limit never bound",
    )
    add(
        "sync: 429s met",
        None if sync is None else sync["rate_limited_429"],
        "0",
        None if sync is None or sync["rate_limited_429"] is None else sync["rate_limited_429"] == 0,
    )
    incs = r.get("incremental") or {}
    for name in REGIMES:
        inc = incs.get(name)
        add(
            f"incremental rerun ÷ full run (ingest + build), {name}",
            None if inc is None else inc["ratio"],
            "≤ 0.15",
            None if inc is None or inc["ratio"] is None else inc["ratio"] <= TARGETS["incremental"],
            "" if inc is None else _incremental_note(name, inc),
        )
    inc = incs.get("cpu") or next((v for v in incs.values() if v), None)
    build_ratio, build_note = None, ""
    if inc and inc.get("full_build_seconds") and inc.get("incremental_build_seconds") is not None:
        build_ratio = round(inc["incremental_build_seconds"] / inc["full_build_seconds"], 3)
        build_note = (
            f"{_num(inc['incremental_build_seconds'], ',.1f')} s ÷ "
            f"{_num(inc['full_build_seconds'], ',.1f')} s ({inc['build_from']}'s builds); "
            "the issue sets no number, so no verdict"
        )
        split = inc.get("incremental_build_split")
        if split:
            build_note += (
                f"; the incremental build: dbt parse {_num(split['parse_seconds'], ',.1f')} s, "
                f"nodes {_num(split['nodes_seconds'], ',.1f')} s ({split['nodes_run']} run, "
                f"{split['nodes_left_out']} left out), the rest (dbt's start-up and teardown, the build "
                f"state) "
                f"{_num(split['rest_seconds'], ',.1f')} s"
            )
    add(
        "incremental build ÷ full build (the build alone)",
        build_ratio,
        "issue 4: a small fraction",
        None,
        build_note,
    )
    sc = result.get("scaling")
    if sc is not None and sc.get("worst"):
        add(
            f"time at {result['size']} ÷ time at {sc['against']} (worst stage: "
            f"{sc['worst']['stage']})",
            sc["worst"]["ratio"],
            f"≤ {sc['data_ratio']:g}",
            sc["met"],
            f"{sc['data_ratio']:g}x the data" + _scaling_note(result, sc["worst"]["stage"]),
        )
    peak = result.get("peak_rss_mb")
    add(
        "peak RSS of the recon process (MiB)",
        peak,
        "< 2048 at L",
        None if peak is None else peak < TARGETS["peak_rss_mb"],
        "" if result["size"] == "L" else "the target is at L; shown for every size",
    )
    return rows


# --------------------------------------------------------------------------- output


def settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The knobs that change what a run costs (memory above all), as this run had them."""
    from pipelines.common.destination import load_settings

    env = os.environ if environ is None else environ
    return {
        # the defaults are profiles.yml's
        "duckdb_memory_limit": env.get("RECON_DUCKDB_MEMORY_LIMIT") or "1GB",
        "duckdb_threads": env.get("RECON_DUCKDB_THREADS") or "2",
        "duckdb_load_memory_limit": str(load_settings(env)["memory_limit"]),
        "dbt_threads": env.get("RECON_DBT_THREADS") or "2",
    }


def result_dict(run: BenchRun, *, machine_info: dict[str, Any] | None = None) -> dict[str, Any]:
    from recon import __version__
    from recon.sync.provenance import git_commit

    result: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "size": run.size,
        "customers": run.customers,
        "seed": run.seed,
        "date": run.started_at.strftime("%Y-%m-%d"),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "recon_version": __version__,
        "git_commit": git_commit(),
        "machine": machine_info or machine(),
        # the limits the sandbox enforced and recon paced to (None: unlimited, unpaced):
        # HubSpot's per group of stages (``Regime.hubspot_limits``)
        "regimes": {
            r.name: {
                "latency_ms": r.latency_ms,
                "stripe_rate_limit_per_s": r.stripe_rate_limit_per_s or None,
                "hubspot_rate_limit_per_10s": r.hubspot_ingest.per_10s or None,
                "hubspot_search_rate_limit_per_s": r.hubspot_ingest.search_per_s or None,
                "hubspot_ingest_stages": list(HUBSPOT_INGEST_STAGES),
                "hubspot_sync_rate_limit_per_10s": r.hubspot_sync.per_10s or None,
                "hubspot_sync_search_rate_limit_per_s": r.hubspot_sync.search_per_s or None,
                "hubspot_sync_stages": list(HUBSPOT_SYNC_STAGES),
            }
            for r in run.regimes
        },
        "world": run.world,
        "events_retention_days": run.events_retention_days,
        "events_retention_overridden": run.events_retention_overridden,
        "ok": run.ok,
        "checks_passed": run.checks_passed,
        "peak_rss_mb": run.peak_rss_mb,
        "sandbox_rss_mb": run.sandbox_rss_mb,
        "load_average": run.load_average,
        "settings": settings(),
        "stages": [s.to_dict() for s in run.stages],
    }
    result["ratios"] = ratios(result)
    result["scaling"] = None
    result["targets"] = targets(result)
    return result


def add_scaling(result: dict[str, Any], out_dir: Path) -> None:
    previous = previous_result(
        out_dir, result["size"], result["machine"], retention=_retention_suffix(result)
    )
    result["scaling"] = scaling(result, previous)
    result["targets"] = targets(result)


def _num(x: Any, fmt: str = ",.2f") -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return format(x, fmt)
    return str(x)


def _measured(x: Any) -> str:
    if isinstance(x, float) and abs(x) >= 100:
        return _num(x, ",.0f")
    return _num(x, ",.3f")


def _load(result: dict[str, Any]) -> str:
    load = result.get("load_average") or {}
    return f"{_num(load.get('start'))} at the start, {_num(load.get('end'))} at the end"


def _settings_line(result: dict[str, Any]) -> str:
    st = result.get("settings") or {}
    if not st:
        return ""
    return (
        f"DuckDB memory_limit: build {st.get('duckdb_memory_limit')} "
        f"(RECON_DUCKDB_MEMORY_LIMIT) on {st.get('duckdb_threads', '-')} threads "
        f"(RECON_DUCKDB_THREADS), loads {st.get('duckdb_load_memory_limit', '-')} "
        f"(RECON_DUCKDB_LOAD_MEMORY_LIMIT); dbt threads {st.get('dbt_threads')}."
    )


def _retention_line(result: dict[str, Any]) -> str:
    days = result.get("events_retention_days")
    if days is None:
        return ""
    set_by = " (--events-retention-days)" if result.get("events_retention_overridden") else ""
    if days == 0:
        return f" Stripe events retention 0{set_by}: every event since the account started."
    return f" Stripe events retention {days} days{set_by}."


def regime_line(name: str, regime: dict[str, Any]) -> str:
    """A regime as the header says it: its latency and the limits each stage met."""
    stripe = regime.get("stripe_rate_limit_per_s")
    ingest = _hubspot_limits(regime)
    sync = _hubspot_limits(regime, "sync")
    if ingest == sync:
        hubspot = f"HubSpot {ingest.describe()}"
        if "hubspot_sync_rate_limit_per_10s" in regime:
            hubspot += " for every stage"
    else:
        hubspot = (
            f"HubSpot {ingest.describe()} while recon reads it "
            f"({', '.join(regime.get('hubspot_ingest_stages') or HUBSPOT_INGEST_STAGES)}"
            + ("; recon unpaced" if ingest.unlimited else "")
            + f"), {sync.describe()} for "
            f"{', '.join(regime.get('hubspot_sync_stages') or HUBSPOT_SYNC_STAGES)} "
            "(recon paced to them)"
        )
    return (
        f"{name}: {regime['latency_ms']:g} ms latency, Stripe "
        + (f"{stripe}/s" if stripe else "unlimited")
        + f", {hubspot}"
    )


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    size = result["size"]
    lines = [
        f"### recon bench {size}: {result['customers']:,} customers (seed {result['seed']}), "
        f"{result['date']}",
        "",
        f"{m['cores']} cores, {m['cpu_model']}, {_num(m.get('memory_gb'), '.0f')} GB; "
        f"Python {m['python']}; recon {result['recon_version']} at {result['git_commit'][:12]}; "
        f"load average {_load(result)}. "
        "Regimes: "
        + "; ".join(regime_line(name, r) for name, r in result["regimes"].items())
        + ". "
        + _settings_line(result)
        + _retention_line(result),
        "",
        "| stage | regime | wall s | items | per s | peak RSS MiB | warehouse MiB | status |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in result["stages"]:
        items = f"{s['items']:,} {s['unit']}"
        note = s["status"]
        if s["name"] == "generate" and s["detail"].get("cached"):
            note = "ok (cached world: its recorded time)"
        elif s["status"] != "ok" and s.get("error"):
            note = f"{s['status']}: {s['error'][:80]}"
        lines.append(
            f"| {s['name']} | {s['regime'] or ''} | {s['seconds']:,.2f} | {items} | "
            f"{_num(s['per_s'], ',.0f')} | {_num(s['peak_rss_mb'], ',.0f')} | "
            f"{_num(s['warehouse_mb'], ',.1f')} | {note} |"
        )
    lines += [
        "",
        "| ratio / target | measured | goal | met | note |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for t in result["targets"]:
        met = "-" if t["met"] is None else ("met" if t["met"] else "**missed**")
        lines.append(
            f"| {t['target']} | {_measured(t['measured'])} | {t['goal']} | {met} | {t['note']} |"
        )
    sync = result["ratios"].get("sync")
    if sync:
        lines += [
            "",
            f"Sync apply: {sync['changes']:,} changes in {sync['requests']} HubSpot requests "
            f"over {_num(sync['seconds'])} s; requests per 10-s window: {sync['windows']} "
            f"(limit {sync['limit']}).",
        ]
    after = result["ratios"].get("after_sync")
    if after:
        lines += [
            "",
            f"HubSpot ingest after the sync: {after['objects']:,} objects in "
            f"{_num(after['seconds'])} s (it re-reads every company the sync wrote, through "
            "search; not part of the incremental ratio, which times 1 % new events).",
        ]
    sc = result.get("scaling")
    if sc:
        worst = sorted(sc["stages"].items(), key=lambda kv: -kv[1])
        lines += [
            "",
            f"Scaling against {sc['against']} ({sc['file']}, {sc['data_ratio']:g}x the data): "
            + ", ".join(f"{k} {v:g}x" for k, v in worst)
            + ".",
        ]
        requests = sc.get("hubspot_requests") or {}
        if requests:
            lines += [
                "",
                "HubSpot requests made, against the same stages there: "
                + ", ".join(
                    f"{k} {v:g}x" for k, v in sorted(requests.items(), key=lambda kv: -kv[1])
                )
                + ".",
            ]
    return "\n".join(lines) + "\n"


def _retention_suffix(result: dict[str, Any]) -> str:
    """``-retention<N>`` for a run whose events retention --events-retention-days set."""
    if result.get("events_retention_overridden"):
        return f"-retention{result['events_retention_days']}"
    return ""


def result_stem(result: dict[str, Any]) -> str:
    """``<date>-<size>``, and ``-retention<N>`` for a run whose events retention was set."""
    return f"{result['date']}-{result['size']}{_retention_suffix(result)}"


def write_result(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``<stem>.json`` and ``.md`` in ``out_dir`` (written whole, then renamed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = result_stem(result)
    paths = (out_dir / f"{stem}.json", out_dir / f"{stem}.md")
    payloads = (
        orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n",
        markdown(result).encode(),
    )
    for path, data in zip(paths, payloads, strict=True):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return paths


__all__ = [
    "SIZES",
    "add_scaling",
    "machine",
    "markdown",
    "ratios",
    "result_dict",
    "targets",
    "write_result",
]
