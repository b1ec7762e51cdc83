"""The scheduled-sync entry points agree: the workflow, the cron line of the docs, the CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from recon.cli import main
from recon.orchestration import CRON_SCHEDULE

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "scheduled-sync.yml"
DOCS = ROOT / "docs" / "scheduling.md"


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    assert isinstance(steps, list)
    return steps


def _step(workflow: dict[Any, Any], uses: str) -> dict[str, Any]:
    found = [s for s in _steps(workflow) if str(s.get("uses", "")).startswith(uses + "@")]
    assert len(found) == 1, f"one step using {uses}"
    return found[0]


def _recon_commands(workflow: dict[Any, Any]) -> list[tuple[list[str], dict[str, Any]]]:
    out = []
    for step in _steps(workflow):
        for line in str(step.get("run", "")).splitlines():
            words = shlex.split(line)
            if "recon" in words:
                out.append((words[words.index("recon") + 1 :], step))
    return out


def test_runs_on_the_schedule_and_on_demand(workflow: dict[Any, Any]) -> None:
    # PyYAML reads the key `on` as True
    triggers = workflow.get("on", workflow.get(True))
    assert [s["cron"] for s in triggers["schedule"]] == [CRON_SCHEDULE]
    assert "workflow_dispatch" in triggers
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["permissions"] == {"contents": "read"}


def test_runs_recon_run_apply_with_the_secrets(workflow: dict[Any, Any]) -> None:
    runs = [(args, step) for args, step in _recon_commands(workflow) if args[:1] == ["run"]]
    assert len(runs) == 1
    args, step = runs[0]
    # on the schedule the options array is empty: `recon run --apply`
    assert args == ["run", "--apply", "${options[@]}"]
    assert step["env"]["STRIPE_API_KEY"] == "${{ secrets.STRIPE_API_KEY }}"
    assert step["env"]["HUBSPOT_ACCESS_TOKEN"] == "${{ secrets.HUBSPOT_ACCESS_TOKEN }}"
    # manual runs' inputs arrive as environment variables, never spliced into the script
    assert "${{" not in step["run"]
    assert step["env"]["MAX_CHANGES"] == "${{ inputs.max_changes }}"
    assert step["env"]["CREATE_PROPERTIES"] == "${{ inputs.create_properties }}"
    # secrets reach no other step
    others = [s for s in _steps(workflow) if s is not step]
    assert "secrets." not in yaml.safe_dump(others)


def test_warehouse_is_restored_and_saved_between_runs(workflow: dict[Any, Any]) -> None:
    warehouse = Path(workflow["env"]["RECON_WAREHOUSE"])
    restore = _step(workflow, "actions/cache/restore")
    save = _step(workflow, "actions/cache/save")
    assert restore["with"]["path"] == save["with"]["path"] == str(warehouse.parent)
    assert restore["with"]["key"] == save["with"]["key"]
    # the key is new every run (caches are immutable); restore falls back to the latest one
    assert "github.run_id" in save["with"]["key"]
    prefix = restore["with"]["restore-keys"].strip()
    assert save["with"]["key"].startswith(prefix)
    assert save.get("if") == "always()"
    steps = _steps(workflow)
    run_index = next(i for i, s in enumerate(steps) if "recon run" in str(s.get("run", "")))
    assert steps.index(restore) < run_index < steps.index(save)


def test_report_is_written_and_uploaded_even_after_a_failure(workflow: dict[Any, Any]) -> None:
    reports = [(a, s) for a, s in _recon_commands(workflow) if a[:1] == ["report"]]
    assert len(reports) == 1
    args, step = reports[0]
    out = args[args.index("--out") + 1]
    assert step.get("if") == "always()"
    upload = _step(workflow, "actions/upload-artifact")
    assert upload["with"]["path"] == out == "target/report.html"
    assert upload.get("if") == "always()"


def test_every_recon_command_of_the_workflow_exists(workflow: dict[Any, Any]) -> None:
    for args, step in _recon_commands(workflow):
        options = [a for a in args if a.startswith("-")]
        options += re.findall(r"options\+=\((--[a-z-]+)", str(step.get("run", "")))
        assert main([args[0], "--help"]) == 0, f"`recon {args[0]}` is not a command"
        # its options are known to it: --help lists them
        for option in options:
            assert option in _help_text(args[0]), f"`recon {args[0]}` has no option {option}"


def _help_text(command: str) -> str:
    from typer.testing import CliRunner

    from recon.cli import app

    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    return result.output


def test_docs_give_the_same_cron_line() -> None:
    blocks = re.findall(r"^```cron\n(.*?)^```", DOCS.read_text(), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "one ```cron block in docs/scheduling.md"
    lines = [ln for ln in blocks[0].splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1, "one crontab line in it"
    assert lines[0].startswith(CRON_SCHEDULE + " ")
    assert "recon run --apply" in lines[0]
    assert "recon report" in lines[0]


@pytest.mark.parametrize(
    ("max_changes", "create_properties", "expected"),
    [
        ("", "", ["run", "--apply"]),  # the schedule: no inputs
        ("", "false", ["run", "--apply"]),
        ("400", "true", ["run", "--apply", "--max-changes", "400", "--create-properties"]),
        ("1; rm -rf /", "", ["run", "--apply", "--max-changes", "1; rm -rf /"]),
    ],
)
def test_run_step_passes_the_dispatch_inputs_as_arguments(
    workflow: dict[Any, Any],
    tmp_path: Path,
    max_changes: str,
    create_properties: str,
    expected: list[str],
) -> None:
    """The step's script under bash -e (as Actions runs it), with python3 stubbed out."""
    import os
    import subprocess

    (step,) = [s for s in _steps(workflow) if "recon run" in str(s.get("run", ""))]
    stub = tmp_path / "bin" / "python3"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n')
    stub.chmod(0o755)
    out = tmp_path / "args"
    env = {
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "ARGS_OUT": str(out),
        "MAX_CHANGES": max_changes,
        "CREATE_PROPERTIES": create_properties,
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, check=True)
    args = out.read_text().splitlines()
    assert args[: args.index("recon") + 1] == ["-m", "uv", "run", "--locked", "--no-dev", "recon"]
    assert args[args.index("recon") + 1 :] == expected
