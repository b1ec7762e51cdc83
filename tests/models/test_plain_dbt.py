"""`dbt build` as an analytics engineer runs it in CI: the `dbt` executable, from the
repository's root, with the profile in the repository and nothing from recon but
`RECON_WAREHOUSE`. No `~/.dbt`, no `--profiles-dir`, no `dbt deps`: it builds seeds, models,
data tests and unit tests, and the marts hold the same numbers `recon build` gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_models_build import MINI_WORLD_MRR, _mrr, mini_world

from recon.build import project_dir

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt-models")]


def test_plain_dbt_build_from_the_repository_root(tmp_path: Path) -> None:
    warehouse = tmp_path / "recon.duckdb"
    world, _ = mini_world()
    world.write(warehouse, landed_at="2026-06-30T12:00:00")
    home = tmp_path / "home"  # an empty home: no ~/.dbt/profiles.yml to fall back on
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "RECON_WAREHOUSE": str(warehouse),
        # dbt's own variables for --target-path and --log-path: the checkout stays clean
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    dbt = Path(sys.executable).parent / "dbt"
    done = subprocess.run(
        [str(dbt), "build"],
        cwd=project_dir(),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    kinds = {r["unique_id"].split(".")[0] for r in results}
    assert {"seed", "model", "test", "unit_test"} <= kinds
    not_ok = [
        (r["unique_id"], r["status"])
        for r in results
        if r["status"] not in ("success", "pass")
        and not (r["unique_id"].startswith("exposure.") and r["status"] == "no-op")
    ]
    assert not not_ok
    assert _mrr(warehouse) == MINI_WORLD_MRR
