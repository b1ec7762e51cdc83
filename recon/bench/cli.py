"""``recon bench``: time every stage at a size and write ``bench/results/<date>-<size>.*``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from recon.bench.harness import DEFAULT_SEED, DEFAULT_WORK_DIR, SIZE_ORDER, SIZES


def bench_command(
    size: list[str] = typer.Option(
        ["S"],
        "--size",
        help="XS, S, M or L (200, 2,000, 20,000, 100,000 customers); repeat for several.",
    ),
    regime: str = typer.Option(
        "both",
        "--regime",
        help="cpu (no latency; no rate limit while recon reads, HubSpot's for the sync's writes), "
        "latency (200 ms, real rate limits) or both (every stage in cpu, then the full and "
        "incremental ingests in latency).",
    ),
    stages: str = typer.Option(
        "all",
        "--stages",
        help="all, or ingest: only the full ingest of each source in each regime (a quick "
        "before/after of the ingest; write it somewhere else than bench/results with --out).",
    ),
    out: Path = typer.Option(
        Path("bench/results"), "--out", help="Where <date>-<size>.json and .md go."
    ),
    work_dir: Path = typer.Option(
        DEFAULT_WORK_DIR,
        "--work-dir",
        help="Cached worlds and the runs' warehouses (not in git).",
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="World seed."),
    events_retention_days: int | None = typer.Option(
        None,
        "--events-retention-days",
        help="Stripe's events retention for the run (default: the world's, 30 days as Stripe "
        "keeps them). 0 lists every event since the account started: the warehouse of a "
        "recon that has ingested for the account's whole life, where events outgrow the "
        "rest. Results go to <date>-<size>-retention<N>.*",
    ),
    profile: list[str] = typer.Option(
        [],
        "--profile",
        help="Run this stage (e.g. build, cpu:ingest.stripe) under pyinstrument; the profile "
        "goes to WORK_DIR/profiles.  Repeatable.",
    ),
) -> None:
    """Benchmark recon at a size: generate, ingest, build, validate, sync, incremental.

    Worlds are generated once per size and seed and cached under --work-dir; the sandbox
    runs in its own process.  Exits 1 when a stage could not do its work (the error is in the
    results); a failed check inside a stage (a dbt data test) is reported, not fatal.

    Examples:

      recon bench --size XS

      recon bench --size S --size M --regime both

      recon bench --size M --regime cpu --events-retention-days 0
    """
    from recon.bench.harness import (
        BenchError,
        BenchOptions,
        check_events_retention_days,
        run_bench,
    )
    from recon.bench.report import add_scaling, markdown, result_dict, write_result
    from recon.errors import UsageError

    sizes = [s.upper() for s in size]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise UsageError(f"unknown size {unknown[0]!r}: use {', '.join(SIZE_ORDER)}")
    if regime not in ("cpu", "latency", "both"):
        raise UsageError(f"unknown regime {regime!r}: use cpu, latency or both")
    if stages not in ("all", "ingest"):
        raise UsageError(f"unknown stages {stages!r}: use all or ingest")
    check_events_retention_days(events_retention_days)
    console = Console(stderr=True)
    failed: list[str] = []
    for name in sorted(dict.fromkeys(sizes), key=SIZE_ORDER.index):
        console.rule(f"[bold]recon bench {name}: {SIZES[name]:,} customers")
        options = BenchOptions(
            size=name,
            regime=regime,
            stages=stages,
            seed=seed,
            events_retention_days=events_retention_days,
            work_dir=work_dir,
            profile=frozenset(profile),
            progress=lambda text: console.print(text, highlight=False, markup=False),
        )
        run = run_bench(options)
        result = result_dict(run)
        add_scaling(result, out)
        json_path, md_path = write_result(result, out)
        typer.echo(markdown(result))
        console.print(f"wrote {json_path} and {md_path}", highlight=False)
        if not result["ok"]:
            failed.append(name)
        elif not result["checks_passed"]:
            checks = [s["key"] for s in result["stages"] if s["status"] == "check_failed"]
            console.print(
                f"[yellow]note[/]: a check failed inside {', '.join(checks)} (timed anyway; "
                "see the table)",
                highlight=False,
            )
    if failed:
        raise BenchError(f"a stage failed at {', '.join(failed)}: see the results")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
