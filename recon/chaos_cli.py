"""``recon chaos``: the crash-and-fault run over a generated world (``recon.chaos``)."""

from __future__ import annotations

from pathlib import Path

import typer


def chaos_command(
    customers: int = typer.Option(300, "--customers", min=50, help="Customers in the world."),
    seed: int = typer.Option(1, "--seed", help="Seed of the world, the faults and the kills."),
    kills: int = typer.Option(
        24, "--kills", min=3, help="SIGKILLs, spread over ingest, build and sync."
    ),
    workdir: Path = typer.Option(
        Path("target/chaos"), "--workdir", help="Scratch folder (recreated) for both runs."
    ),
) -> None:
    """Kill and fault the pipeline, then check it converged to a clean run's result.

    A clean run (recon run --apply, then ingest and build) and a chaos run over copies of
    one generated world; in the chaos run the sandbox injects 5xx, dropped connections,
    truncated bodies, timeouts, slow answers and 429 storms, and recon run is SIGKILLed
    --kills times in ingest, build and sync and rerun until it succeeds. Exits 0 when the
    tables, HubSpot's companies and the write journal match the clean run's, 1 otherwise.

    Example: recon chaos --customers 300 --kills 24 --seed 1
    """
    from recon.chaos import ChaosOptions, run_chaos
    from recon.errors import CheckFailed

    report = run_chaos(
        ChaosOptions(
            customers=customers,
            seed=seed,
            kills=kills,
            workdir=workdir,
        )
    )
    if not report.ok:
        failed = [c.name for c in report.checks if not c.passed]
        raise CheckFailed(f"the chaos run broke {len(failed)} check(s): {'; '.join(failed)}")


def register(app: typer.Typer) -> None:
    app.command("chaos")(chaos_command)
